"""Notifications written to the outbox (``Notification``) in the transaction of the change they tell of.

Each event makes one mail row per person (their preferences checked now: a kind they turned off makes no
row for them) and one Teams card per channel set up (the admins' ``TEAMS_WEBHOOK_URL``, a team's
``TeamChannel``). Rows are plain inserts that skip a key already written (``ON CONFLICT DO NOTHING``), so
making them never fails the change; the same event never makes two rows. A delivery job is queued after
the commit (``provisioning.workflow.delivery`` sends, retries and gives up); a rolled-back change sends
nothing, and the sweeper finds rows whose job was lost.

Events and recipients (docs/operations.md, "Notifications"):
- a request submitted, or amended wider and back for approval: the admins (and the admins' channel);
- approved or rejected (with the reason), provisioning succeeded or failed (with the failing step): the
  requester (and the team's channel); failures also the admins (and the admins' channel);
- a membership ending soon: the member, the team leads in copy (``expiry``);
- an access review to do: the workspace's team leads (and the team's channel);
- drift found by a reconcile: the admins (and the admins' channel), once per reconcile.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import queue
from provisioning.audit import audit_record
from provisioning.models import (
    AccessReview,
    AuditEvent,
    ChangeRequest,
    DriftItem,
    Notification,
    NotificationKind,
    NotificationPreference,
    TeamChannel,
)
from provisioning.workflow import selectors

Kind = NotificationKind
Channel = Notification.Channel
Status = ChangeRequest.Status
DELIVER_JOB = "provisioning.jobs.notifications_deliver"
PORTAL_CHANNEL = "teams:portal"
MAX_SUBJECT = 300


def absolute_url(path: str) -> str:
    """``path`` on the portal as people reach it (``PORTAL_BASE_URL``)."""
    return f"{settings.PORTAL_BASE_URL}{path}"


@dataclass(frozen=True)
class Message:
    """What one event says, to whom: people by address (``to`` each get their own mail) and Teams channels."""

    kind: str
    key: str  # the event: "<kind>:<object>:<event id>"; channel and recipient are appended per row
    subject: str
    body: str
    link: str
    to: Sequence[str] = ()
    channels: Sequence[str] = ()
    facts: dict[str, str] = field(default_factory=dict)


# --- recipients --------------------------------------------------------------------------------------------


def _address(user: User) -> str:
    return (user.email or user.upn).lower()


def _addresses(users: QuerySet[User], kind: str) -> list[str]:
    """The addresses of ``users`` who receive ``kind`` (one query)."""
    wanting = users.exclude(
        notification_preferences__kind=kind, notification_preferences__enabled=False
    ).distinct()
    return sorted({_address(u) for u in wanting.only("email", "upn") if _address(u)})


def admin_addresses(kind: str) -> list[str]:
    """The addresses of the active admins (the approvers) who receive ``kind``."""
    return _addresses(User.objects.filter(groups__name=personas.ADMIN, is_active=True), kind)


def turned_off(kind: str, addresses: Iterable[str]) -> set[str]:
    """Which of ``addresses`` belong to people who turned ``kind`` off."""
    wanted = {a.lower() for a in addresses}
    if not wanted:
        return set()
    rows = (
        NotificationPreference.objects.filter(kind=kind, enabled=False)
        .annotate(email=Lower("user__email"), upn=Lower("user__upn"))
        .filter(Q(email__in=wanted) | Q(upn__in=wanted))
        .values_list("email", "upn")
    )
    return {a for pair in rows for a in pair if a in wanted}


def team_channels(department: str, team: str) -> list[str]:
    """The Teams channel of a team, when one is set up."""
    if TeamChannel.objects.filter(department=department, team=team).exists():
        return [f"teams:{department}/{team}"]
    return []


def portal_channels() -> list[str]:
    """The admins' Teams channel, when ``TEAMS_WEBHOOK_URL`` is set."""
    return [PORTAL_CHANNEL] if settings.TEAMS_WEBHOOK_URL else []


# --- the outbox --------------------------------------------------------------------------------------------


def teams_card(message: Message) -> dict[str, Any]:
    """A Teams message holding an Adaptive Card 1.4: the subject, the text, the facts, a link back."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": message.subject, "weight": "Bolder", "size": "Medium", "wrap": True},
        {"type": "TextBlock", "text": message.body, "wrap": True},
    ]
    body += [{"type": "TextBlock", "text": f"**{k}**: {v}", "wrap": True} for k, v in message.facts.items()]
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Open in the portal", "url": message.link}],
    }
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def _mail_body(message: Message) -> str:
    facts = "".join(f"{k}: {v}\n" for k, v in message.facts.items())
    return f"{message.body}\n\n{facts}{'' if not facts else chr(10)}{message.link}\n"


def _row(message: Message, channel: str, recipients: list[str], cc: Sequence[str] = ()) -> Notification:
    return Notification(
        kind=message.kind,
        channel=channel,
        recipients=recipients,
        cc=list(cc),
        subject=" ".join(message.subject.split())[:MAX_SUBJECT],  # one line: a mail header
        body=_mail_body(message) if channel == Channel.MAIL else message.body,
        link=message.link,
        payload=teams_card(message) if channel == Channel.TEAMS else {},
        key=f"{message.key}:{channel}:{recipients[0]}"[:500],
        next_attempt_at=timezone.now(),
    )


def outbox_write(rows: list[Notification], *, event: str) -> int:
    """Insert ``rows`` (keys already written are skipped) and queue their delivery after the commit."""
    if not rows:
        return 0
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    transaction.on_commit(lambda: delivery_enqueue(reason=event))
    return len(rows)


def notify(message: Message, *, checked: Sequence[str] = ()) -> int:
    """Write one event's rows: a mail to each address in ``to`` who wants this kind (``checked``: addresses
    whose preferences were read already), a card per channel."""
    off = turned_off(message.kind, set(message.to) - set(checked))
    rows = [_row(message, Channel.MAIL, [a]) for a in dict.fromkeys(message.to) if a and a not in off]
    rows += [_row(message, Channel.TEAMS, [c]) for c in message.channels]
    return outbox_write(rows, event=message.key)


def mail_write(message: Message, *, to: list[str], cc: list[str]) -> int:
    """Write one mail to ``to`` with ``cc`` in copy (people who turned the kind off left out)."""
    off = turned_off(message.kind, [*to, *cc])
    to, cc = [a for a in to if a not in off], [a for a in cc if a not in off]
    to, cc = (to, cc) if to else (cc, [])
    return outbox_write([_row(message, Channel.MAIL, to, cc)] if to else [], event=message.key)


def delivery_enqueue(*, reason: str = "") -> bool:
    """Queue a delivery job (after the commit, or from the sweeper); False when Redis is unreachable."""
    return queue.job_enqueue(
        DELIVER_JOB,
        job_id=f"notifications-deliver-{time.time_ns()}",
        description=f"deliver notifications ({reason})" if reason else "deliver notifications",
        result_ttl=600,
        when_down="the sweeper queues the delivery later",
    )


# --- requests ----------------------------------------------------------------------------------------------


def _team_of(cr: ChangeRequest) -> tuple[str, str]:
    if cr.workspace is not None:
        return cr.workspace.department, cr.workspace.team
    ws = (cr.spec or {}).get("workspace") or {}
    return str(ws.get("department", "")), str(ws.get("team", ""))


def _request_facts(cr: ChangeRequest) -> dict[str, str]:
    return {"Request": f"#{cr.pk} ({cr.get_kind_display()})", "Workspace": cr.workspace_name or "-"}


def _request_message(cr: ChangeRequest, kind: str, event: AuditEvent, subject: str, body: str) -> Message:
    return Message(
        kind=kind,
        key=f"{kind}:change_request:{cr.pk}:{event.pk}",
        subject=subject,
        body=body,
        link=absolute_url(reverse("provisioning:request_detail", args=[cr.pk])),
        facts=_request_facts(cr),
    )


def _kind_of(cr: ChangeRequest, before: str, actor: Any) -> str | None:
    """The kind of notification a request's status change makes (None: none). Decisions the system made
    itself (an expiry's revocation) tell nobody they were submitted or approved."""
    target, by_system = cr.status, isinstance(actor, str)
    if target == Status.SUBMITTED and not by_system:
        return Kind.AMENDMENT_WAITING if before == Status.FAILED else Kind.REQUEST_SUBMITTED
    if target == Status.APPROVED and not by_system:
        return Kind.REQUEST_APPROVED
    outcomes: dict[str, str] = {
        Status.REJECTED: Kind.REQUEST_REJECTED,
        Status.SUCCEEDED: Kind.PROVISIONING_SUCCEEDED,
        Status.FAILED: Kind.PROVISIONING_FAILED,
    }
    return outcomes.get(target)


def _request_text(kind: str, what: str, cr: ChangeRequest, event: AuditEvent) -> tuple[str, str]:
    """The subject and text of a request's notification of ``kind``."""
    texts: dict[str, tuple[str, str]] = {
        Kind.REQUEST_SUBMITTED: (
            f"New {what} waits for approval",
            f"{event.actor} submitted {what}. Approve or reject it in the portal.",
        ),
        Kind.AMENDMENT_WAITING: (
            f"Amended {what} waits for approval",
            f"{event.actor} amended the failed {what}; it widens access or cost, so an admin other than the "
            f"amender approves or rejects it. {event.message}",
        ),
        Kind.REQUEST_APPROVED: (
            f"Your {what} was approved",
            f"{event.actor} approved {what}; the portal provisions it in Azure now.",
        ),
        Kind.REQUEST_REJECTED: (
            f"Your {what} was rejected",
            f"{event.actor} rejected {what}.\n\nReason: {cr.reason}",
        ),
        Kind.PROVISIONING_SUCCEEDED: (
            f"Your {what} is provisioned",
            f"Provisioning of {what} succeeded: {event.message}.",
        ),
        Kind.PROVISIONING_FAILED: (
            f"Provisioning of {what} failed",
            f"Provisioning of {what} failed.\n\nFailed step: {event.message}\n\n"
            "An admin retries it, or it is amended, kept as it is or rolled back.",
        ),
    }
    return texts[kind]


def request_status_notify(cr: ChangeRequest, before: str, event: AuditEvent, *, actor: Any) -> int:
    """The notifications of a request's status change (caller holds the transaction; module docstring):
    to the admins when it waits for them, to the requester when it was decided or ran, both on failure."""
    kind = _kind_of(cr, before, actor)
    if kind is None:
        return 0
    what = f"request #{cr.pk} ({cr.get_kind_display().lower()}, {cr.workspace_name})"
    message = _request_message(cr, kind, event, *_request_text(kind, what, cr, event))
    to_admins = kind in (Kind.REQUEST_SUBMITTED, Kind.AMENDMENT_WAITING, Kind.PROVISIONING_FAILED)
    to_requester = kind not in (Kind.REQUEST_SUBMITTED, Kind.AMENDMENT_WAITING)
    admins = admin_addresses(kind) if to_admins else []
    requester = _addresses(User.objects.filter(pk=cr.requester_id), kind) if to_requester else []
    channels = [
        *(team_channels(*_team_of(cr)) if to_requester else []),
        *(portal_channels() if to_admins else []),
    ]
    return notify(replace_to(message, [*requester, *admins], channels), checked=[*requester, *admins])


def replace_to(message: Message, to: Sequence[str], channels: Sequence[str]) -> Message:
    """``message`` addressed to ``to`` and ``channels``."""
    return Message(**{**message.__dict__, "to": tuple(to), "channels": tuple(channels)})


# --- memberships, reviews, drift ---------------------------------------------------------------------------


def membership_ending_notify(
    *, reminder_id: int, membership: Any, day: int, to: list[str], cc: list[str]
) -> int:
    """The reminder of a membership ending: one mail to ``to`` with ``cc`` in copy (caller's transaction)."""
    m = membership
    message = Message(
        kind=Kind.MEMBERSHIP_ENDING,
        key=f"{Kind.MEMBERSHIP_ENDING}:membership:{m.pk}:{reminder_id}",
        subject=f"Your access to {m.workspace.workspace_name} ends in {day} days",
        body=(
            f"{m.principal_name}'s access to the AzureML workspace {m.workspace.workspace_name} as "
            f"{m.get_persona_display()} ends on {m.expires_at:%Y-%m-%d %H:%M} UTC.\n\n"
            "A team lead of the workspace can renew it from the workspace's page in the portal. "
            "When it ends, its role assignments are removed from Azure."
        ),
        link=absolute_url(reverse("provisioning:workspace_detail", args=[m.workspace_id])),
    )
    return mail_write(message, to=to, cc=cc)


def review_started_notify(review: AccessReview, *, members: int) -> int:
    """Tell the workspace's team leads a campaign waits for their decisions (caller's transaction)."""
    ws = review.workspace
    leads = sorted(selectors.team_lead_addresses({ws.pk}).get(ws.pk, set()))
    message = Message(
        kind=Kind.REVIEW_TO_DO,
        key=f"{Kind.REVIEW_TO_DO}:access_review:{review.pk}",
        subject=f"Access review of {ws.workspace_name}: decide by {review.deadline:%Y-%m-%d}",
        body=(
            f"An access review of the AzureML workspace {ws.workspace_name} started: decide for each of its "
            f"{members} members whether they keep their access, by {review.deadline:%Y-%m-%d %H:%M} UTC."
        ),
        link=absolute_url(reverse("provisioning:review_detail", args=[review.pk])),
        to=tuple(leads),
        channels=tuple(team_channels(ws.department, ws.team)),
    )
    return notify(message)


def drift_found_notify(*, since: datetime) -> int:
    """Tell the admins of the drift items a reconcile opened from ``since`` (one message per reconcile)."""
    with transaction.atomic():
        items = list(
            DriftItem.objects.filter(first_seen__gte=since, status=DriftItem.Status.OPEN)
            .select_related("workspace")
            .order_by("pk")
        )
        if not items:
            return 0
        names = sorted({i.workspace.workspace_name for i in items})
        message = Message(
            kind=Kind.DRIFT_FOUND,
            key=f"{Kind.DRIFT_FOUND}:drift_item:{items[0].pk}",
            subject=f"Drift found: {len(items)} new differences in {len(names)} workspaces",
            body="The reconcile with Azure found differences from the approved state:\n"
            + "\n".join(f"- {i.workspace.workspace_name}: {i}" for i in items[:50]),
            link=absolute_url(reverse("provisioning:drift")),
            to=tuple(admin_addresses(Kind.DRIFT_FOUND)),
            channels=tuple(portal_channels()),
            facts={"Workspaces": ", ".join(names[:20])},
        )
        return notify(message, checked=message.to)


# --- preferences -------------------------------------------------------------------------------------------


def preferences_of(user: User) -> dict[str, bool]:
    """Every kind of mail and whether ``user`` receives it."""
    off = set(NotificationPreference.objects.filter(user=user, enabled=False).values_list("kind", flat=True))
    return {kind: kind not in off for kind in Kind.values}


def preferences_set(*, user: User, enabled: Iterable[str]) -> dict[str, bool]:
    """Save which kinds of mail ``user`` receives (the others are turned off); audited when they change."""
    wanted = set(enabled) & set(Kind.values)
    with transaction.atomic():
        before = preferences_of(user)
        after = {kind: kind in wanted for kind in Kind.values}
        if before == after:
            return after
        for kind, on in after.items():
            NotificationPreference.objects.update_or_create(user=user, kind=kind, defaults={"enabled": on})
        audit_record(
            actor=user,
            action="notification.preferences",
            obj=user,
            object_type="user",
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
            message="mail preferences changed",
        )
    return after
