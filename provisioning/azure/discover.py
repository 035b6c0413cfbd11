"""What Azure holds that the portal does not: AzureML workspaces read for discovery, and tags for take-over.

Discovery reads, per allowed subscription, the workspaces (Workspaces_ListBySubscription, through
azure-ai-ml), and per workspace: what its resource group holds (Resources_ListByResourceGroup), its
clusters (Compute_List) and the role assignments at the group and below (RoleAssignments_ListForScope),
with role names from one list per subscription and principals named through Graph
(``observe.RoleNames`` / ``observe.PrincipalNames``). Only reads: nothing here writes, but
``tags_merge``, which take-over uses (Tags_UpdateAtScope with ``operation: Merge``: it adds the portal's
tag and keeps every other tag the resource has).

Functions return plain dicts and dataclasses, raise only ``AzureStepError`` and never touch the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from provisioning.azure import observe
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, azure_errors

ARM_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class FoundWorkspace:
    """An AzureML workspace as Azure lists it, with the ids of the resources it depends on."""

    azure_id: str
    name: str
    subscription_id: str
    resource_group: str
    region: str
    tags: dict[str, str] = field(default_factory=dict)
    dependent_resources: dict[str, str] = field(default_factory=dict)


def workspace_id_parts(azure_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, workspace) of a workspace's ARM id; ValueError if it is not one."""
    found = ARM_ID.match(azure_id.strip())
    if found is None:
        raise ValueError(f"'{azure_id}' is not the ARM id of an AzureML workspace")
    return found.group("sub"), found.group("rg"), found.group("ws")


def _found(ws: Any, subscription: str) -> FoundWorkspace:
    azure_id = str(ws.id or "")
    parts = ARM_ID.match(azure_id)
    dependent = {
        "storage_account": str(ws.storage_account or ""),
        "key_vault": str(ws.key_vault or ""),
        "container_registry": str(ws.container_registry or ""),
        "app_insights": str(ws.application_insights or ""),
    }
    return FoundWorkspace(
        azure_id=azure_id,
        name=str(ws.name),
        subscription_id=subscription,
        resource_group=str(ws.resource_group or (parts.group("rg") if parts else "")),
        region=str(ws.location or ""),
        tags=dict(ws.tags or {}),
        dependent_resources={k: v for k, v in dependent.items() if v},
    )


def list_workspaces(clients: AzureClients, *, subscription: str) -> list[FoundWorkspace]:
    """Every AzureML workspace of a subscription (Workspaces_ListBySubscription)."""
    with azure_errors():
        found = list(clients.ml_subscription(subscription).workspaces.list(scope="subscription"))
    return [_found(ws, subscription) for ws in found]


def get_workspace(clients: AzureClients, azure_id: str) -> FoundWorkspace:
    """One workspace by its ARM id (Workspaces_Get); ``AzureStepError`` (404) when it is gone."""
    subscription, group, name = workspace_id_parts(azure_id)
    with azure_errors():
        ws = clients.ml(subscription, group, name).workspaces.get(name)
    return _found(ws, subscription)


def read_workspace(
    clients: AzureClients,
    found: FoundWorkspace,
    *,
    roles: observe.RoleNames,
    principals: observe.PrincipalNames,
) -> dict[str, Any]:
    """What a discovered workspace is made of: the group's resources, the clusters, the role assignments."""
    resources = clients.resources(found.subscription_id)
    with azure_errors():
        group = resources.resource_groups.get(found.resource_group)
    held, _ = observe._pages(resources.resources.list_by_resource_group(found.resource_group))
    clusters, _ = observe._clusters(clients, found.subscription_id, found.resource_group, found.name)
    role_names, _ = roles.names(found.subscription_id)
    assignments, _ = observe._assignments(
        clients, found.subscription_id, str(group.id), role_names, principals, frozenset()
    )
    return {
        "group": {"azure_id": str(group.id), "tags": dict(group.tags or {})},
        "resources": [
            {"azure_id": str(r.id), "name": str(r.name), "type": str(r.type), "tags": dict(r.tags or {})}
            for r in held
        ],
        "clusters": [
            {"azure_id": c.azure_id, "name": c.name, **c.settings(), "tags": c.tags} for c in clusters
        ],
        "role_assignments": [
            {
                "azure_id": a.azure_id,
                "scope": a.scope,
                "role": a.role_name,
                "role_definition_id": a.role_definition_id,
                "principal_id": a.principal_id,
                "principal_type": a.principal_type,
                "principal_name": a.principal_name,
            }
            for a in assignments
        ],
    }


def tags_merge(clients: AzureClients, *, scope: str, tags: dict[str, str]) -> dict[str, str]:
    """Add ``tags`` to the resource (or group) ``scope`` and keep its others (Tags_UpdateAtScope, Merge).

    Returns the tags the resource has afterwards. Safe to repeat.
    """
    subscription = scope.strip("/").split("/")[1]
    client = clients.resources(subscription)
    with azure_errors():
        answer = client.tags.begin_update_at_scope(
            scope, {"operation": "Merge", "properties": {"tags": tags}}
        ).result()
    properties = answer.get("properties") if isinstance(answer, dict) else getattr(answer, "properties", None)
    found = properties.get("tags") if isinstance(properties, dict) else getattr(properties, "tags", None)
    return dict(found or {})


__all__ = ["AzureStepError", "FoundWorkspace", "get_workspace", "list_workspaces", "read_workspace"]
