"""Services of the provisioning engine: claiming runs, recording steps, finishing, sweeping.

The database is the source of truth. A worker claims a run with a conditional update and holds a
lease it renews while it works; every step's result is written in its own short transaction with
its audit event; no transaction stays open while Azure works. The sweeper re-enqueues approved or
running work that no live worker holds, so a lost job or a dead worker never loses a request.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from provisioning import queue
from provisioning.audit import audit_record
from provisioning.capacity import budgets
from provisioning.models import ChangeRequest, Cluster, Membership, ResourceState, Run, Step, Workspace
from provisioning.spec import RequestSpec
from provisioning.steps import principal_key
from provisioning.workflow import (
    changes,
    decommission,
    drift,
    expiry,
    name_checks,
    principal_checks,
    selectors,
)
from provisioning.workflow.services import workspace_quotas_for
from provisioning.workflow.transitions import request_locked, request_transition, resource_transition

logger = logging.getLogger(__name__)

Status = ChangeRequest.Status
LEASE_SECONDS = 30
WORKER = "worker"


def lease_seconds() -> int:
    """How long a worker's claim on a run lasts without a heartbeat (PROVISIONING_LEASE_SECONDS)."""
    return int(getattr(settings, "PROVISIONING_LEASE_SECONDS", LEASE_SECONDS))


def _lease_until() -> Any:
    return timezone.now() + timedelta(seconds=lease_seconds())


def run_claim(*, request_id: int, worker: str) -> Run | None:
    """Take (or resume) the request's current run for this worker; None when there is nothing to do.

    Approved requests start run 1. A run whose lease is held by a live worker is left alone, so a
    duplicate delivery of the same job is harmless.
    """
    with transaction.atomic():
        cr = request_locked(request_id)
        if cr.status == Status.APPROVED:
            request_transition(cr, Status.PROVISIONING, actor=WORKER, message=f"picked up by {worker}")
            _desired_rows_become(cr, ResourceState.PROVISIONING)
            run = Run.objects.create_next(cr)
        elif cr.status in (Status.PROVISIONING, Status.ROLLING_BACK):
            run = cr.runs.order_by("-number").first() or Run.objects.create_next(cr)
        else:
            return None
        run = Run.objects.select_for_update().get(pk=run.pk)
        now = timezone.now()
        if run.status in (Run.Status.SUCCEEDED, Run.Status.FAILED):
            return None
        if (
            run.lease_owner
            and run.lease_owner != worker
            and run.lease_expires_at
            and run.lease_expires_at > now
        ):
            return None
        run.status = Run.Status.RUNNING
        run.lease_owner = worker
        run.lease_expires_at = _lease_until()
        run.deliveries += 1
        run.started_at = run.started_at or now
        run.save()
        # Steps that were running when a previous worker died run again (every step is idempotent).
        run.steps.filter(status=Step.Status.RUNNING).update(status=Step.Status.PENDING)
    return run


def run_heartbeat(*, run_id: int, worker: str) -> bool:
    """Renew the lease; False means another worker has taken the run over and this one must stop."""
    return bool(
        Run.objects.filter(pk=run_id, lease_owner=worker, status=Run.Status.RUNNING).update(
            lease_expires_at=_lease_until()
        )
    )


def step_start(*, step_id: int) -> None:
    """Mark a step running (one more attempt)."""
    Step.objects.filter(pk=step_id).update(
        status=Step.Status.RUNNING,
        started_at=timezone.now(),
        attempts=F("attempts") + 1,
        error_code="",
        error_message="",
        hint="",
    )


def step_finish(
    *,
    step_id: int,
    ok: bool,
    outcome: str = "",
    azure_id: str = "",
    error_code: str = "",
    error_message: str = "",
    correlation_id: str = "",
    hint: str = "",
    attempts: int = 1,
) -> Step:
    """Record a step's result and its audit event in one transaction."""
    with transaction.atomic():
        step = Step.objects.select_for_update().select_related("run__change_request").get(pk=step_id)
        step.status = Step.Status.SUCCEEDED if ok else Step.Status.FAILED
        step.finished_at = timezone.now()
        step.outcome, step.azure_id = outcome, azure_id
        step.error_code, step.error_message = error_code, error_message[:4000]
        step.correlation_id, step.hint = correlation_id, hint
        step.attempts = max(step.attempts, attempts)
        step.save()
        cr = step.run.change_request
        audit_record(
            actor=WORKER,
            action=f"step.{step.status}",
            object_type="step",
            object_id=step.key[:64],
            request_id=cr.pk,
            workspace_name=cr.workspace_name,
            after={
                "step": step.target,
                "outcome": outcome,
                "azure_id": azure_id,
                "run": step.run.number,
                "attempts": step.attempts,
                "error_code": error_code,
                "correlation_id": correlation_id,
            },
            message=error_message[:2000],
        )
    return step


def steps_block(*, run_id: int, keys: list[str]) -> None:
    """Steps that could not start because a step they depend on failed."""
    Step.objects.filter(run_id=run_id, key__in=keys, status=Step.Status.PENDING).update(
        status=Step.Status.BLOCKED
    )


def _desired_rows_become(cr: ChangeRequest, target: str, **kwargs: Any) -> None:
    """The request's workspace, clusters and memberships (those it grants) move to ``target`` together."""
    for rows in selectors.rows_of_request(cr):
        resource_transition(rows, target, actor=WORKER, request_id=cr.pk, **kwargs)


def _apply_success(cr: ChangeRequest, run: Run) -> None:
    results = dict(run.steps.values_list("key", "azure_id"))
    workspaces, clusters, memberships = selectors.rows_of_request(cr)
    done: dict[str, Any] = {"actor": WORKER, "request_id": cr.pk}
    resource_transition(
        workspaces, ResourceState.ACTIVE, **done, fields=lambda ws: {"azure_id": results.get("workspace", "")}
    )
    resource_transition(clusters, ResourceState.ACTIVE, **done)
    ends = expiry.end_dates_of(cr)  # every membership ends: the policy's default, or fewer days asked
    resource_transition(
        memberships,
        ResourceState.ACTIVE,
        **done,
        fields=lambda m: {
            "object_id": results.get(principal_key(m.principal_name, m.principal_type), m.object_id),
            "expires_at": m.expires_at
            or ends.get((m.principal_type, m.principal_name.lower()))
            or expiry.default_end(m.workspace, m.persona),
        },
    )
    revoked = Membership.objects.filter(
        Q(pk__in=(cr.spec or {}).get("revoke", [])) | Q(change_request=cr),  # or dropped by an amendment
        workspace=cr.workspace,
        state=ResourceState.REVOKING,
    )
    resource_transition(revoked, ResourceState.REVOKED, **done)
    if cr.kind == ChangeRequest.Kind.CHANGE_WORKSPACE:  # new settings and personas, deleted clusters revoked
        changes.changes_apply(cr, actor=WORKER)


def run_finish(*, run_id: int, worker: str) -> Run:
    """Close a run whose steps are all finished: the request succeeds, or fails naming the failed step.

    Only the worker holding the run's lease closes it. A worker that stalled past its lease (its run
    handed to another worker by the sweeper) gets the run back unchanged, still running, and stops.
    """
    with transaction.atomic():
        cr = request_locked(Run.objects.values_list("change_request_id", flat=True).get(pk=run_id))
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status != Run.Status.RUNNING or run.lease_owner != worker:
            logger.warning(
                "run %s of request #%s is held by %r, not %r: left to it",
                run.number,
                cr.pk,
                run.lease_owner or "nobody",
                worker,
            )
            return run
        failed = list(run.steps.filter(status=Step.Status.FAILED).order_by("position"))
        run.status = Run.Status.FAILED if failed else Run.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.lease_owner, run.lease_expires_at = "", None
        run.save()
        if run.purpose == Run.Purpose.ROLLBACK:
            _rollback_finish(cr, run, failed)
        elif failed:
            first = failed[0]
            message = f"{first.target}: {first.error_code}: {first.error_message}"
            request_transition(cr, Status.FAILED, actor=WORKER, message=message)
            _desired_rows_become(cr, ResourceState.FAILED, message=message)
        else:
            _apply_success(cr, run)
            message = f"run {run.number} finished"
            if (ws := _quota_out_of_date(cr)) is not None:
                message += "; the team's budgets changed since approval: they are applied as workspace quota"
                job_id = f"team-quota-{cr.pk}-run-{run.number}"
                transaction.on_commit(
                    lambda: budgets.team_quota_enqueue(
                        department=ws.department, team=ws.team, region=ws.region, job_id=job_id
                    )
                )
            request_transition(cr, Status.SUCCEEDED, actor=WORKER, message=message)
        if cr.kind == ChangeRequest.Kind.REMEDIATE_DRIFT and run.purpose == Run.Purpose.PROVISION:
            drift.drift_remediation_finished(cr, ok=not failed)
        if cr.kind == ChangeRequest.Kind.DECOMMISSION and run.purpose == Run.Purpose.PROVISION:
            decommission.decommission_finished(cr, run, ok=not failed)
    return run


def _rollback_finish(cr: ChangeRequest, run: Run, failed: list[Step]) -> None:
    """A rollback run ended: the request is rolled back (its rows revoked), or failed again to decide anew."""
    revoking = [
        rows.filter(state=ResourceState.REVOKING)
        for rows in (
            Workspace.objects.filter(
                change_requests=cr, change_requests__kind=ChangeRequest.Kind.NEW_WORKSPACE
            ),
            Cluster.objects.filter(change_request=cr),
            Membership.objects.filter(change_request=cr),
        )
    ]
    if failed:
        first = failed[0]
        message = f"rollback: {first.target}: {first.error_code}: {first.error_message}"
        request_transition(cr, Status.FAILED, actor=WORKER, message=message)
        for rows in revoking:
            resource_transition(rows, ResourceState.FAILED, actor=WORKER, request_id=cr.pk, message=message)
        return
    message = f"rollback run {run.number} removed what the request created"
    for rows in revoking:
        resource_transition(rows, ResourceState.REVOKED, actor=WORKER, request_id=cr.pk, message=message)
    request_transition(cr, Status.ROLLED_BACK, actor=WORKER, message=message)


def _quota_out_of_date(cr: ChangeRequest) -> Workspace | None:
    """The request's workspace when the team's budgets differ from the workspace quota the approved plan applied.

    A budget saved while the request was provisioning (or failed, awaiting a retry) reached only the
    team's active workspaces; this one becomes active now and must get the same figures.
    """
    planned = (cr.plan or {}).get("workspace_quotas") or []
    now = workspace_quotas_for(cr, RequestSpec.from_json(cr.spec))  # [] for kinds that make no clusters
    return cr.workspace if cr.workspace is not None and now != planned else None


def runs_sweep(*, now: Any = None, grace_seconds: int | None = None) -> list[int]:
    """Re-enqueue approved or provisioning requests that no live worker holds; returns their ids.

    Approved requests are swept when their job is missing from Redis (lost, flushed, or never
    enqueued because Redis was down). Provisioning requests are swept when their run's lease has
    expired (the worker died) or the run is still queued with no job.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=lease_seconds() if grace_seconds is None else grace_seconds)
    swept: list[int] = []
    approved = ChangeRequest.objects.filter(status=Status.APPROVED).filter(
        Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=stale)
    )
    for cr in approved:
        if not queue.job_pending(queue.provisioning_job_id(cr.pk)):
            queue.provisioning_enqueue(request_id=cr.pk)
            swept.append(cr.pk)
    unchecked = ChangeRequest.objects.filter(
        status=Status.SUBMITTED,
        kind=ChangeRequest.Kind.NEW_WORKSPACE,
        name_check__isnull=True,
        submitted_at__lt=stale,
    )
    for cr in unchecked:
        if not queue.job_pending(f"check-names-{cr.pk}"):
            name_checks.name_check_enqueue(request_id=cr.pk)
    members_unchecked = ChangeRequest.objects.filter(
        status=Status.SUBMITTED, principal_check__isnull=True, submitted_at__lt=stale
    )
    for cr in members_unchecked:
        if not queue.job_pending(f"check-principals-{cr.pk}"):
            principal_checks.principal_check_enqueue(request_id=cr.pk)
    running = Run.objects.filter(
        change_request__status__in=(Status.PROVISIONING, Status.ROLLING_BACK)
    ).filter(
        Q(status=Run.Status.RUNNING, lease_expires_at__lt=now)
        | Q(status=Run.Status.QUEUED, created_at__lt=stale)
    )
    for run in running.select_related("change_request"):
        if run.status == Run.Status.QUEUED and queue.job_pending(run.job_id):
            continue
        queue.run_enqueue(
            request_id=run.change_request_id, job_id=f"{run.job_id}-sweep-{int(now.timestamp())}"
        )
        swept.append(run.change_request_id)
    if swept:
        logger.info("sweeper re-enqueued requests %s", swept)
    return swept
