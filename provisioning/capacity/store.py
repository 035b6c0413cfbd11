"""What Azure says about compute capacity, stored: the size catalog, core usages and workspace quotas.

Workers read Azure (``provisioning.engine.capacity_sync``) and hand the answers here as plain values;
this module never calls Azure, so ``provisioning.capacity.checks`` works from the database alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone

from provisioning.arm import WORKSPACE_PROVIDER, arm_id, family_key, family_stem
from provisioning.audit import audit_record
from provisioning.models import CoreUsage, TeamBudget, VmSize, Workspace, WorkspaceQuota

if TYPE_CHECKING:  # the adapters' plain dataclasses, for annotations only
    from provisioning.azure.quotas import QuotaResult, UsageReading, VmSizeOffer

SYSTEM = "system"
DEDICATED_TOTAL_NAME = "total cluster dedicated regional vcpus"
LOW_PRIORITY_TOTAL_NAME = "total cluster lowpriority regional vcpus"


def catalog_store(region: str, offers: Iterable[VmSizeOffer]) -> int:
    """Replace the region's size catalog with the AmlCompute sizes Azure offers there; returns how many."""
    by_name = {o.name.upper(): o for o in offers}
    now = timezone.now()
    rows = [
        VmSize(
            region=region,
            name=name,
            display_name=o.name,
            family=o.family,
            vcpus=o.vcpus,
            gpus=o.gpus,
            memory_gb=o.memory_gb,
            low_priority_capable=o.low_priority_capable,
            refreshed_at=now,
        )
        for name, o in by_name.items()
    ]
    with transaction.atomic():
        VmSize.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["region", "name"],
            update_fields=[
                "display_name",
                "family",
                "vcpus",
                "gpus",
                "memory_gb",
                "low_priority_capable",
                "refreshed_at",
            ],
        )
        VmSize.objects.filter(region=region).exclude(name__in=list(by_name)).delete()
    return len(rows)


def _usage_scope(reading: UsageReading, families: dict[str, str]) -> tuple[str, str] | None:
    """(scope, family) of a subscription's usage row; None for rows the portal does not keep.

    Azure names families in usages ("Standard DSv2 Family Cluster Dedicated vCPUs") differently from
    the size catalog ("standardDSv2Family"); the catalog's spelling wins where the two match.
    """
    name = reading.name.lower()
    if reading.kind == "dedicatedCores" or name == DEDICATED_TOTAL_NAME:
        return CoreUsage.Scope.DEDICATED_TOTAL, ""
    if reading.kind == "lowPriorityCores" or name == LOW_PRIORITY_TOTAL_NAME:
        return CoreUsage.Scope.LOW_PRIORITY_TOTAL, ""
    if reading.kind == "vmFamily" and not reading.low_priority:
        family = families.get(family_stem(reading.name)) or family_key(reading.name)
        return CoreUsage.Scope.FAMILY, family
    return None


def usage_store(subscription: str, region: str, readings: Iterable[UsageReading]) -> int:
    """Replace the subscription's core usages and limits in the region with Azure's; returns how many."""
    families = {
        family_stem(f): f
        for f in VmSize.objects.filter(region=region).values_list("family", flat=True).distinct()
    }
    now = timezone.now()
    rows: dict[tuple[str, str], CoreUsage] = {}
    for reading in readings:
        scope = _usage_scope(reading, families) if reading.subscription_level else None
        if scope is not None:
            rows[scope] = CoreUsage(
                subscription_id=subscription,
                region=region,
                scope=scope[0],
                family=scope[1],
                name=reading.name,
                current=reading.current,
                limit=reading.limit,
                refreshed_at=now,
            )
    with transaction.atomic():
        CoreUsage.objects.bulk_create(
            list(rows.values()),
            update_conflicts=True,
            unique_fields=["subscription_id", "region", "scope", "family"],
            update_fields=["name", "current", "limit", "refreshed_at"],
        )
        stale = CoreUsage.objects.filter(subscription_id=subscription, region=region)
        for kept_scope, kept_family in rows:
            stale = stale.exclude(scope=kept_scope, family=kept_family)
        stale.delete()
    return len(rows)


def team_quota_limits(workspace: Workspace) -> dict[str, int]:
    """The dedicated vCPUs per family the workspace's team (or project) has in its region (its quota)."""
    budgets = TeamBudget.objects.filter(
        department=workspace.department,
        team=workspace.team,
        project=workspace.project,
        region=workspace.region,
    ).order_by("family")
    return {b.family: b.dedicated_cores for b in budgets}


def workspace_arm_id(workspace: Workspace) -> str:
    """The workspace's ARM id: as Azure reported it, or built from its names before it exists."""
    return workspace.azure_id or arm_id(
        workspace.subscription_id,
        workspace.resource_group,
        WORKSPACE_PROVIDER,
        workspace.workspace_name,
    )


def workspace_quotas_record(
    *,
    workspace: Workspace,
    results: Iterable[QuotaResult],
    request_id: int | None = None,
    actor: Any = SYSTEM,
) -> list[WorkspaceQuota]:
    """Store Azure's answer per family; audit what was sent (a change or a refusal)."""
    results = list(results)
    now = timezone.now()
    with transaction.atomic():
        rows = [
            WorkspaceQuota.objects.update_or_create(
                workspace=workspace,
                family=r.family,
                defaults={
                    "requested": r.requested,
                    "applied": r.applied,
                    "status": r.status,
                    "message": r.message,
                    "applied_at": now,
                },
            )[0]
            for r in results
        ]
        sent = [r for r in results if r.sent]
        if sent:
            refused = [r for r in sent if not r.ok]
            audit_record(
                actor=actor,
                action="workspace_quota.refused" if refused else "workspace_quota.applied",
                obj=workspace,
                request_id=request_id,
                workspace_name=workspace.workspace_name,
                after={
                    r.family: {"requested": r.requested, "applied": r.applied, "status": r.status}
                    for r in sent
                },
                message=" ".join(r.message for r in refused)
                or f"workspace quota set for {len(sent)} VM families",
            )
    return rows
