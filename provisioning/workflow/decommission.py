"""Decommissioning a workspace: a request whose plan removes everything the portal made for it.

A team lead who manages the workspace, or an admin, asks with a reason (and whether to keep the data
storage account and data lake). Submitting queues a reconcile of the workspace, so the plan is computed
from what Azure holds now (its ``ObservedResource`` rows): every cluster, role assignment and managed
resource to delete (``changes``, by Azure id in ``removals``), and what stays (``kept``): the portal's
custom roles, the kept data accounts (access removed, tagged as retained until a date), and anything in
the resource group without the portal's tag, named. The group itself is deleted only when all it holds
goes. Approval goes through ``services.request_approve`` (a ``pro`` workspace needs a second admin); the
engine runs the removals; ``decommission_finished`` ends it: the workspace is decommissioned (kept with
its history), its clusters and memberships revoked.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import personas
from provisioning import queue
from provisioning.arm import CUSTOM_ROLES
from provisioning.audit import audit_record
from provisioning.models import (
    ChangeRequest,
    Cluster,
    Environment,
    Membership,
    ObservedResource,
    ResourceState,
    Run,
    Workspace,
)
from provisioning.problems import Problem
from provisioning.spec import RequestSpec
from provisioning.steps import REMOVAL_TIERS
from provisioning.workflow import selectors
from provisioning.workflow.reconcile import RECONCILE_WORKSPACE_JOB, reconcile_job_id
from provisioning.workflow.transitions import (
    RequestError,
    TransitionError,
    request_made,
    request_transition,
    resource_transition,
)

Kind = ChangeRequest.Kind
Status = ChangeRequest.Status
MAX_REASON = 1000
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
RETAINED_TAG = "portal-retained"
REQUEST_TAG = "portal-request"
DELETED_VAULT_JOB = "provisioning.jobs.deleted_key_vault_record"
# ARM resource types the portal makes, as plans name them.
KIND_OF_TYPE = {
    "microsoft.machinelearningservices/workspaces": "workspace",
    "microsoft.storage/storageaccounts": "storage_account",
    "microsoft.keyvault/vaults": "key_vault",
    "microsoft.containerregistry/registries": "container_registry",
    "microsoft.insights/components": "app_insights",
}


def retention_days() -> int:
    """How long kept data accounts are marked as retained (DECOMMISSION_RETENTION_DAYS, default 365)."""
    return int(getattr(settings, "DECOMMISSION_RETENTION_DAYS", 365))


# --- who may, and when -------------------------------------------------------------------------------------


def may_decommission(user: Any, ws: Workspace) -> bool:
    """Admins, and team leads who manage the workspace, may ask to decommission it."""
    if personas.is_admin(user):
        return True
    return personas.is_team_lead(user) and selectors.manages(user, ws.pk)


def can_decommission(user: Any, ws: Workspace, *, manages: bool | None = None) -> bool:
    """Whether to offer "Decommission…": the user may, and the workspace is managed and active (``manages``:
    whether the user is a team lead who manages it, when the caller has asked already)."""
    if ws.is_observed or ws.state != ResourceState.ACTIVE:
        return False
    if manages is None:
        return may_decommission(user, ws)
    return personas.is_admin(user) or manages


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RequestError(
            "say why the workspace is decommissioned", [Problem("reason", "a reason is required")]
        )
    if len(reason) > MAX_REASON:
        raise RequestError("the reason is too long", [Problem("reason", f"at most {MAX_REASON} characters")])
    if CONTROL.search(reason):
        raise RequestError(
            "the reason holds control characters",
            [Problem("reason", "plain text only (line breaks allowed)")],
        )
    return reason


def _require_decommissionable(ws: Workspace, *, request_id: int | None = None) -> None:
    """Refuse observed or inactive workspaces, and any other request on the workspace still in flight."""
    if ws.is_observed:
        raise RequestError(
            f"workspace {ws.workspace_name} is observed (adopted, never modified): an admin takes over its "
            "management before it can be decommissioned",
            [Problem("workspace", "observed workspaces are not decommissioned")],
        )
    if ws.state != ResourceState.ACTIVE:
        raise RequestError(
            f"workspace {ws.workspace_name} is {ws.get_state_display().lower()}: only an active workspace "
            "is decommissioned",
            [Problem("workspace", "not active")],
        )
    busy = ws.change_requests.filter(
        status__in=(Status.SUBMITTED, Status.APPROVED, Status.PROVISIONING, Status.ROLLING_BACK)
    )
    if request_id is not None:
        busy = busy.exclude(pk=request_id)
    other = busy.order_by("pk").first()
    if other is not None:
        raise RequestError(
            f"request #{other.pk} ({other.get_kind_display().lower()}) on {ws.workspace_name} is "
            f"{other.get_status_display().lower()}: decommission once it is decided and done",
            [Problem("workspace", "another request is in flight")],
        )


def decommission_request(
    *, workspace_id: int, requester: Any, reason: str, keep_data: bool = False, submit: bool = False
) -> ChangeRequest:
    """Ask to decommission a workspace (a draft, or submitted at once with ``submit``)."""
    reason = _clean_reason(reason)
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        if ws is None or not selectors.workspaces_visible_to(requester).filter(pk=ws.pk).exists():
            raise PermissionDenied("no such workspace, or not one you may see")
        if not may_decommission(requester, ws):
            raise PermissionDenied("only the workspace's team leads or an admin may decommission it")
        _require_decommissionable(ws)
        spec = {**RequestSpec().to_json(), "decommission": {"reason": reason, "keep_data": bool(keep_data)}}
        cr = request_made(
            actor=requester,
            message=f"decommission: {reason}",
            kind=Kind.DECOMMISSION,
            requester=requester,
            workspace=ws,
            workspace_name=ws.workspace_name,
            spec=spec,
        )
        if submit:
            decommission_submitted(cr)
            request_transition(
                cr,
                Status.SUBMITTED,
                actor=requester,
                submitted_at=timezone.now(),
                principal_check=[],
                principal_checked_at=timezone.now(),
            )
    return cr


def decommission_submitted(cr: ChangeRequest) -> None:
    """At submission (inside its transaction): check it again and queue a fresh read of Azure for its plan."""
    assert cr.workspace is not None  # nosec B101 # a decommission request names its workspace (mypy narrowing)
    _require_decommissionable(cr.workspace, request_id=cr.pk)
    workspace_id = cr.workspace.pk
    transaction.on_commit(lambda: azure_read_enqueue(workspace_id=workspace_id))


def azure_read_enqueue(*, workspace_id: int) -> bool:
    """Queue a reconcile of the workspace: its observed rows are what the plan is made of."""
    return queue.job_enqueue(
        RECONCILE_WORKSPACE_JOB,
        workspace_id,
        job_id=reconcile_job_id(workspace_id),
        description=f"read workspace {workspace_id} from Azure for its decommission plan",
        result_ttl=3600,
        when_down="the scheduled reconcile reads it at its next tick",
    )


# --- the plan ----------------------------------------------------------------------------------------------


def _line(action: str, obj: str, name: str) -> dict[str, Any]:
    return {"action": action, "object": obj, "name": name, "fields": {}}


def _kept(obj: str, name: str, why: str) -> dict[str, str]:
    return {"object": obj, "name": name, "why": why}


def _observation(ws: Workspace, cr: ChangeRequest) -> tuple[list[ObservedResource], Any]:
    """The workspace's observed rows, read from Azure after the request was submitted."""
    rows = list(ws.observed.order_by("kind", "name"))
    read_at = max((r.observed_at for r in rows), default=None)
    if read_at is None or (cr.submitted_at is not None and read_at < cr.submitted_at):
        raise RequestError(
            f"Azure has not been read for {ws.workspace_name} since the request was submitted: the plan is "
            "made from what Azure holds now. Wait for the read queued at submission (or press Reconcile on "
            "the workspace page), then approve.",
            [Problem("plan", "waiting for a fresh read of Azure")],
        )
    return rows, read_at


def _resources(
    ws: Workspace, rows: list[ObservedResource], keep: set[str], until: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, str]], list[str]]:
    """Removals, retentions and kept lines of the group's resources; and what stays in the group."""
    removals: list[dict[str, Any]] = []
    retentions: list[dict[str, Any]] = []
    kept: list[dict[str, str]] = []
    staying: list[str] = []
    for r in rows:
        if r.kind != ObservedResource.Kind.RESOURCE:
            continue
        kind = KIND_OF_TYPE.get(str(r.properties.get("type", "")).lower())
        if not r.managed or kind is None:
            why = "not managed by the portal" if not r.managed else "a kind the portal does not remove"
            kept.append(
                _kept(kind or "resource", r.name, f"{why} ({r.properties.get('type', '')}): left as it is")
            )
            staying.append(r.name)
        elif kind == "storage_account" and r.name.lower() in keep:
            kept.append(_kept(kind, r.name, f"data kept: access removed, retained until {until}"))
            retentions.append({"kind": kind, "azure_id": r.azure_id, "name": r.name})
            staying.append(r.name)
        else:
            removals.append({"kind": kind, "azure_id": r.azure_id, "name": r.name})
    return removals, retentions, kept, staying


def _assignments(
    rows: list[ObservedResource], unmanaged: set[str]
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Role assignments at the workspace's scopes go; those on resources the portal does not manage stay."""
    removals, kept = [], []
    for r in rows:
        if r.kind != ObservedResource.Kind.ROLE_ASSIGNMENT:
            continue
        scope = str(r.properties.get("scope", ""))
        name = f"{r.name} on {scope.rstrip('/').rsplit('/', 1)[-1]}"
        if scope.lower().rstrip("/") in unmanaged:
            kept.append(_kept("role_assignment", name, "on a resource the portal does not manage"))
        else:
            removals.append({"kind": "role_assignment", "azure_id": r.azure_id, "name": name})
    return removals, kept


def decommission_plan(cr: ChangeRequest) -> dict[str, Any]:
    """The plan of a decommission request, from the workspace's observed state read since submission."""
    ws = cr.workspace
    assert ws is not None  # nosec B101 # a decommission request names its workspace (mypy narrowing)
    options = (cr.spec or {}).get("decommission") or {}
    keep_data = bool(options.get("keep_data"))
    rows, read_at = _observation(ws, cr)
    until = (timezone.now() + timedelta(days=retention_days())).date().isoformat()
    keep = {n.lower() for n in (ws.storage_data, ws.data_lake_name) if n} if keep_data else set()
    removals, retentions, kept, staying = _resources(ws, rows, keep, until)
    unmanaged = {
        r.azure_id.lower() for r in rows if r.kind == ObservedResource.Kind.RESOURCE and not r.managed
    }
    grants, kept_grants = _assignments(rows, unmanaged)
    clusters = [
        {"kind": "cluster", "azure_id": r.azure_id, "name": r.name}
        for r in rows
        if r.kind == ObservedResource.Kind.CLUSTER
    ]
    group = next((r for r in rows if r.kind == ObservedResource.Kind.RESOURCE_GROUP), None)
    removals = grants + clusters + removals
    if group is not None and not staying and group.managed:
        removals.append({"kind": "resource_group", "azure_id": group.azure_id, "name": group.name})
    elif group is not None:
        why = f"kept: it still holds {', '.join(sorted(staying))}" if staying else "not managed by the portal"
        kept.append(_kept("resource_group", group.name, why))
    kept = [
        *(
            _kept("custom_role", role, "shared by every workspace of the subscription")
            for role in CUSTOM_ROLES
        ),
        *kept,
        *kept_grants,
    ]
    removals.sort(key=lambda m: (REMOVAL_TIERS[m["kind"]], m["name"]))
    tags = {RETAINED_TAG: until, REQUEST_TAG: str(cr.pk)}
    vault = next((m["name"] for m in removals if m["kind"] == "key_vault"), "")
    return {
        "kind": Kind.DECOMMISSION.value,
        "subscription_id": ws.subscription_id,
        "workspace": ws.workspace_name,
        "keep_data": keep_data,
        "observed_at": read_at,
        "changes": [_line("delete", m["kind"], m["name"]) for m in removals],
        "kept": kept,
        "notes": (
            [
                f"key vault {vault} is soft-deleted: Azure keeps its name reserved for its retention period "
                "(90 days by default); an admin may purge it sooner unless purge protection is on"
            ]
            if vault
            else []
        ),
        "removals": removals,
        "retentions": [{**r, "tags": tags} for r in retentions],
    }


# --- approval and the end of the run -----------------------------------------------------------------------


def decommission_approve(cr: ChangeRequest, approver: Any) -> ChangeRequest:
    """Approve a decommission (the caller holds the locked request and has checked the approver).

    A ``pro`` workspace needs two admins: the first approval is recorded and the request stays submitted.
    """
    assert cr.workspace_id is not None  # nosec B101 # a decommission request names its workspace (mypy narrowing)
    ws = Workspace.objects.select_for_update().get(pk=cr.workspace_id)
    _require_decommissionable(ws, request_id=cr.pk)
    plan = decommission_plan(cr)
    if ws.environment == Environment.PRODUCTION and cr.first_approver_id is None:
        cr.first_approver, cr.first_approved_at = approver, timezone.now()
        cr.save(update_fields=["first_approver", "first_approved_at", "updated_at"])
        audit_record(
            actor=approver,
            action="request.first_approval",
            obj=cr,
            object_type="change_request",
            request_id=cr.pk,
            workspace_name=cr.workspace_name,
            after={"environment": ws.environment},
            message="decommissioning a production workspace: a second admin must approve",
        )
        return cr
    if ws.environment == Environment.PRODUCTION and cr.first_approver_id == approver.pk:
        raise PermissionDenied("a production decommission needs a second admin, not the first approver")
    message = f"decommission approved by request #{cr.pk}"
    for rows in _live_rows(ws):
        resource_transition(
            rows.filter(state=ResourceState.ACTIVE),
            ResourceState.REVOKING,
            actor=approver,
            request_id=cr.pk,
            message=message,
        )
    request_transition(
        cr, Status.APPROVED, actor=approver, approver=approver, decided_at=timezone.now(), plan=plan
    )
    transaction.on_commit(lambda: queue.provisioning_enqueue(request_id=cr.pk))
    return cr


def _live_rows(ws: Workspace) -> tuple[QuerySet[Workspace], QuerySet[Cluster], QuerySet[Membership]]:
    return (
        Workspace.objects.filter(pk=ws.pk),
        ws.clusters.exclude(state=ResourceState.REVOKED),
        ws.memberships.exclude(state=ResourceState.REVOKED),
    )


def decommission_finished(cr: ChangeRequest, run: Run, *, ok: bool) -> None:
    """The end of a decommission run (the caller holds its transaction and moved the request).

    Succeeded: the workspace is decommissioned, its clusters and memberships revoked, and a worker reads
    the soft-deleted key vault. Failed: the workspace stays decommissioning until an admin retries.
    """
    if not ok:
        return
    assert cr.workspace_id is not None  # nosec B101 # a decommission request names its workspace (mypy narrowing)
    ws = Workspace.objects.select_for_update().get(pk=cr.workspace_id)
    message = f"decommissioned by request #{cr.pk} (run {run.number})"
    done: dict[str, Any] = {"actor": "worker", "request_id": cr.pk, "message": message}
    _, clusters, memberships = _live_rows(ws)
    for rows in (clusters, memberships):
        resource_transition(rows.filter(state=ResourceState.ACTIVE), ResourceState.REVOKING, **done)
        resource_transition(
            rows.filter(state__in=(ResourceState.REVOKING, ResourceState.FAILED)),
            ResourceState.REVOKED,
            **done,
        )
    if ws.state != ResourceState.DECOMMISSIONED:
        now = timezone.now()
        resource_transition(
            Workspace.objects.filter(pk=ws.pk),
            ResourceState.DECOMMISSIONED,
            **done,
            fields=lambda _ws: {"decommissioned_at": now},
        )
    workspace_id = ws.pk
    transaction.on_commit(
        lambda: queue.job_enqueue(
            DELETED_VAULT_JOB,
            workspace_id,
            job_id=f"deleted-key-vault-{workspace_id}",
            description=f"read the soft-deleted key vault of workspace {workspace_id}",
        )
    )


def decommission_refusal(cr: ChangeRequest) -> str:
    """Why a decommission request cannot be approved as it stands ("" when it can)."""
    try:
        if cr.workspace is None:
            raise TransitionError("no workspace")
        _require_decommissionable(cr.workspace, request_id=cr.pk)
        decommission_plan(cr)
    except RequestError as exc:
        return exc.message
    return ""


def decommission_plan_shown(cr: ChangeRequest) -> dict[str, Any]:
    """The plan as the request page shows it: the stored one, the one Azure's last read gives, or why none
    can be made yet (``waiting``)."""
    if cr.plan is not None:
        return dict(cr.plan)
    try:
        return decommission_plan(cr)
    except RequestError as exc:
        return {"kind": Kind.DECOMMISSION.value, "waiting": exc.message, "changes": [], "kept": []}
