"""What Azure holds for a managed workspace, read in a few list calls (the reconcile's side of Azure).

Per workspace: the resource group (one GET), its top-level resources (Resources_ListByResourceGroup),
the workspace's computes (one list through azure-ai-ml) and the role assignments at the group and below
(one RoleAssignments_ListForScope at the group; assignments above it are dropped). Role definition names
come from one list per subscription per reconcile pass (``RoleNames``), principals the portal does not
know are named through Graph once per pass (``PrincipalNames``). That is four ARM reads per workspace
(one more per page beyond the first), plus one per subscription. A group that is gone ends the reading
(everything in it is gone too); a workspace that is gone has no computes.

Functions return the plain dataclasses of ``provisioning.drift`` and raise only ``AzureStepError``; they
may run in threads (the caches are locked), and never touch the database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import requests

from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, azure_errors
from provisioning.drift import Observation, SeenAssignment, SeenCluster, SeenResource

logger = logging.getLogger(__name__)

GRAPH_COLLECTIONS = {"user": "users", "group": "groups", "serviceprincipal": "servicePrincipals"}


def _pages(pager: Any) -> tuple[list[Any], int]:
    """Every item of an SDK pager, and how many pages (requests) it took."""
    items: list[Any] = []
    pages = 0
    with azure_errors():
        for page in pager.by_page():
            pages += 1
            items.extend(page)
    return items, max(pages, 1)


def _guid(definition_id: str) -> str:
    return definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


class RoleNames:
    """Role definition names by id, listed once per subscription per reconcile pass (one ARM read).

    Built-in and custom roles alike: the list at the subscription holds both, so no role is looked up by
    name one at a time and none is hard-coded.
    """

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients
        self._names: dict[str, dict[str, str]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def names(self, subscription: str) -> tuple[dict[str, str], int]:
        """Role name by definition GUID in the subscription, and the reads this call made (0 once cached)."""
        with self._lock:
            lock = self._locks.setdefault(subscription.lower(), threading.Lock())
        with lock:
            if subscription.lower() in self._names:
                return self._names[subscription.lower()], 0
            client = self._clients.authorization(subscription)
            found, reads = _pages(client.role_definitions.list(f"/subscriptions/{subscription}"))
            self._names[subscription.lower()] = {_guid(d.id): str(d.role_name or "") for d in found}
            return self._names[subscription.lower()], reads


class PrincipalNames:
    """UPNs and display names of principals the portal does not know, asked of Graph once per pass."""

    def __init__(self, clients: AzureClients) -> None:
        self._clients = clients
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()

    def name(self, object_id: str, principal_type: str) -> str:
        """The principal's UPN (users) or display name; "" when Graph cannot say (never an error)."""
        key = object_id.lower()
        with self._lock:
            if key in self._names:
                return self._names[key]
        collection = GRAPH_COLLECTIONS.get(principal_type.lower())
        found = ""
        if collection:
            try:
                answer = self._clients.graph().get(
                    f"{collection}/{object_id}", {"$select": "id,displayName,userPrincipalName"}
                )
            except requests.RequestException as exc:  # naming is a courtesy: the drift is reported anyway
                logger.info("Graph could not name %s %s: %s", principal_type, object_id, exc)
                answer = None
            found = str((answer or {}).get("userPrincipalName") or (answer or {}).get("displayName") or "")
        with self._lock:
            self._names[key] = found
        return found


def _resource(item: Any) -> SeenResource:
    identity = getattr(item, "identity", None)
    return SeenResource(
        azure_id=str(item.id),
        name=str(item.name),
        type=str(item.type),
        location=str(getattr(item, "location", "") or ""),
        tags=dict(item.tags or {}),
        identity_principal_id=str(getattr(identity, "principal_id", "") or ""),
    )


def _cluster(compute: Any) -> SeenCluster:
    return SeenCluster(
        azure_id=str(compute.id or ""),
        name=str(compute.name),
        vm_size=str(compute.size or "").upper(),
        priority="low_priority" if str(compute.tier or "").lower() == "low_priority" else "dedicated",
        min_nodes=int(compute.min_instances or 0),
        max_nodes=int(compute.max_instances or 0),
        idle_seconds=int(compute.idle_time_before_scale_down or 0),
        tags=dict(compute.tags or {}),
    )


def _under(scope: str, group_id: str) -> bool:
    scope, group_id = scope.lower().rstrip("/"), group_id.lower().rstrip("/")
    return scope == group_id or scope.startswith(group_id + "/")


def _clusters(
    clients: AzureClients, subscription: str, group: str, workspace: str
) -> tuple[tuple[SeenCluster, ...], int]:
    ml = clients.ml(subscription, group, workspace)
    try:
        computes, reads = _pages(ml.compute.list())
    except AzureStepError as exc:
        if exc.status == 404:  # the workspace is gone, and its computes with it
            return (), 1
        raise
    return tuple(_cluster(c) for c in computes if str(getattr(c, "type", "")).lower() == "amlcompute"), reads


def _assignments(
    clients: AzureClients,
    subscription: str,
    group_id: str,
    role_names: dict[str, str],
    principals: PrincipalNames,
    known: frozenset[str],
) -> tuple[tuple[SeenAssignment, ...], int]:
    client = clients.authorization(subscription)
    found, reads = _pages(client.role_assignments.list_for_scope(group_id))
    seen = []
    for a in found:
        if not _under(str(a.scope), group_id):
            continue  # inherited from the subscription or above: not the workspace's
        principal_id, principal_type = str(a.principal_id), str(a.principal_type or "")
        name = "" if principal_id.lower() in known else principals.name(principal_id, principal_type)
        seen.append(
            SeenAssignment(
                azure_id=str(a.id),
                scope=str(a.scope),
                role_definition_id=str(a.role_definition_id),
                role_name=role_names.get(_guid(str(a.role_definition_id)), ""),
                principal_id=principal_id,
                principal_type=principal_type,
                principal_name=name,
            )
        )
    return tuple(seen), reads


def observe_workspace(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    workspace: str,
    roles: RoleNames,
    principals: PrincipalNames,
    known_principals: Iterable[str] = (),
) -> Observation:
    """Everything a reconcile compares, for one workspace. ``known_principals``: object ids the portal
    already knows by name (its members), which Graph is not asked about."""
    resources = clients.resources(subscription)
    try:
        with azure_errors():
            group = resources.resource_groups.get(resource_group)
    except AzureStepError as exc:
        if exc.status == 404:
            return Observation(group=None, reads=1)
        raise
    held, listed = _pages(resources.resources.list_by_resource_group(resource_group))
    clusters, computed = _clusters(clients, subscription, resource_group, workspace)
    role_names, defined = roles.names(subscription)
    known = frozenset(p.lower() for p in known_principals)
    assignments, assigned = _assignments(clients, subscription, group.id, role_names, principals, known)
    return Observation(
        group=_resource(group),
        resources=tuple(_resource(r) for r in held),
        clusters=clusters,
        assignments=assignments,
        reads=1 + listed + computed + defined + assigned,
    )
