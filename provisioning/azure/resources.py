"""Idempotent operations on the resource group and the workspace's dependent resources (ARM SDKs)."""

from __future__ import annotations

from typing import Any

from provisioning.arm import KEY_VAULT_PROVIDER, REGISTRY_PROVIDER, STORAGE_PROVIDER
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import Outcome, azure_errors, ensure, settled


def ensure_resource_group(
    clients: AzureClients, *, subscription: str, name: str, location: str, tags: dict[str, str]
) -> Outcome:
    """Create the resource group with its tags; an existing one must carry the portal's tag."""
    client = clients.resources(subscription)
    existing = settled("resource group", name, lambda: client.resource_groups.get(name))
    if existing is not None and all((existing.tags or {}).get(k) == v for k, v in tags.items()):
        return Outcome("unchanged", existing.id)
    with azure_errors():
        group = client.resource_groups.create_or_update(name, {"location": location, "tags": tags})
    return Outcome("updated" if existing is not None else "created", group.id)


def ensure_storage_account(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    hierarchical_namespace: bool,
    look_first: bool = True,
) -> Outcome:
    """StorageV2, HTTPS only, TLS 1.2, no public blob access; a data lake has the hierarchical namespace."""
    client = clients.storage(subscription)
    body = {
        "location": location,
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "tags": tags,
        "properties": {
            "supportsHttpsTrafficOnly": True,
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": False,
            "isHnsEnabled": hierarchical_namespace,
        },
    }
    return ensure(
        "storage account",
        name,
        lambda: client.storage_accounts.get_properties(resource_group, name),
        lambda: client.storage_accounts.begin_create(resource_group, name, body).result(),
        look_first=look_first,
    )


def ensure_key_vault(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    tenant_id: str,
    look_first: bool = True,
) -> Outcome:
    """RBAC permission model (no access policies), soft delete and purge protection."""
    client = clients.keyvault(subscription)
    body = {
        "location": location,
        "tags": tags,
        "properties": {
            "tenantId": tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": True,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": 90,
            "enablePurgeProtection": True,
        },
    }
    return ensure(
        "key vault",
        name,
        lambda: client.vaults.get(resource_group, name),
        lambda: client.vaults.begin_create_or_update(resource_group, name, body).result(),
        look_first=look_first,
    )


def ensure_container_registry(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    look_first: bool = True,
) -> Outcome:
    """Basic SKU with the admin user disabled (people and workspaces use Entra roles, not shared keys)."""
    client = clients.registry(subscription)
    body = {
        "location": location,
        "tags": tags,
        "sku": {"name": "Basic"},
        "properties": {"adminUserEnabled": False},
    }
    return ensure(
        "container registry",
        name,
        lambda: client.registries.get(resource_group, name),
        lambda: client.registries.begin_create(resource_group, name, body).result(),
        look_first=look_first,
    )


def ensure_app_insights(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    look_first: bool = True,
) -> Outcome:
    """An Application Insights component for the workspace."""
    client = clients.app_insights(subscription)
    body = {"location": location, "tags": tags, "kind": "web", "properties": {"Application_Type": "web"}}
    return ensure(
        "application insights",
        name,
        lambda: client.components.get(resource_group, name),
        lambda: client.components.create_or_update(resource_group, name, body),
        look_first=look_first,
    )


NAME_CHECK_TYPES = {
    "storage": STORAGE_PROVIDER,
    "key_vault": KEY_VAULT_PROVIDER,
    "registry": REGISTRY_PROVIDER,
}


def name_available(clients: AzureClients, *, subscription: str, kind: str, name: str) -> dict[str, Any]:
    """Ask Azure whether a globally unique name is free: {kind, name, available, reason, message}."""
    body = {"name": name, "type": NAME_CHECK_TYPES[kind]}
    with azure_errors():
        if kind == "storage":
            answer = clients.storage(subscription).storage_accounts.check_name_availability(body)
        elif kind == "key_vault":
            answer = clients.keyvault(subscription).vaults.check_name_availability(body)
        else:
            answer = clients.registry(subscription).registries.check_name_availability(body)
    return {
        "kind": kind,
        "name": name,
        "available": bool(answer.name_available),
        "reason": str(answer.reason or ""),
        "message": str(answer.message or ""),
    }
