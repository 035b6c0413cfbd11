"""The guard's rules over the clusters that exist in Azure (made by the portal or not), and its flags.

Each breach of policy is a ``ClusterFlag``, opened and resolved with an audit event. The listing of
clusters comes from a worker (``provisioning.engine.capacity_sync.clusters_guard``) as plain values.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction

from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.audit import audit_record
from provisioning.capacity.store import SYSTEM
from provisioning.models import (
    AllowedVmSize,
    Cluster,
    ClusterFlag,
    Environment,
    EnvironmentPolicy,
    Priority,
    ResourceState,
    Workspace,
)

if TYPE_CHECKING:  # the adapters' plain dataclasses, for annotations only
    from provisioning.azure.quotas import ClusterListing, WorkspaceListing

logger = logging.getLogger(__name__)


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
    cluster: ClusterListing, rules: Rules, *, justification: str = ""
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
    workspace: WorkspaceListing
    cluster: ClusterListing
    environment: str  # "" when unknown
    portal_cluster: Cluster | None = None

    @property
    def managed_by_portal(self) -> bool:
        return self.portal_cluster is not None or self.cluster.tags.get(OWNERSHIP_TAG) == OWNERSHIP_VALUE

    @property
    def justification(self) -> str:
        return self.portal_cluster.justification.strip() if self.portal_cluster is not None else ""


def flag_seen(sighting: Sighting, kind: str, detail: str, now: Any) -> bool:
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


def flags_resolve(
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


def portal_rows(subscription: str) -> tuple[dict[str, Workspace], dict[tuple[int, str], Cluster]]:
    """The portal's workspaces of a subscription by name, and their live clusters by (workspace, name)."""
    workspaces = {w.workspace_name.lower(): w for w in Workspace.objects.filter(subscription_id=subscription)}
    clusters = {
        (c.workspace_id, c.name.lower()): c
        for c in Cluster.objects.filter(workspace__subscription_id=subscription).exclude(
            state=ResourceState.REVOKED
        )
    }
    return workspaces, clusters


def environment_of(known: Workspace | None, listed: WorkspaceListing) -> str:
    """The portal's environment of the workspace, else its ``environment`` tag, else "" (unknown)."""
    if known is not None:
        return known.environment
    tag = listed.tags.get("environment", "").strip().lower()
    return tag if tag in Environment.values else ""
