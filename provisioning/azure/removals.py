"""Deletions by Azure id: what a rollback removes, or access an admin chose to remove.

Each removal reads the object first: one already gone is "absent" (a second delivery of the same run
changes nothing), and a resource without the portal's ownership tag is never deleted. A resource group
is deleted only once it is empty: whatever someone else put in it keeps it, and the step says so.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from provisioning.azure.clients import AzureClients
from provisioning.azure.common import Outcome, azure_errors, get_or_none, not_managed, owned
from provisioning.azure.ml import WORKSPACE_API_VERSION

ARM_ID = re.compile(
    r"^/subscriptions/(?P<subscription>[^/]+)/resourceGroups/(?P<group>[^/]+)"
    r"(?:/providers/(?P<namespace>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)"
    r"(?:/(?P<child_type>[^/]+)/(?P<child>[^/]+))?)?$",
    re.IGNORECASE,
)


def _parts(azure_id: str) -> dict[str, str]:
    found = ARM_ID.match(azure_id.split("/providers/Microsoft.Authorization/")[0])
    if found is None:
        raise ValueError(f"not an Azure resource id: {azure_id!r}")
    return {k: v or "" for k, v in found.groupdict().items()}


def _delete_owned(kind: str, name: str, get: Callable[[], Any], delete: Callable[[], Any]) -> Outcome:
    existing = get_or_none(get)
    if existing is None:
        return Outcome("absent")
    if not owned(existing):
        raise not_managed(kind, name)
    with azure_errors():
        delete()
    return Outcome("removed", str(existing.id))


def remove_role_assignment_by_id(clients: AzureClients, *, azure_id: str) -> Outcome:
    """Delete one role assignment by its id (absent when Azure no longer has it)."""
    subscription = azure_id.split("/")[2]
    client = clients.authorization(subscription)
    existing = get_or_none(client.role_assignments.get_by_id, azure_id)
    if existing is None:
        return Outcome("absent")
    with azure_errors():
        client.role_assignments.delete_by_id(azure_id)
    return Outcome("removed", azure_id)


def _cluster(clients: AzureClients, p: dict[str, str]) -> Outcome:
    ml = clients.ml(p["subscription"], p["group"], p["name"])
    return _delete_owned(
        "cluster",
        p["child"],
        lambda: ml.compute.get(p["child"]),
        lambda: ml.compute.begin_delete(p["child"]).result(),
    )


def _workspace(clients: AzureClients, p: dict[str, str], azure_id: str) -> Outcome:
    arm = clients.resources(p["subscription"])
    ml = clients.ml(p["subscription"], p["group"], p["name"])
    return _delete_owned(
        "workspace",
        p["name"],
        lambda: arm.resources.get_by_id(azure_id, api_version=WORKSPACE_API_VERSION),
        lambda: ml.workspaces.begin_delete(p["name"], delete_dependent_resources=False).result(),
    )


def _resource_group(clients: AzureClients, p: dict[str, str]) -> Outcome:
    client = clients.resources(p["subscription"])
    group = get_or_none(client.resource_groups.get, p["group"])
    if group is None:
        return Outcome("absent")
    if not owned(group):
        raise not_managed("resource group", p["group"])
    with azure_errors():
        left = [r.name for r in client.resources.list_by_resource_group(p["group"])]
    if left:
        return Outcome(
            "kept", str(group.id), f"it still holds {', '.join(sorted(left)[:5])}, not made by this request"
        )
    with azure_errors():
        client.resource_groups.begin_delete(p["group"]).result()
    return Outcome("removed", str(group.id))


def remove_resource(clients: AzureClients, *, kind: str, azure_id: str) -> Outcome:
    """Delete what a request created, by kind and Azure id."""
    if kind == "role_assignment":
        return remove_role_assignment_by_id(clients, azure_id=azure_id)
    p = _parts(azure_id)
    sub, group, name = p["subscription"], p["group"], p["name"]
    if kind == "cluster":
        return _cluster(clients, p)
    if kind == "workspace":
        return _workspace(clients, p, azure_id)
    if kind == "resource_group":
        return _resource_group(clients, p)
    if kind == "storage_account":
        storage = clients.storage(sub).storage_accounts
        return _delete_owned(
            "storage account",
            name,
            lambda: storage.get_properties(group, name),
            lambda: storage.delete(group, name),
        )
    if kind == "key_vault":  # soft-deleted: Azure keeps the name for the retention period
        vaults = clients.keyvault(sub).vaults
        return _delete_owned(
            "key vault", name, lambda: vaults.get(group, name), lambda: vaults.delete(group, name)
        )
    if kind == "container_registry":
        registries = clients.registry(sub).registries
        return _delete_owned(
            "container registry",
            name,
            lambda: registries.get(group, name),
            lambda: registries.begin_delete(group, name).result(),
        )
    if kind == "app_insights":
        components = clients.app_insights(sub).components
        return _delete_owned(
            "application insights",
            name,
            lambda: components.get(group, name),
            lambda: components.delete(group, name),
        )
    raise ValueError(f"the portal does not remove {kind!r}")


def retain_storage_account(clients: AzureClients, *, azure_id: str, tags: dict[str, str]) -> Outcome:
    """Tag a storage account kept at a decommission as retained (StorageAccounts_Update, tags only).

    Its other tags, the portal's ownership tag included, stay; one already tagged so is "unchanged".
    """
    p = _parts(azure_id)
    storage = clients.storage(p["subscription"]).storage_accounts
    existing = get_or_none(storage.get_properties, p["group"], p["name"])
    if existing is None:
        return Outcome("absent")
    if not owned(existing):
        raise not_managed("storage account", p["name"])
    current = dict(existing.tags or {})
    if all(current.get(k) == v for k, v in tags.items()):
        return Outcome("unchanged", str(existing.id))
    with azure_errors():
        updated = storage.update(p["group"], p["name"], {"tags": {**current, **tags}})
    return Outcome("updated", str(updated.id))
