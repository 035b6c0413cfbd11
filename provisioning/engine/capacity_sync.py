"""The capacity work that calls Azure: refresh the size catalog and usages, apply team budgets as
workspace quota, and guard the clusters that exist. Azure is read here; what it says is stored by
``provisioning.capacity`` (store, guard). Azure is called with no database transaction open; each
write is a short transaction.
"""

from __future__ import annotations

import logging
from typing import Any

from django.utils import timezone

from provisioning.azure import quotas
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError
from provisioning.capacity import guard
from provisioning.capacity.store import (
    catalog_store,
    team_quota_limits,
    usage_store,
    workspace_arm_id,
    workspace_quotas_record,
)
from provisioning.models import AllowedRegion, AllowedSubscription, ResourceState, Workspace, WorkspaceQuota

logger = logging.getLogger(__name__)


def catalog_refresh(clients: AzureClients, region: str, *, subscription: str = "") -> int:
    """Replace the region's size catalog with the AmlCompute sizes Azure offers there; returns how many.

    Sizes are the same for every subscription in practice; ``subscription`` (default: the first
    allowed one) is only whose name the call is made in.
    """
    subscription = subscription or next(iter(AllowedSubscription.active_ids()), "")
    if not subscription:
        return 0
    return catalog_store(region, quotas.list_vm_sizes(clients, subscription=subscription, location=region))


def usage_refresh(clients: AzureClients, subscription: str, region: str) -> int:
    """Replace the subscription's core usages and limits in the region with Azure's; returns how many."""
    return usage_store(
        subscription, region, quotas.list_core_usages(clients, subscription=subscription, location=region)
    )


def capacity_refresh(clients: AzureClients | None = None) -> dict[str, Any]:
    """Size catalog and usages of every active allowed subscription and region.

    A region that fails (Azure down, no permission) is logged and reported in ``errors``; the others
    are refreshed all the same. Returns a JSON-safe summary (the RQ job's result).
    """
    summary: dict[str, Any] = {"sizes": {}, "usages": {}, "errors": []}
    regions = AllowedRegion.objects.filter(is_active=True).order_by("name").values_list("name", flat=True)
    with AzureClients.given_or_own(clients) as azure:
        for region in regions:
            for subscription in AllowedSubscription.active_ids():
                try:
                    if region not in summary["sizes"]:
                        summary["sizes"][region] = catalog_refresh(azure, region, subscription=subscription)
                    summary["usages"][f"{subscription}/{region}"] = usage_refresh(azure, subscription, region)
                except Exception as exc:  # one region's failure must not stop the others
                    logger.exception("capacity refresh of %s in subscription %s failed", region, subscription)
                    summary["errors"].append(f"{region} in {subscription}: {exc}")
    return summary


def workspace_quota_apply(clients: AzureClients, workspace: Workspace) -> list[WorkspaceQuota]:
    """Apply the team's dedicated budgets in the region as the workspace's AzureML quota, read it back
    and record Azure's answer (``WorkspaceQuota``). No budget rows: nothing is sent."""
    limits = team_quota_limits(workspace)
    if not limits:
        return []
    results = quotas.apply_workspace_quotas(
        clients,
        subscription=workspace.subscription_id,
        location=workspace.region,
        workspace_id=workspace_arm_id(workspace),
        limits=limits,
    )
    return workspace_quotas_record(workspace=workspace, results=results)


def team_quota_apply(
    department: str, team: str, region: str, project: str = "", *, clients: AzureClients | None = None
) -> dict[str, Any]:
    """Apply a team's (or one of its projects') budgets to each of its active workspaces in the region
    (after a budget change).

    Returns a JSON-safe summary: Azure's status per workspace and family, and errors per workspace.
    """
    summary: dict[str, Any] = {"workspaces": {}, "errors": []}
    # Observed (adopted, not taken over) workspaces are never written to: their quota stays as Azure has it.
    workspaces = Workspace.objects.filter(
        department=department,
        team=team,
        project=project,
        region=region,
        state=ResourceState.ACTIVE,
        management=Workspace.Management.MANAGED,
    ).order_by("workspace_name")
    with AzureClients.given_or_own(clients) as azure:
        for workspace in workspaces:
            try:
                rows = workspace_quota_apply(azure, workspace)
            except AzureStepError as exc:
                logger.warning("workspace quota of %s not applied: %s", workspace.workspace_name, exc)
                summary["errors"].append(f"{workspace.workspace_name}: {exc}")
                continue
            summary["workspaces"][workspace.workspace_name] = {row.family: row.status for row in rows}
    return summary


def _subscription_sightings(
    azure: AzureClients, subscription: str, unscanned: set[str], errors: list[str]
) -> list[guard.Sighting]:
    """Every AmlCompute cluster of every workspace Azure lists in the subscription.

    A workspace whose clusters cannot be listed goes to ``unscanned``: its flags are left as they are.
    """
    portal_workspaces, portal_clusters = guard.portal_rows(subscription)
    found = []
    for listed in quotas.list_workspaces(azure, subscription=subscription):
        try:
            clusters = quotas.list_clusters(
                azure, subscription=subscription, resource_group=listed.resource_group, workspace=listed.name
            )
        except AzureStepError as exc:
            logger.warning("clusters of workspace %s not listed: %s", listed.name, exc)
            errors.append(f"{listed.name}: {exc}")
            unscanned.add(listed.azure_id.lower())
            continue
        known = portal_workspaces.get(listed.name.lower())
        if known is not None and known.resource_group.lower() != listed.resource_group.lower():
            known = None  # the same name in another resource group is not the portal's workspace
        environment = guard.environment_of(known, listed)
        for cluster in clusters:
            row = portal_clusters.get((known.pk, cluster.name.lower())) if known is not None else None
            found.append(guard.Sighting(subscription, listed, cluster, environment, row))
    return found


def clusters_guard(clients: AzureClients | None = None) -> dict[str, Any]:
    """Flag every AmlCompute cluster of the allowed subscriptions that breaks policy; resolve old flags.

    Every workspace Azure lists is checked, whether the portal made it or not. A portal workspace is
    checked against its environment's policy; another one against its ``environment`` tag's policy,
    or, without a valid tag, only against what holds for every environment (see ``guard.guard_rules``).
    New flags and resolutions are audited. A subscription or workspace that cannot be listed keeps
    its flags unchanged. Returns a JSON-safe summary.
    """
    summary: dict[str, Any] = {"clusters": 0, "flagged": 0, "opened": 0, "resolved": 0, "errors": []}
    rules = guard.guard_rules()
    now = timezone.now()
    seen: set[tuple[str, str]] = set()
    scanned: set[str] = set()
    unscanned: set[str] = set()
    with AzureClients.given_or_own(clients) as azure:
        for subscription in AllowedSubscription.active_ids():
            try:
                sightings = _subscription_sightings(azure, subscription, unscanned, summary["errors"])
            except Exception as exc:  # one subscription's failure must not stop the others
                logger.exception("cluster guard of subscription %s failed", subscription)
                summary["errors"].append(f"{subscription}: {exc}")
                continue
            scanned.add(subscription)
            for sighting in sightings:
                summary["clusters"] += 1
                findings = guard.cluster_findings(
                    sighting.cluster, rules[sighting.environment], justification=sighting.justification
                )
                for kind, detail in findings:
                    seen.add((sighting.cluster.azure_id.lower(), kind))
                    summary["opened"] += int(guard.flag_seen(sighting, kind, detail, now))
    summary["flagged"] = len(seen)
    summary["resolved"] = guard.flags_resolve(seen, scanned, unscanned, now)
    return summary
