"""The daily spend read: each subscription's month to date from Cost Management, stored per workspace.

One Cost Management query per subscription (``provisioning.azure.costs``), with no database transaction
open; then each workspace's rows are recorded in its own transaction (``provisioning.workflow.spend``). A
subscription that cannot be read, or a workspace that cannot be recorded, is logged and its error stored;
the others go on. Safe to run twice: the same answer changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any

from provisioning.azure import costs
from provisioning.azure.clients import AzureClients
from provisioning.capacity.spend import rows_by_workspace, spend_figures, this_month
from provisioning.models import ResourceState, Workspace
from provisioning.workflow.spend import spend_failed, spend_record

logger = logging.getLogger(__name__)


def spend_workspaces(workspace_ids: list[int] | None = None) -> list[Workspace]:
    """The workspaces whose spend is read: active ones, managed or observed."""
    found = Workspace.objects.filter(state=ResourceState.ACTIVE).exclude(resource_group="")
    if workspace_ids is not None:
        found = found.filter(pk__in=workspace_ids)
    return list(found.order_by("subscription_id", "workspace_name"))


def _subscription_refresh(azure: AzureClients, subscription: str, workspaces: list[Workspace]) -> list[str]:
    """Read and record one subscription's workspaces; returns the errors (one per failed workspace)."""
    month = this_month()
    try:
        rows = costs.month_to_date_costs(
            azure, subscription=subscription, resource_groups={ws.resource_group for ws in workspaces}
        )
    except Exception as exc:  # one subscription's failure must not stop the others
        logger.exception("spend of subscription %s not read", subscription)
        for ws in workspaces:
            spend_failed(workspace_id=ws.pk, error=str(exc))
        return [f"{ws.workspace_name}: {exc}" for ws in workspaces]
    by_workspace, unclaimed = rows_by_workspace(workspaces, rows)
    if unclaimed:
        logger.info("%d cost rows in %s belong to no portal workspace", len(unclaimed), subscription)
    errors = []
    for ws in workspaces:
        try:
            spend_record(workspace_id=ws.pk, rows=by_workspace[ws.pk], month=month)
        except Exception as exc:  # one workspace's failure must not stop the others
            logger.exception("spend of workspace %s not recorded", ws.workspace_name)
            spend_failed(workspace_id=ws.pk, error=str(exc))
            errors.append(f"{ws.workspace_name}: {exc}")
    return errors


def spend_refresh(
    clients: AzureClients | None = None, *, workspace_ids: list[int] | None = None
) -> dict[str, Any]:
    """Read this month's spend of every active workspace (or of ``workspace_ids``) and record it.

    Returns a JSON-safe summary: each workspace's figures (``SpendFigures.as_dict``) and the errors.
    """
    workspaces = spend_workspaces(workspace_ids)
    by_subscription: dict[str, list[Workspace]] = defaultdict(list)
    for ws in workspaces:
        by_subscription[ws.subscription_id].append(ws)
    errors: list[str] = []
    with AzureClients.given_or_own(clients) as azure:
        for subscription, group in by_subscription.items():
            errors += _subscription_refresh(azure, subscription, group)
    return {"workspaces": [f.as_dict() for f in spend_figures(workspaces)], "errors": errors}
