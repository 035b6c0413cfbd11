"""What Azure says about compute capacity, written into the database by workers.

- The size catalog (``VmSize``) and the subscription's core usages (``CoreUsage``) of every allowed
  subscription and region, read periodically (``capacity_refresh``) so that ``provisioning.capacity.checks``
  checks requests without calling Azure.
- Team budgets applied as AzureML workspace-level quota (``workspace_quota_apply``,
  ``team_quota_apply``): Azure's answer per family, refusal reasons included, lands in
  ``WorkspaceQuota``.
- The guard over the clusters that exist (``clusters_guard``), made by the portal or not: each breach
  of policy is a ``ClusterFlag``, opened and resolved with an audit event.

Azure is called with no database transaction open; each write is a short transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.audit import audit_record
from provisioning.azure import quotas
from provisioning.azure.clients import AzureClients
from provisioning.azure.operations import OWNERSHIP_TAG, OWNERSHIP_VALUE, AzureStepError, arm_id
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    Cluster,
    ClusterFlag,
    CoreUsage,
    Environment,
    EnvironmentPolicy,
    Priority,
    ResourceState,
    TeamBudget,
    VmSize,
    Workspace,
    WorkspaceQuota,
)

logger = logging.getLogger(__name__)

SYSTEM = "system"
DEDICATED_TOTAL_NAME = "total cluster dedicated regional vcpus"
LOW_PRIORITY_TOTAL_NAME = "total cluster lowpriority regional vcpus"


@contextmanager
def _azure(clients: AzureClients | None) -> Iterator[AzureClients]:
    """The given clients, or clients from settings closed afterwards."""
    if clients is not None:
        yield clients
        return
    own = AzureClients.from_settings()
    try:
        yield own
    finally:
        own.close()


def _active_subscriptions() -> list[str]:
    return list(
        AllowedSubscription.objects.filter(is_active=True)
        .order_by("subscription_id")
        .values_list("subscription_id", flat=True)
    )


# --- size catalog and core usages ---------------------------------------------------------------------------


def catalog_refresh(clients: AzureClients, region: str, *, subscription: str = "") -> int:
    """Replace the region's size catalog with the AmlCompute sizes Azure offers there; returns how many.

    Sizes are the same for every subscription in practice; ``subscription`` (default: the first
    allowed one) is only whose name the call is made in.
    """
    subscription = subscription or next(iter(_active_subscriptions()), "")
    if not subscription:
        return 0
    offers = {
        o.name.upper(): o for o in quotas.list_vm_sizes(clients, subscription=subscription, location=region)
    }
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
        for name, o in offers.items()
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
        VmSize.objects.filter(region=region).exclude(name__in=list(offers)).delete()
    return len(rows)


def _usage_scope(reading: quotas.UsageReading, families: dict[str, str]) -> tuple[str, str] | None:
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
        family = families.get(quotas.family_stem(reading.name)) or quotas.family_key(reading.name)
        return CoreUsage.Scope.FAMILY, family
    return None


def usage_refresh(clients: AzureClients, subscription: str, region: str) -> int:
    """Replace the subscription's core usages and limits in the region with Azure's; returns how many."""
    readings = quotas.list_core_usages(clients, subscription=subscription, location=region)
    families = {
        quotas.family_stem(f): f
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


def capacity_refresh(clients: AzureClients | None = None) -> dict[str, Any]:
    """Size catalog and usages of every active allowed subscription and region.

    A region that fails (Azure down, no permission) is logged and reported in ``errors``; the others
    are refreshed all the same. Returns a JSON-safe summary (the RQ job's result).
    """
    summary: dict[str, Any] = {"sizes": {}, "usages": {}, "errors": []}
    regions = AllowedRegion.objects.filter(is_active=True).order_by("name").values_list("name", flat=True)
    with _azure(clients) as azure:
        for region in regions:
            for subscription in _active_subscriptions():
                try:
                    if region not in summary["sizes"]:
                        summary["sizes"][region] = catalog_refresh(azure, region, subscription=subscription)
                    summary["usages"][f"{subscription}/{region}"] = usage_refresh(azure, subscription, region)
                except Exception as exc:  # one region's failure must not stop the others
                    logger.exception("capacity refresh of %s in subscription %s failed", region, subscription)
                    summary["errors"].append(f"{region} in {subscription}: {exc}")
    return summary


# --- workspace quotas from team budgets ---------------------------------------------------------------------


def team_quota_limits(workspace: Workspace) -> dict[str, int]:
    """The dedicated vCPUs per family the workspace's team has in its region (its workspace quota)."""
    budgets = TeamBudget.objects.filter(
        department=workspace.department, team=workspace.team, region=workspace.region
    ).order_by("family")
    return {b.family: b.dedicated_cores for b in budgets}


def workspace_arm_id(workspace: Workspace) -> str:
    """The workspace's ARM id: as Azure reported it, or built from its names before it exists."""
    return workspace.azure_id or arm_id(
        workspace.subscription_id,
        workspace.resource_group,
        "Microsoft.MachineLearningServices/workspaces",
        workspace.workspace_name,
    )


def workspace_quotas_record(
    *,
    workspace: Workspace,
    results: Iterable[quotas.QuotaResult],
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
    department: str, team: str, region: str, *, clients: AzureClients | None = None
) -> dict[str, Any]:
    """Apply a team's budgets to each of its active workspaces in the region (after a budget change).

    Returns a JSON-safe summary: Azure's status per workspace and family, and errors per workspace.
    """
    summary: dict[str, Any] = {"workspaces": {}, "errors": []}
    workspaces = Workspace.objects.filter(
        department=department, team=team, region=region, state=ResourceState.ACTIVE
    ).order_by("workspace_name")
    with _azure(clients) as azure:
        for workspace in workspaces:
            try:
                rows = workspace_quota_apply(azure, workspace)
            except AzureStepError as exc:
                logger.warning("workspace quota of %s not applied: %s", workspace.workspace_name, exc)
                summary["errors"].append(f"{workspace.workspace_name}: {exc}")
                continue
            summary["workspaces"][workspace.workspace_name] = {row.family: row.status for row in rows}
    return summary


# --- the guard over the clusters that exist -----------------------------------------------------------------


@dataclass(frozen=True)
class Rules:
    """What a cluster is checked against: its environment's policy, or what holds for every environment."""

    environment: str  # "" when the workspace's environment is unknown
    allowed_sizes: frozenset[str]  # upper case
    portal_sizes: frozenset[str]
    max_idle_seconds: int
    dedicated_allowed: bool

    @property
    def where(self) -> str:
        return f"the {self.environment} environment" if self.environment else "any environment"


def _policies() -> dict[str, EnvironmentPolicy]:
    """Each environment's policy; defaults (unsaved) for an environment no admin has edited."""
    saved = {p.environment: p for p in EnvironmentPolicy.objects.prefetch_related("allowed_sizes")}
    return {env: saved.get(env) or EnvironmentPolicy(environment=env) for env in Environment.values}


def _environment_rules(policy: EnvironmentPolicy, portal_sizes: frozenset[str]) -> Rules:
    chosen = (
        frozenset(s.name.upper() for s in policy.allowed_sizes.all() if s.is_active)
        if policy.pk
        else frozenset()
    )
    return Rules(
        environment=policy.environment,
        allowed_sizes=(chosen or portal_sizes) & portal_sizes,
        portal_sizes=portal_sizes,
        max_idle_seconds=policy.max_idle_seconds,
        dedicated_allowed=policy.dedicated_allowed,
    )


def guard_rules() -> dict[str, Rules]:
    """Rules per environment, and under "" the rules for a workspace whose environment is unknown.

    Unknown means a workspace the portal did not make and without a valid ``environment`` tag. Only
    what holds for every environment applies to it: min nodes above 0, sizes the portal allows, the
    longest idle time any policy allows, and dedicated nodes only if no environment allows them.
    """
    names = AllowedVmSize.objects.filter(is_active=True).values_list("name", flat=True)
    portal_sizes = frozenset(name.upper() for name in names)
    rules = {env: _environment_rules(policy, portal_sizes) for env, policy in _policies().items()}
    rules[""] = Rules(
        environment="",
        allowed_sizes=portal_sizes,
        portal_sizes=portal_sizes,
        max_idle_seconds=max(r.max_idle_seconds for r in rules.values()),
        dedicated_allowed=any(r.dedicated_allowed for r in rules.values()),
    )
    return rules


def cluster_findings(
    cluster: quotas.ClusterListing, rules: Rules, *, justification: str = ""
) -> list[tuple[str, str]]:
    """(flag kind, detail) for each way the cluster breaks the rules (pure: no I/O)."""
    found: list[tuple[str, str]] = []
    if cluster.min_nodes > 0:
        why = (
            f"the portal recorded a justification: {justification}"
            if justification
            else "no justification is recorded in the portal"
        )
        found.append(
            (ClusterFlag.Kind.MIN_NODES, f"{cluster.min_nodes} nodes stay up (and bill) while idle; {why}")
        )
    if cluster.idle_seconds > rules.max_idle_seconds:
        found.append(
            (
                ClusterFlag.Kind.IDLE_TIME,
                f"idle nodes are kept {cluster.idle_seconds} s before scale-down; policy allows at most "
                f"{rules.max_idle_seconds} s in {rules.where}",
            )
        )
    if cluster.vm_size not in rules.portal_sizes:
        found.append((ClusterFlag.Kind.SIZE, f"{cluster.vm_size} is not a VM size the portal allows"))
    elif cluster.vm_size not in rules.allowed_sizes:
        found.append((ClusterFlag.Kind.SIZE, f"{cluster.vm_size} is not allowed in {rules.where}"))
    if cluster.priority == Priority.DEDICATED and not rules.dedicated_allowed:
        found.append((ClusterFlag.Kind.DEDICATED, f"dedicated nodes are not allowed in {rules.where}"))
    return found


@dataclass(frozen=True)
class Sighting:
    """A cluster seen in Azure, with its workspace's environment and the portal's row if it made it."""

    subscription: str
    workspace: quotas.WorkspaceListing
    cluster: quotas.ClusterListing
    environment: str  # "" when unknown
    portal_cluster: Cluster | None = None

    @property
    def managed_by_portal(self) -> bool:
        return self.portal_cluster is not None or self.cluster.tags.get(OWNERSHIP_TAG) == OWNERSHIP_VALUE

    @property
    def justification(self) -> str:
        return self.portal_cluster.justification.strip() if self.portal_cluster is not None else ""


def _flag_seen(sighting: Sighting, kind: str, detail: str, now: Any) -> bool:
    """Keep an open flag up to date, or open one (with its audit event); True when opened."""
    ws, cluster = sighting.workspace, sighting.cluster
    try:
        with transaction.atomic():
            flag = (
                ClusterFlag.objects.select_for_update()
                .filter(azure_id__iexact=cluster.azure_id, kind=kind, resolved_at__isnull=True)
                .first()
            )
            if flag is not None:
                flag.detail, flag.last_seen, flag.managed_by_portal = detail, now, sighting.managed_by_portal
                flag.save(update_fields=["detail", "last_seen", "managed_by_portal"])
                return False
            flag = ClusterFlag.objects.create(
                subscription_id=sighting.subscription,
                region=cluster.location or ws.location,
                resource_group=ws.resource_group,
                workspace_name=ws.name,
                cluster_name=cluster.name,
                azure_id=cluster.azure_id,
                kind=kind,
                detail=detail,
                managed_by_portal=sighting.managed_by_portal,
                first_seen=now,
                last_seen=now,
            )
            _flag_audit(flag, "cluster_flag.opened")
    except IntegrityError:  # another guard opened the same flag a moment ago
        return False
    return True


def _flag_audit(flag: ClusterFlag, action: str) -> None:
    audit_record(
        actor=SYSTEM,
        action=action,
        obj=flag,
        object_type="cluster_flag",
        workspace_name=flag.workspace_name,
        after={
            "cluster": flag.azure_id,
            "kind": flag.kind,
            "detail": flag.detail,
            "managed_by_portal": flag.managed_by_portal,
        },
        message=f"{flag.workspace_name}/{flag.cluster_name}: {flag.get_kind_display()}"
        + ("" if action.endswith("resolved") else f" ({flag.detail})"),
    )


def _flags_resolve(
    seen: set[tuple[str, str]], scanned: set[str], unscanned_workspaces: set[str], now: Any
) -> int:
    """Resolve the open flags of the scanned subscriptions that no longer hold; returns how many."""
    resolved = 0
    for flag in ClusterFlag.objects.filter(resolved_at__isnull=True, subscription_id__in=scanned):
        azure_id = flag.azure_id.lower()
        if (azure_id, flag.kind) in seen or azure_id.split("/computes/")[0] in unscanned_workspaces:
            continue
        with transaction.atomic():
            locked = (
                ClusterFlag.objects.select_for_update().filter(pk=flag.pk, resolved_at__isnull=True).first()
            )
            if locked is None:
                continue
            locked.resolved_at = now
            locked.save(update_fields=["resolved_at"])
            _flag_audit(locked, "cluster_flag.resolved")
        resolved += 1
    return resolved


def _portal_rows(subscription: str) -> tuple[dict[str, Workspace], dict[tuple[int, str], Cluster]]:
    """The portal's workspaces of a subscription by name, and their live clusters by (workspace, name)."""
    workspaces = {w.workspace_name.lower(): w for w in Workspace.objects.filter(subscription_id=subscription)}
    clusters = {
        (c.workspace_id, c.name.lower()): c
        for c in Cluster.objects.filter(workspace__subscription_id=subscription).exclude(
            state=ResourceState.REVOKED
        )
    }
    return workspaces, clusters


def _environment(known: Workspace | None, listed: quotas.WorkspaceListing) -> str:
    """The portal's environment of the workspace, else its ``environment`` tag, else "" (unknown)."""
    if known is not None:
        return known.environment
    tag = listed.tags.get("environment", "").strip().lower()
    return tag if tag in Environment.values else ""


def _subscription_sightings(
    azure: AzureClients, subscription: str, unscanned: set[str], errors: list[str]
) -> list[Sighting]:
    """Every AmlCompute cluster of every workspace Azure lists in the subscription.

    A workspace whose clusters cannot be listed goes to ``unscanned``: its flags are left as they are.
    """
    portal_workspaces, portal_clusters = _portal_rows(subscription)
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
        environment = _environment(known, listed)
        for cluster in clusters:
            row = portal_clusters.get((known.pk, cluster.name.lower())) if known is not None else None
            found.append(Sighting(subscription, listed, cluster, environment, row))
    return found


def clusters_guard(clients: AzureClients | None = None) -> dict[str, Any]:
    """Flag every AmlCompute cluster of the allowed subscriptions that breaks policy; resolve old flags.

    Every workspace Azure lists is checked, whether the portal made it or not. A portal workspace is
    checked against its environment's policy; another one against its ``environment`` tag's policy,
    or, without a valid tag, only against what holds for every environment (see ``guard_rules``).
    New flags and resolutions are audited. A subscription or workspace that cannot be listed keeps
    its flags unchanged. Returns a JSON-safe summary.
    """
    summary: dict[str, Any] = {"clusters": 0, "flagged": 0, "opened": 0, "resolved": 0, "errors": []}
    rules = guard_rules()
    now = timezone.now()
    seen: set[tuple[str, str]] = set()
    scanned: set[str] = set()
    unscanned: set[str] = set()
    with _azure(clients) as azure:
        for subscription in _active_subscriptions():
            try:
                sightings = _subscription_sightings(azure, subscription, unscanned, summary["errors"])
            except Exception as exc:  # one subscription's failure must not stop the others
                logger.exception("cluster guard of subscription %s failed", subscription)
                summary["errors"].append(f"{subscription}: {exc}")
                continue
            scanned.add(subscription)
            for sighting in sightings:
                summary["clusters"] += 1
                findings = cluster_findings(
                    sighting.cluster, rules[sighting.environment], justification=sighting.justification
                )
                for kind, detail in findings:
                    seen.add((sighting.cluster.azure_id.lower(), kind))
                    summary["opened"] += int(_flag_seen(sighting, kind, detail, now))
    summary["flagged"] = len(seen)
    summary["resolved"] = _flags_resolve(seen, scanned, unscanned, now)
    return summary
