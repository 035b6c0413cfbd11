"""The Azure side of adoption: discovery (reads only) and take-over (the portal's tag on each resource).

``discover`` reads every allowed subscription's AzureML workspaces and, for those the portal does not
hold, what they are made of (``provisioning.azure.discover``), concurrently (``DISCOVER_PARALLEL``) and
with no transaction open; the result is the JSON document ``manage.py discover_workspaces --json``
prints. ``discovery_run`` is the worker's job around it. ``take_over_run`` tags the workspace's resources
one by one (Tags_UpdateAtScope, Merge), auditing each, then marks the workspace managed; a failure leaves
it observed, and running it again tags what is left (tagging twice changes nothing).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from accounts.models import User
from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE, ownership_tags
from provisioning.azure import discover as azure_discover
from provisioning.azure import observe
from provisioning.azure.clients import AzureClients
from provisioning.models import AllowedSubscription, Workspace
from provisioning.workflow import adoption

logger = logging.getLogger(__name__)

DISCOVER_PARALLEL = 6


def _workspace_json(found: azure_discover.FoundWorkspace, read: dict[str, Any]) -> dict[str, Any]:
    return {
        "azure_id": found.azure_id,
        "name": found.name,
        "subscription_id": found.subscription_id,
        "resource_group": found.resource_group,
        "region": found.region,
        "tags": found.tags,
        "managed_by_portal": found.tags.get(OWNERSHIP_TAG) == OWNERSHIP_VALUE,
        "convention": adoption.convention_of(found.name, found.resource_group, found.region),
        "dependent_resources": found.dependent_resources,
        **read,
    }


def discover(
    *, subscriptions: list[str] | None = None, clients: AzureClients | None = None
) -> dict[str, Any]:
    """The AzureML workspaces of the allowed subscriptions the portal does not hold, read from Azure now.

    Returns ``{"workspaces": [...], "errors": [...]}`` (a subscription or workspace that cannot be read
    is named in ``errors``; the others are listed all the same).
    """
    subscriptions = AllowedSubscription.active_ids() if subscriptions is None else subscriptions
    held_ids, held_names = adoption.held_workspaces()
    result: dict[str, Any] = {"workspaces": [], "errors": []}
    with AzureClients.given_or_own(clients) as azure:
        candidates = []
        for subscription in subscriptions:
            try:
                listed = azure_discover.list_workspaces(azure, subscription=subscription)
            except azure_discover.AzureStepError as exc:
                result["errors"].append(f"subscription {subscription}: {exc}")
                continue
            candidates += [
                w for w in listed if w.azure_id.lower() not in held_ids and w.name.lower() not in held_names
            ]
        roles, principals = observe.RoleNames(azure), observe.PrincipalNames(azure)

        def read(found: azure_discover.FoundWorkspace) -> dict[str, Any] | str:
            try:
                return _workspace_json(
                    found, azure_discover.read_workspace(azure, found, roles=roles, principals=principals)
                )
            except azure_discover.AzureStepError as exc:
                return f"{found.azure_id}: {exc}"

        if candidates:
            with ThreadPoolExecutor(min(DISCOVER_PARALLEL, len(candidates)), "discover") as pool:
                for answer in pool.map(read, candidates):
                    if isinstance(answer, str):
                        result["errors"].append(answer)
                    else:
                        result["workspaces"].append(answer)
    result["workspaces"].sort(key=lambda w: (w["subscription_id"], w["name"].lower()))
    return result


def discovery_run(
    *, scan_id: int | None = None, actor: Any = None, clients: AzureClients | None = None
) -> Any:
    """Run a scan (the one asked for, or a new one) and record it; None when another worker has it."""
    scan = adoption.discovery_start(scan_id=scan_id, actor=actor)
    if scan is None:
        return None
    try:
        result = discover(clients=clients)
    except Exception as exc:  # recorded for the page; the worker logs it too
        logger.exception("discovery #%s failed", scan.pk)
        return adoption.discovery_record(
            scan_id=scan.pk, result={"workspaces": [], "errors": []}, error=str(exc)
        )
    return adoption.discovery_record(scan_id=scan.pk, result=result)


def take_over_run(
    *, workspace_id: int, actor_id: int | None = None, clients: AzureClients | None = None
) -> dict[str, Any]:
    """Tag every resource of an observed workspace as the portal's, then make it managed."""
    ws = Workspace.objects.get(pk=workspace_id)
    actor: Any = User.objects.filter(pk=actor_id).first() if actor_id else None
    actor = actor or "take-over"
    if not ws.is_observed:
        return {"workspace": ws.workspace_name, "tagged": [], "status": "already managed"}
    tagged = []
    with AzureClients.given_or_own(clients) as azure:
        for scope in adoption.takeover_scopes(ws):
            tags = azure_discover.tags_merge(azure, scope=scope["azure_id"], tags=ownership_tags())
            adoption.takeover_resource_tagged(workspace_id=ws.pk, scope=scope, tags=tags, actor=actor)
            tagged.append(scope["azure_id"])
    adoption.takeover_finished(workspace_id=ws.pk, actor=actor)
    return {"workspace": ws.workspace_name, "tagged": tagged, "status": "managed"}
