"""Recording what a reconcile read from Azure: the observed state, and the drift items it shows.

A worker (``provisioning.engine.reconcile``) reads Azure with no transaction open and hands each
workspace's ``Observation`` to ``observation_record``, which compares it with the approved state as the
database holds it at that moment and, in one short transaction on the locked workspace: updates the
observed rows, opens an item per new difference (audited ``drift.found``), refreshes ``last_seen`` of the
items seen again, and resolves the open items no longer seen (audited ``drift.resolved``). Running it
twice with the same observation changes nothing but ``last_seen`` and ``observed_at``.

``reconcile_request`` is the workspace page's button: it queues a reconcile of one workspace now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from accounts import personas
from provisioning import queue
from provisioning.audit import audit_record
from provisioning.drift import (
    Approved,
    ApprovedCluster,
    ApprovedMember,
    Difference,
    Observation,
    SeenAssignment,
    compare,
)
from provisioning.models import (
    AllowedSubscription,
    DriftItem,
    Membership,
    ObservedResource,
    ResourceState,
    Workspace,
)
from provisioning.workflow import selectors

ACTOR = "reconcile"
RECONCILE_ALL_JOB = "provisioning.jobs.reconcile_all"
RECONCILE_ALL_JOB_ID = "provisioning-reconcile"
RECONCILE_WORKSPACE_JOB = "provisioning.jobs.reconcile_workspace"
Status = DriftItem.Status
# States of rows a request is still making or removing: neither expected in Azure nor reported as added.
IN_FLIGHT = (ResourceState.PENDING, ResourceState.PROVISIONING, ResourceState.FAILED, ResourceState.REVOKING)


def reconcile_job_id(workspace_id: int) -> str:
    """The on-demand reconcile of one workspace: one job id, so asking twice queues it once."""
    return f"reconcile-workspace-{workspace_id}"


# --- the approved state ------------------------------------------------------------------------------------


def approved_state(ws: Workspace) -> Approved:
    """What the portal approved for a workspace: its names, active clusters and active memberships."""
    clusters = list(ws.clusters.exclude(state=ResourceState.REVOKED))
    members = list(ws.memberships.exclude(state=ResourceState.REVOKED))
    active = ResourceState.ACTIVE
    return Approved(
        subscription_id=ws.subscription_id,
        names=ws.plan_names(),
        clusters=tuple(
            ApprovedCluster(c.name, c.vm_size, c.priority, c.min_nodes, c.max_nodes, c.idle_seconds)
            for c in clusters
            if c.state == active
        ),
        members=tuple(
            ApprovedMember(m.principal_name, m.principal_type, m.persona, m.object_id)
            for m in members
            if m.state == active
        ),
        in_flight_clusters=frozenset(c.name for c in clusters if c.state in IN_FLIGHT),
        in_flight_principals=frozenset(m.object_id for m in members if m.state in IN_FLIGHT and m.object_id),
        admin_principals=frozenset(
            AllowedSubscription.objects.filter(subscription_id=ws.subscription_id)
            .exclude(workspace_admin_group_id="")
            .values_list("workspace_admin_group_id", flat=True)
        ),
        observed=ws.is_observed,
        scientist_role=ws.scientist_role,
    )


@dataclass(frozen=True)
class ReconcileTarget:
    """A managed workspace to read from Azure, with the principals the portal already knows by name."""

    workspace_id: int
    name: str
    subscription_id: str
    resource_group: str
    known_principals: frozenset[str]


def reconcile_targets(workspace_ids: list[int] | None = None) -> list[ReconcileTarget]:
    """The managed (active) workspaces to reconcile: all of them, or those named by id."""
    workspaces = Workspace.objects.filter(state=ResourceState.ACTIVE).order_by("workspace_name")
    if workspace_ids is not None:
        workspaces = workspaces.filter(pk__in=workspace_ids)
    known: dict[int, set[str]] = {}
    ids = Membership.objects.filter(workspace__in=workspaces).exclude(object_id="")
    for workspace_id, object_id in ids.values_list("workspace_id", "object_id"):
        known.setdefault(workspace_id, set()).add(object_id.lower())
    return [
        ReconcileTarget(
            ws.pk, ws.workspace_name, ws.subscription_id, ws.resource_group, frozenset(known.get(ws.pk, ()))
        )
        for ws in workspaces.only("pk", "workspace_name", "subscription_id", "resource_group")
    ]


# --- recording an observation ------------------------------------------------------------------------------


def _assignment_name(a: SeenAssignment, members: dict[str, str]) -> str:
    who = members.get(a.principal_id.lower()) or a.principal_name or a.principal_id
    return f"{a.role_name or a.role_definition_id} for {who}"[:300]


def _observed_rows(ws: Workspace, seen: Observation, at: datetime) -> list[ObservedResource]:
    """The observation as rows: the group, its resources, the clusters, the role assignments."""
    kind = ObservedResource.Kind
    rows = []
    if seen.group is not None:
        g = seen.group
        rows.append(
            ObservedResource(
                workspace=ws,
                kind=kind.RESOURCE_GROUP,
                azure_id=g.azure_id,
                name=g.name,
                properties={"location": g.location, "tags": g.tags},
                managed=g.managed,
                observed_at=at,
            )
        )
    for r in seen.resources:
        props = {"type": r.type, "location": r.location, "tags": r.tags}
        rows.append(
            ObservedResource(
                workspace=ws,
                kind=kind.RESOURCE,
                azure_id=r.azure_id,
                name=r.name,
                properties=props,
                managed=r.managed,
                observed_at=at,
            )
        )
    for c in seen.clusters:
        rows.append(
            ObservedResource(
                workspace=ws,
                kind=kind.CLUSTER,
                azure_id=c.azure_id,
                name=c.name,
                properties={**c.settings(), "tags": c.tags},
                managed=c.managed,
                observed_at=at,
            )
        )
    members = {m.object_id.lower(): m.principal_name for m in ws.memberships.exclude(object_id="")}
    for a in seen.assignments:
        props = {
            "role": a.role_name,
            "role_definition_id": a.role_definition_id,
            "principal_id": a.principal_id,
            "principal_type": a.principal_type,
            "principal": members.get(a.principal_id.lower()) or a.principal_name,
            "scope": a.scope,
        }
        rows.append(
            ObservedResource(
                workspace=ws,
                kind=kind.ROLE_ASSIGNMENT,
                azure_id=a.azure_id,
                name=_assignment_name(a, members),
                properties=props,
                managed=True,
                observed_at=at,
            )
        )
    return rows


def _observed_replace(ws: Workspace, seen: Observation, at: datetime) -> None:
    """Make the workspace's observed rows what was read: rows read again are updated, others go."""
    fresh = {row.azure_id: row for row in _observed_rows(ws, seen, at)}
    kept = {row.azure_id: row for row in ws.observed.all()}
    ws.observed.exclude(azure_id__in=list(fresh)).delete()
    changed = []
    for azure_id, row in fresh.items():
        old = kept.get(azure_id)
        if old is None:
            continue
        old.kind, old.name, old.properties, old.managed = row.kind, row.name, row.properties, row.managed
        old.observed_at = at
        changed.append(old)
    ObservedResource.objects.bulk_update(changed, ["kind", "name", "properties", "managed", "observed_at"])
    ObservedResource.objects.bulk_create(row for azure_id, row in fresh.items() if azure_id not in kept)


def _summary(item: DriftItem | Difference) -> dict[str, Any]:
    return {
        "kind": item.kind,
        "resource_id": item.resource_id,
        "field": item.field,
        "expected": item.expected,
        "actual": item.actual,
    }


def drift_audit(
    item: DriftItem,
    action: str,
    *,
    actor: Any = ACTOR,
    message: str = "",
    request_id: int | None = None,
    **extra: Any,
) -> None:
    """Audit one drift item's event (found, resolved, accepted, remediating, remediated, reopened)."""
    audit_record(
        actor=actor,
        action=action,
        obj=item,
        object_type="drift_item",
        request_id=request_id,
        workspace_name=item.workspace.workspace_name,
        after={**_summary(item), "status": item.status, **extra},
        message=message,
    )


def _standing(ws: Workspace) -> QuerySet[DriftItem]:
    """Items a reconcile matches differences against: open, being remediated, or accepted and standing."""
    return ws.drift_items.filter(
        Q(status__in=DriftItem.LIVE) | Q(status=Status.ACCEPTED, closed_at__isnull=True)
    )


def _item_open(ws: Workspace, d: Difference, at: datetime) -> DriftItem:
    item = DriftItem.objects.create(
        workspace=ws,
        kind=d.kind,
        key=d.key,
        resource_id=d.resource_id,
        field=d.field,
        expected=d.expected,
        actual=d.actual,
        details=d.details,
        first_seen=at,
        last_seen=at,
    )
    drift_audit(
        item, "drift.found", message=f"{item.get_kind_display()}: {item.resource_id} {item.field}".strip()
    )
    return item


def _item_seen_again(item: DriftItem, d: Difference) -> bool:
    """An open item takes what Azure holds now (a cluster resized again); True when that changed it."""
    if item.status != Status.OPEN or (item.expected, item.actual, item.details) == (
        d.expected,
        d.actual,
        d.details,
    ):
        return False
    item.expected, item.actual, item.details = d.expected, d.actual, d.details
    item.save(update_fields=["expected", "actual", "details"])
    return True


def _item_gone(item: DriftItem, at: datetime) -> bool:
    """An item no longer seen: an open one is resolved, an accepted exception ends; True when changed."""
    if item.status == Status.OPEN:
        item.status, item.closed_at = Status.RESOLVED, at
        item.save(update_fields=["status", "closed_at"])
        drift_audit(item, "drift.resolved", message="no longer seen in Azure")
        return True
    if item.status == Status.ACCEPTED:
        item.closed_at = at
        item.save(update_fields=["closed_at"])
        drift_audit(item, "drift.resolved", message="the accepted exception is no longer seen in Azure")
        return True
    return False  # being remediated: the end of its run decides


def observation_record(*, workspace_id: int, seen: Observation, observed_at: datetime) -> dict[str, Any]:
    """Record one workspace's observation and the drift it shows (see the module's docstring).

    Returns a JSON-safe summary: the workspace, the ARM reads, items found and resolved, and every open item.
    """
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().get(pk=workspace_id)
        differences = compare(approved_state(ws), seen)
        _observed_replace(ws, seen, observed_at)
        standing = {item.key: item for item in _standing(ws).select_for_update()}
        found = resolved = 0
        for d in differences:
            item = standing.pop(d.key, None)
            if item is None:
                _item_open(ws, d, observed_at)
                found += 1
            else:
                _item_seen_again(item, d)
        seen_again = [d.key for d in differences]
        _standing(ws).filter(key__in=seen_again).update(last_seen=observed_at)
        for item in standing.values():
            resolved += int(_item_gone(item, observed_at))
        drift = [
            {"id": i.pk, **_summary(i)} for i in ws.drift_items.filter(status=Status.OPEN).order_by("pk")
        ]
    return {
        "workspace_id": ws.pk,
        "name": ws.workspace_name,
        "reads": seen.reads,
        "found": found,
        "resolved": resolved,
        "drift": drift,
    }


# --- reads for the pages -----------------------------------------------------------------------------------


def with_open_drift(workspaces: QuerySet[Workspace]) -> QuerySet[Workspace]:
    """``workspaces`` annotated with ``open_drift``: how many open drift items each has (one subquery)."""
    count = (
        DriftItem.objects.filter(workspace=OuterRef("pk"), status=Status.OPEN)
        .order_by()
        .values("workspace")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return workspaces.annotate(open_drift=Coalesce(Subquery(count, output_field=IntegerField()), 0))


def observed_of(ws: Workspace) -> dict[str, list[ObservedResource]]:
    """What Azure held at the workspace's last reconcile, by kind (empty before its first)."""
    found: dict[str, list[ObservedResource]] = {kind: [] for kind in ObservedResource.Kind.values}
    for row in ws.observed.order_by("kind", "name"):
        found[row.kind].append(row)
    return found


# --- asking for a reconcile now ----------------------------------------------------------------------------


def can_request_reconcile(user: Any, ws: Workspace) -> bool:
    """Admins, and team leads who manage the workspace, may ask for a reconcile of it now."""
    if personas.is_admin(user):
        return True
    return personas.is_team_lead(user) and selectors.manages(user, ws.pk)


def reconcile_request(*, workspace_id: int, actor: Any) -> str:
    """Queue a reconcile of one managed workspace now (audited ``workspace.reconcile_requested``).

    Returns ``"queued"``, ``"already queued"``, ``"not active"`` (only active workspaces are compared
    with Azure) or ``"unavailable"`` (Redis is down: the scheduled reconcile reads it at its next tick).
    """
    ws = Workspace.objects.filter(pk=workspace_id).first()
    if ws is None or not can_request_reconcile(actor, ws):
        raise PermissionDenied("only admins and the workspace's team leads can ask for a reconcile")
    if ws.state != ResourceState.ACTIVE:
        return "not active"
    job_id = reconcile_job_id(ws.pk)
    if queue.job_pending(job_id):
        return "already queued"
    queued = queue.job_enqueue(
        RECONCILE_WORKSPACE_JOB,
        ws.pk,
        job_id=job_id,
        description=f"reconcile workspace {ws.workspace_name} with Azure",
        result_ttl=3600,
        failure_ttl=24 * 3600,
        when_down="the scheduled reconcile reads it at its next tick",
    )
    if not queued:
        return "unavailable"
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="workspace.reconcile_requested",
            obj=ws,
            workspace_name=ws.workspace_name,
            message="a reconcile with Azure was queued",
        )
    return "queued"
