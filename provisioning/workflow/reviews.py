"""Access reviews (issue #17): a workspace's team lead decides, member by member, keep or remove.

- A campaign starts on the schedule (every ``EnvironmentPolicy.review_interval_days`` after the workspace's last
  one, or after it was made) or when an admin starts it. It lists the workspace's active members, each
  *not reviewed*, and has a deadline (``review_deadline_days``). At most one campaign of a workspace is live.
- Its team lead (a team lead who manages the workspace) or an admin decides keep or remove, with an optional
  note; the decisions are kept and exported as CSV.
- Closing (the lead or an admin once every member is decided; the schedule once the deadline passed) removes
  the members decided *remove* with one revocation request (``revocations.revocation_approved``: the reviewer
  decided, no second approval), which the engine runs like any revocation. Members nobody decided by the
  deadline are removed too, or escalated to an admin, as the policy said when the campaign started; an
  escalated campaign closes when an admin has decided them.
- Every step is audited (``access_review.*``) and every service is safe to run twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts import personas
from provisioning.audit import audit_record
from provisioning.models import (
    AccessReview,
    AccessReviewDecision,
    EnvironmentPolicy,
    ResourceState,
    UnreviewedAccess,
    Workspace,
)
from provisioning.problems import text_problem
from provisioning.workflow import notifications, selectors
from provisioning.workflow.revocations import revocation_approved
from provisioning.workflow.transitions import RequestError

SCHEDULE = "system:access-review"
MAX_NOTE = 500
MAX_PER_RUN = 200  # campaigns one scheduled run starts or closes; the next run takes the rest
Decision = AccessReviewDecision.Decision
Status = AccessReview.Status


class ReviewError(RequestError):
    """An access review cannot do what was asked; the message says why."""


def _actor_name(actor: Any) -> str:
    return actor if isinstance(actor, str) else actor.principal_name


def _audit(review: AccessReview, action: str, actor: Any, message: str, **fields: Any) -> None:
    audit_record(
        actor=actor,
        action=f"access_review.{action}",
        obj=review,
        object_type="access_review",
        workspace_name=review.workspace.workspace_name,
        message=message,
        **fields,
    )


def reviews_visible_to(user: Any) -> Any:
    """Campaigns an admin sees (all) or a team lead reviews (of the workspaces they manage)."""
    if personas.is_admin(user):
        return AccessReview.objects.all()
    return AccessReview.objects.filter(workspace__in=selectors.workspaces_managed_by(user))


def _require_reviewer(review: AccessReview, actor: Any) -> None:
    if not isinstance(actor, str) and not selectors.manages(actor, review.workspace_id):
        raise PermissionDenied("only a team lead of the workspace or an admin reviews its access")


def _locked(review_id: int, actor: Any) -> AccessReview:
    """The campaign, row-locked until the caller's transaction ends, once ``actor`` may review it."""
    review = AccessReview.objects.select_for_update().select_related("workspace").filter(pk=review_id).first()
    if review is None:
        raise ReviewError(f"access review #{review_id} does not exist")
    _require_reviewer(review, actor)
    return review


def review_start(*, workspace_id: int, actor: Any, now: datetime | None = None) -> AccessReview:
    """Start a campaign of a workspace's active members (an admin, or the schedule as ``SCHEDULE``)."""
    if not isinstance(actor, str) and not personas.is_admin(actor):
        raise PermissionDenied("only an admin starts an access review")
    now = now or timezone.now()
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        if ws is None or ws.state != ResourceState.ACTIVE or ws.is_observed:
            raise ReviewError("only an active workspace the portal manages is reviewed")
        if AccessReview.objects.filter(workspace=ws).exclude(status=Status.CLOSED).exists():
            raise ReviewError(f"workspace {ws.workspace_name} has an access review open already")
        members = list(
            ws.memberships.filter(state=ResourceState.ACTIVE).order_by("persona", "principal_name")
        )
        if not members:
            raise ReviewError(f"workspace {ws.workspace_name} has no active member to review")
        policy = EnvironmentPolicy.read(ws.environment)
        review = AccessReview.objects.create(
            workspace=ws,
            started_by=None if isinstance(actor, str) else actor,
            started_at=now,
            deadline=now + timedelta(days=policy.review_deadline_days),
            unreviewed=policy.unreviewed_access,
        )
        AccessReviewDecision.objects.bulk_create(
            AccessReviewDecision(
                review=review, membership=m, principal_name=m.principal_name, persona=m.persona
            )
            for m in members
        )
        _audit(
            review,
            "started",
            actor,
            f"{len(members)} members to review by {review.deadline:%Y-%m-%d}",
            after={"members": len(members), "deadline": review.deadline.isoformat()},
        )
        notifications.review_started_notify(review, members=len(members))
    return review


@dataclass(frozen=True)
class Choice:
    """One member's decision as a reviewer gives it."""

    decision_id: int
    decision: str
    note: str = ""


def review_decide(*, review_id: int, actor: Any, choices: list[Choice], now: datetime | None = None) -> int:
    """Record keep or remove for members of a live campaign; returns how many decisions changed.

    Escalated members (past the deadline) are an admin's to decide. A choice equal to what is recorded
    changes nothing (a form posted twice).
    """
    now = now or timezone.now()
    if len(choices) > MAX_PER_RUN * 10:
        raise ReviewError("too many decisions at once")
    wanted = {}
    for c in choices:
        if c.decision not in (Decision.KEEP, Decision.REMOVE, Decision.PENDING):
            raise ReviewError(f"a decision is keep or remove, not {c.decision[:20]!r}")
        note = (c.note or "").strip()
        if (problem := text_problem("note", note, max_length=MAX_NOTE)) is not None:
            raise ReviewError(problem.message)
        wanted[int(c.decision_id)] = (c.decision, note)
    changed = 0
    with transaction.atomic():
        review = _locked(review_id, actor)
        if not review.is_live:
            raise ReviewError(f"access review #{review.pk} is closed")
        rows = {d.pk: d for d in review.decisions.filter(pk__in=list(wanted))}
        if set(rows) != set(wanted):
            raise ReviewError("a decision named is not one of this review's members")
        for pk, (decision, note) in sorted(wanted.items()):
            row = rows[pk]
            if row.escalated and not (not isinstance(actor, str) and personas.is_admin(actor)):
                raise PermissionDenied(f"{row.principal_name} was escalated: an admin decides")
            if (row.decision, row.note) == (decision, note) or decision == Decision.PENDING:
                continue
            before = row.decision
            row.decision, row.note, row.decided_by, row.decided_at = decision, note, _actor_name(actor), now
            row.save(update_fields=["decision", "note", "decided_by", "decided_at"])
            _audit(
                review,
                "decided",
                actor,
                f"{row.principal_name}: {decision}" + (f" ({note})" if note else ""),
                object_id=review.pk,
                before={"principal": row.principal_name, "decision": before},
                after={"principal": row.principal_name, "decision": decision, "note": note},
            )
            changed += 1
    return changed


def review_close(*, review_id: int, actor: Any, now: datetime | None = None) -> AccessReview:
    """Close a campaign: remove the members decided (or, past the deadline, left) to remove, escalate what
    policy escalates. Before the deadline every member must be decided; the schedule closes overdue ones."""
    now = now or timezone.now()
    with transaction.atomic():
        review = _locked(review_id, actor)
        if not review.is_live:
            return review  # closed already: a second close changes nothing
        decisions = list(review.decisions.select_related("membership").order_by("pk"))
        pending = [d for d in decisions if d.decision == Decision.PENDING]
        overdue = now >= review.deadline
        if pending and not overdue:
            raise ReviewError(
                f"{len(pending)} member{'s are' if len(pending) != 1 else ' is'} not reviewed yet; "
                f"the review closes by itself at its deadline ({review.deadline:%Y-%m-%d})"
            )
        if pending and review.unreviewed == UnreviewedAccess.ESCALATE:
            if review.status == Status.OPEN:
                AccessReviewDecision.objects.filter(pk__in=[d.pk for d in pending]).update(escalated=True)
                review.status = Status.ESCALATED
                review.save(update_fields=["status"])
                _audit(
                    review,
                    "escalated",
                    actor,
                    f"{len(pending)} members not reviewed by the deadline: an admin decides",
                    after={"escalated": [d.principal_name for d in pending]},
                )
            return review
        for d in pending:  # policy removes what nobody reviewed
            d.decision, d.decided_by, d.decided_at = (
                Decision.REMOVE,
                "policy: not reviewed by the deadline",
                now,
            )
            d.save(update_fields=["decision", "decided_by", "decided_at"])
        removed = [
            d.membership
            for d in decisions
            if d.decision == Decision.REMOVE and d.membership.state == ResourceState.ACTIVE
        ]
        if removed:
            review.revocation = revocation_approved(
                workspace=review.workspace,
                memberships=removed,
                actor=actor,
                requester=review.workspace.owner,
                reason=f"access review #{review.pk}: {len(removed)} member(s) removed",
            )
        review.status, review.closed_at = Status.CLOSED, now
        review.save(update_fields=["status", "closed_at", "revocation"])
        _audit(
            review,
            "closed",
            actor,
            f"{len(removed)} removed, {sum(d.decision == Decision.KEEP for d in decisions)} kept"
            + (f" (request #{review.revocation_id})" if review.revocation_id else ""),
            request_id=review.revocation_id,
            after={"removed": [m.principal_name for m in removed]},
        )
    return review


def reviews_due(*, now: datetime | None = None, dry_run: bool = False) -> dict[str, list[int]]:
    """The schedule: start the campaigns due (a workspace's last one, or its making, an interval ago) and
    close the overdue ones. Returns the workspace ids started and the review ids closed or escalated."""
    now = now or timezone.now()
    policies = {p.environment: p for p in EnvironmentPolicy.objects.all()}
    live = AccessReview.objects.exclude(status=Status.CLOSED)
    candidates = (
        Workspace.objects.filter(state=ResourceState.ACTIVE, management=Workspace.Management.MANAGED)
        .exclude(pk__in=live.values("workspace_id"))
        .filter(memberships__state=ResourceState.ACTIVE)
        .annotate(last_review=Max("access_reviews__started_at"))
        .distinct()
        .order_by("pk")
    )
    due = []
    for ws in candidates.only("pk", "environment", "created_at"):
        interval = timedelta(days=(policies.get(ws.environment) or EnvironmentPolicy()).review_interval_days)
        since = ws.last_review or ws.created_at
        if since + interval <= now:
            due.append(ws.pk)
        if len(due) >= MAX_PER_RUN:
            break
    overdue = list(
        live.filter(Q(status=Status.OPEN), deadline__lte=now)
        .order_by("deadline")
        .values_list("pk", flat=True)
    )[:MAX_PER_RUN]
    if dry_run:
        return {"started": due, "closed": overdue}
    started = []
    for workspace_id in due:
        try:
            review_start(workspace_id=workspace_id, actor=SCHEDULE, now=now)
        except (ReviewError, IntegrityError):  # started meanwhile, or no member left: the next run sees
            continue
        started.append(workspace_id)
    for review_id in overdue:
        review_close(review_id=review_id, actor=SCHEDULE, now=now)
    return {"started": started, "closed": overdue}
