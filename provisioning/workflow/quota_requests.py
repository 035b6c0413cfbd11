"""Quota increase requests: a team lead asks, an admin approves, a worker files with Azure and records the answer.

Who may do what:
- **ask**: team leads and admins, for an active allowed subscription and region, a VM family of the
  region's size catalog or ``TotalLowPriorityCores``; one open ask per subscription, region and family (a
  second ask for a change request joins the open one).
- **approve / reject**: admins only (the portal's subscription-level admin persona), never their own ask.
  Filing itself is done by the worker's identity, which holds *AzureML Capacity Admin*
  (``Microsoft.Quota/quotas/write``) on the subscription (docs/roles.md).
- every status change goes through ``quota_request_transition`` (row locked, audited ``quota_request.*``).

"Resume": a change request refused for lack of subscription quota waits on the ask (``waiting``); once
Azure grants it, the usages are refreshed and the request's submit (or approval) is simply done again:
the capacity check now passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import queue
from provisioning.audit import audit_record
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    ChangeRequest,
    CoreUsage,
    QuotaIncreaseRequest,
    VmSize,
)
from provisioning.models.quota_requests import LOW_PRIORITY_RESOURCE, MAX_JUSTIFICATION
from provisioning.problems import Problem, text_problem
from provisioning.workflow.transitions import RequestError, TransitionError

Status = QuotaIncreaseRequest.Status
FILE_JOB = "provisioning.jobs.quota_request_file"
POLL_JOB = "provisioning.jobs.quota_request_poll"
FIRST_POLL = 30  # seconds; then 1, 2, 4 ... minutes
MAX_POLL = 3600
FILING_LEASE = timedelta(minutes=5)
MAX_REASON = 1000


def poll_delay(attempts: int) -> timedelta:
    """When to ask Azure again after ``attempts`` polls: 30 s, 1, 2, 4 ... minutes, at most an hour."""
    return timedelta(seconds=min(FIRST_POLL * 2 ** min(attempts, 12), MAX_POLL))


def _max_limit() -> int:
    return int(settings.QUOTA_REQUEST_MAX_CORES)


# --- the one door for status changes ---------------------------------------------------------------------


def quota_request_locked(quota_request_id: int) -> QuotaIncreaseRequest:
    """The quota request, row-locked until the caller's transaction ends."""
    try:
        return QuotaIncreaseRequest.objects.select_for_update().get(pk=quota_request_id)
    except QuotaIncreaseRequest.DoesNotExist as exc:
        raise RequestError(f"quota request #{quota_request_id} does not exist") from exc


def quota_request_transition(
    qr: QuotaIncreaseRequest, target: str, *, actor: Any, message: str = "", **fields: Any
) -> None:
    """Move a locked quota request to ``target``, save it and audit ``quota_request.<target>``."""
    if not qr.can_transition(target):
        raise TransitionError(
            f"quota request #{qr.pk} is {qr.get_status_display().lower()}; it cannot become {target}"
        )
    before = qr.status
    qr.status = target
    for name, value in fields.items():
        setattr(qr, name, value)
    qr.save()
    audit_record(
        actor=actor,
        action=f"quota_request.{target}",
        obj=qr,
        object_type="quota_request",
        before={"status": before},
        after={"status": target, **_audited(fields)},
        message=message,
    )


def _audited(fields: dict[str, Any]) -> dict[str, Any]:
    keep = ("azure_request_id", "azure_status", "azure_message", "granted_limit", "reason")
    return {k: v for k, v in fields.items() if k in keep}


# --- asking ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shortfall:
    """What a change request lacks in subscription quota: the resource name and the limit that would do."""

    subscription_id: str
    region: str
    family: str
    current_limit: int
    needed_limit: int


def _current_limit(subscription_id: str, region: str, family: str) -> int | None:
    if family.lower() == LOW_PRIORITY_RESOURCE.lower():
        row = CoreUsage.objects.filter(
            subscription_id=subscription_id, region=region, scope=CoreUsage.Scope.LOW_PRIORITY_TOTAL
        ).first()
    else:
        row = CoreUsage.objects.filter(
            subscription_id=subscription_id, region=region, scope=CoreUsage.Scope.FAMILY, family=family
        ).first()
    return None if row is None else row.limit


def askable_families(region: str) -> list[str]:
    """The resource names one may ask quota for in a region: its catalog's VM families, low-priority cores."""
    families = VmSize.objects.filter(region=region).values_list("family", flat=True).distinct()
    return [*sorted(set(families)), LOW_PRIORITY_RESOURCE]


def _ask_problems(
    subscription_id: str, region: str, family: str, requested_limit: int, justification: str
) -> tuple[list[Problem], int | None]:
    problems = []
    if not AllowedSubscription.objects.filter(subscription_id=subscription_id, is_active=True).exists():
        problems.append(Problem("subscription_id", "not a subscription the portal may use"))
    if not AllowedRegion.objects.filter(name=region, is_active=True).exists():
        problems.append(Problem("region", "not a region the portal may use"))
    if family != LOW_PRIORITY_RESOURCE and not VmSize.objects.filter(region=region, family=family).exists():
        problems.append(Problem("family", f"{family} is not a VM family Azure offers in {region}"))
    current = _current_limit(subscription_id, region, family) if not problems else None
    if not problems and current is None:
        problems.append(Problem("family", "Azure's usage here has not been read yet: refresh capacity first"))
    if current is not None and requested_limit <= current:
        problems.append(Problem("requested_limit", f"ask for more than the current limit ({current})"))
    if requested_limit > _max_limit():
        problems.append(Problem("requested_limit", f"at most {_max_limit()} cores"))
    if not justification.strip():
        problems.append(Problem("justification", "say why the team needs these cores"))
    elif found := text_problem("justification", justification, max_length=MAX_JUSTIFICATION, multiline=True):
        problems.append(found)
    return problems, current


def _waiting_request(user: User, change_request_id: int | None) -> ChangeRequest | None:
    if change_request_id is None:
        return None
    cr = ChangeRequest.objects.filter(pk=change_request_id).first()
    if cr is None or (cr.requester_id != user.pk and not personas.is_admin(user)):
        raise PermissionDenied("no such request, or not one of yours")
    return cr


def quota_request_ask(
    *,
    requester: User,
    subscription_id: str,
    region: str,
    family: str,
    requested_limit: int,
    justification: str,
    change_request_id: int | None = None,
) -> QuotaIncreaseRequest:
    """Ask for a higher subscription limit (team leads and admins); returns the ask (an open one joined)."""
    if not (personas.is_team_lead(requester) or personas.is_admin(requester)):
        raise PermissionDenied("only team leads and admins can ask for more quota")
    waiting = _waiting_request(requester, change_request_id)
    open_ask = QuotaIncreaseRequest.objects.filter(
        subscription_id=subscription_id, region=region, family=family, status__in=QuotaIncreaseRequest.OPEN
    ).first()
    if open_ask is not None:
        return _join(open_ask, waiting, requester)
    problems, current = _ask_problems(subscription_id, region, family, requested_limit, justification)
    if problems or current is None:
        raise RequestError("the quota request cannot be made", problems)
    try:
        with transaction.atomic():
            qr = QuotaIncreaseRequest.objects.create(
                subscription_id=subscription_id,
                region=region,
                family=family,
                current_limit=current,
                requested_limit=requested_limit,
                justification=justification.strip(),
                requester=requester,
                status=Status.SUBMITTED,
            )
            if waiting is not None:
                qr.waiting.add(waiting)
            audit_record(
                actor=requester,
                action="quota_request.submitted",
                obj=qr,
                object_type="quota_request",
                request_id=waiting.pk if waiting else None,
                after={"family": family, "region": region, "from": current, "to": requested_limit},
                message=justification.strip(),
            )
    except IntegrityError as exc:  # another ask for the same family won the race
        raise RequestError(f"{family} in {region} already has an open quota request") from exc
    return qr


def _join(qr: QuotaIncreaseRequest, waiting: ChangeRequest | None, actor: User) -> QuotaIncreaseRequest:
    """A second ask for the same family: the change request waits on the open ask (idempotent)."""
    if waiting is None:
        raise RequestError(
            f"{qr.family} in {qr.region} already has an open quota request (#{qr.pk})",
            [Problem("family", f"quota request #{qr.pk} is already open for it")],
        )
    with transaction.atomic():
        if not qr.waiting.filter(pk=waiting.pk).exists():
            qr.waiting.add(waiting)
            audit_record(
                actor=actor,
                action="quota_request.joined",
                obj=qr,
                object_type="quota_request",
                request_id=waiting.pk,
                message=f"request #{waiting.pk} waits on quota request #{qr.pk}",
            )
    return qr


# --- deciding --------------------------------------------------------------------------------------------


def _require_admin(qr: QuotaIncreaseRequest, user: User) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only admins can approve or reject quota requests")
    if qr.requester_id == user.pk:
        raise PermissionDenied("nobody approves or rejects their own quota request")


def quota_request_approve(*, quota_request_id: int, approver: User) -> QuotaIncreaseRequest:
    """An admin approves an ask: the worker files it with Azure after commit. Approving twice does nothing."""
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        _require_admin(qr, approver)
        if qr.approver_id is not None and qr.status not in (Status.REJECTED, Status.CANCELLED):
            return qr  # already approved (or further along): a double click changes nothing
        quota_request_transition(
            qr, Status.APPROVED, actor=approver, approver=approver, decided_at=timezone.now()
        )
        transaction.on_commit(lambda: quota_request_enqueue_file(quota_request_id=qr.pk))
    return qr


def quota_request_reject(*, quota_request_id: int, approver: User, reason: str) -> QuotaIncreaseRequest:
    """An admin rejects an ask with a reason the requester reads."""
    reason = reason.strip()
    if not reason:
        raise RequestError("say why", [Problem("reason", "a reason is required")])
    if (problem := text_problem("reason", reason, max_length=MAX_REASON, multiline=True)) is not None:
        raise RequestError("the reason cannot be saved", [problem])
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        _require_admin(qr, approver)
        quota_request_transition(
            qr,
            Status.REJECTED,
            actor=approver,
            approver=approver,
            decided_at=timezone.now(),
            reason=reason,
            completed_at=timezone.now(),
            message=reason,
        )
    return qr


def quota_request_cancel(*, quota_request_id: int, actor: User) -> QuotaIncreaseRequest:
    """The requester withdraws an ask an admin has not decided yet."""
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        if qr.requester_id != actor.pk:
            raise PermissionDenied("only the requester can cancel a quota request")
        quota_request_transition(qr, Status.CANCELLED, actor=actor, completed_at=timezone.now())
    return qr


# --- what the worker records (called by provisioning.engine.quota_requests) -------------------------------


def quota_request_enqueue_file(*, quota_request_id: int) -> bool:
    """Queue the filing job (after commit); the sweep files it later when Redis is down."""
    return queue.job_enqueue(
        FILE_JOB,
        quota_request_id,
        job_id=f"quota-request-{quota_request_id}-file",
        description=f"file quota request #{quota_request_id}",
    )


def quota_request_claim(*, quota_request_id: int, worker: str) -> QuotaIncreaseRequest | None:
    """Take an approved quota request to file it (a lease); None when it is not this worker's to file.

    A filing whose lease has expired (its worker died) may be claimed again; a quota request with Azure's
    id is never filed again.
    """
    now = timezone.now()
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        if qr.azure_request_id:
            return None
        if qr.status == Status.FILING and qr.lease_until is not None and qr.lease_until > now:
            return None
        if qr.status == Status.APPROVED:
            quota_request_transition(
                qr, Status.FILING, actor=worker, lease_until=now + FILING_LEASE, attempts=qr.attempts + 1
            )
        elif qr.status == Status.FILING:  # taken over from a worker whose lease expired
            qr.lease_until, qr.attempts = now + FILING_LEASE, qr.attempts + 1
            qr.save(update_fields=["lease_until", "attempts", "updated_at"])
        else:
            return None
    return qr


def quota_request_filed(*, quota_request_id: int, azure_request_id: str, worker: str) -> None:
    """Azure took the request: record its id and when to ask Azure first."""
    now = timezone.now()
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        quota_request_transition(
            qr,
            Status.IN_PROGRESS,
            actor=worker,
            azure_request_id=azure_request_id,
            azure_status="Accepted",
            filed_at=now,
            lease_until=None,
            attempts=0,
            next_poll_at=now + poll_delay(0),
            message=f"filed with Azure as quota request {azure_request_id}",
        )


def quota_request_filing_failed(*, quota_request_id: int, worker: str, message: str, transient: bool) -> None:
    """Filing failed: try again later when retrying can help, else the request failed with Azure's words."""
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        if transient:
            quota_request_transition(
                qr,
                Status.APPROVED,
                actor=worker,
                lease_until=None,
                next_poll_at=timezone.now() + poll_delay(qr.attempts),
                azure_message=message,
                message=f"filing will be retried: {message}",
            )
        else:
            quota_request_transition(
                qr,
                Status.FAILED,
                actor=worker,
                lease_until=None,
                next_poll_at=None,
                azure_message=message,
                completed_at=timezone.now(),
                message=message,
            )


def quota_request_still_running(*, quota_request_id: int, azure_status: str) -> datetime | None:
    """Azure has not decided yet: count the poll and note when to ask again (no audit: nothing changed)."""
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        if qr.status != Status.IN_PROGRESS:
            return None
        qr.attempts += 1
        qr.azure_status = azure_status
        qr.next_poll_at = timezone.now() + poll_delay(qr.attempts)
        qr.save(update_fields=["attempts", "azure_status", "next_poll_at", "updated_at"])
        return qr.next_poll_at


def quota_request_decided(
    *, quota_request_id: int, azure_status: str, message: str, granted_limit: int | None, worker: str
) -> QuotaIncreaseRequest | None:
    """Azure decided: granted (fully or partly) with the new limit, or denied with Azure's reason.

    Each waiting change request gets an audit event saying it may go ahead (or not). None when the
    decision was recorded already (a duplicate poll).
    """
    with transaction.atomic():
        qr = quota_request_locked(quota_request_id)
        if qr.status != Status.IN_PROGRESS:
            return None
        if azure_status == "Succeeded":
            granted = granted_limit if granted_limit is not None else qr.requested_limit
            target = Status.SUCCEEDED if granted >= qr.requested_limit else Status.PARTIALLY_SUCCEEDED
        else:
            granted, target = None, Status.DENIED
        quota_request_transition(
            qr,
            target,
            actor=worker,
            azure_status=azure_status,
            azure_message=message,
            granted_limit=granted,
            next_poll_at=None,
            completed_at=timezone.now(),
            message=message,
        )
        for cr_id in qr.waiting.values_list("pk", flat=True):
            audit_record(
                actor=worker,
                action="quota_request.resumable" if granted is not None else "quota_request.refused",
                obj=qr,
                object_type="quota_request",
                request_id=cr_id,
                message=f"quota request #{qr.pk} {qr.get_status_display().lower()}: {message}",
            )
    return qr


def quota_requests_due(now: datetime | None = None) -> tuple[list[int], list[int]]:
    """Quota requests a worker should file (approved, or a filing whose lease expired) and poll (due)."""
    now = now or timezone.now()
    objects = QuotaIncreaseRequest.objects
    to_file = list(
        objects.filter(status=Status.APPROVED, azure_request_id="")
        .exclude(next_poll_at__gt=now)
        .values_list("pk", flat=True)
    ) + list(objects.filter(status=Status.FILING, lease_until__lte=now).values_list("pk", flat=True))
    to_poll = list(
        objects.filter(status=Status.IN_PROGRESS, next_poll_at__lte=now).values_list("pk", flat=True)
    )
    return to_file, to_poll


# --- reads -----------------------------------------------------------------------------------------------


def quota_requests_visible_to(user: User) -> Any:
    """Quota requests a user may see: all for admins, their own for team leads, none for anyone else."""
    rows = QuotaIncreaseRequest.objects.select_related("requester", "approver")
    if personas.is_admin(user):
        return rows
    if personas.is_team_lead(user):
        return rows.filter(requester=user)
    return rows.none()


def quota_requests_waited_on(cr: ChangeRequest) -> list[QuotaIncreaseRequest]:
    """The quota requests a change request waits on (its page shows them to whoever may see it)."""
    return list(QuotaIncreaseRequest.objects.filter(waiting=cr).select_related("approver"))


def quota_shortfalls(cr: ChangeRequest, check: Any, subscription_id: str, region: str) -> list[Shortfall]:
    """The subscription limits a request's capacity check found too low, that more quota can be asked for."""
    if check is None or not subscription_id:
        return []
    return [
        Shortfall(subscription_id, region, line.family, line.limit, line.used + line.asked)
        for line in check.over
        if line.holder == "subscription" and line.family
    ]
