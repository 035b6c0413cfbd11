"""Time-boxed membership: every membership ends (issue #17).

- End dates: the environment's policy gives the default days per persona (``EnvironmentPolicy.membership_days``);
  a request may ask fewer for a member (``MemberSpec.days``); the membership gets its end date when its
  request succeeds (``end_dates_of``). Memberships made before end dates existed got the default from the
  day of the migration (``0022_membership_expiry``); access accepted from drift gets the default from then.
- Reminders (``membership_reminders_send``): at the policy's days before the end (``reminder_days``, e.g. 14
  and 3) one mail to the member with the workspace's team leads in copy (written to the notifications
  outbox, sent after the commit), and one ``MembershipReminder`` row per membership, end date and day, so
  a second run sends nothing. A membership found only after several
  reminder days passed gets the nearest one only.
- Expiry (``memberships_expire``): the active memberships of managed, active workspaces whose end date has
  passed are removed from Azure by one ``revoke_access`` request per workspace, made by the workspace's
  owner and approved by the system (``revocations.revocation_approved``); each is audited
  ``membership.expired`` and becomes ``revoking``, then ``revoked`` when the run has removed its role
  assignments. Expired memberships are ``revoked`` ones whose ``membership.expired`` event says why: the
  lifecycle has no separate state, so every page and query that leaves revoked access out keeps doing so.
  A second run finds them revoking and makes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone

from provisioning.audit import audit_record
from provisioning.models import (
    ChangeRequest,
    EnvironmentPolicy,
    Membership,
    MembershipReminder,
    ResourceState,
    Workspace,
)
from provisioning.spec import RequestSpec
from provisioning.workflow import notifications, selectors
from provisioning.workflow.revocations import revocation_approved

SYSTEM = "system:expiry"
MAX_PER_RUN = 1000  # memberships one run handles; the next run (hourly) takes the rest


def _policies() -> dict[str, EnvironmentPolicy]:
    return {p.environment: p for p in EnvironmentPolicy.objects.all()}


def _policy(policies: dict[str, EnvironmentPolicy], environment: str) -> EnvironmentPolicy:
    return policies.get(environment) or EnvironmentPolicy(environment=environment)


def membership_end(
    policy: EnvironmentPolicy, persona: str, *, start: datetime, days: int | None = None
) -> datetime:
    """When a membership as ``persona`` starting at ``start`` ends: ``days`` when asked (never past the
    policy's default), else the default."""
    default, _ = policy.membership_days(persona)
    return start + timedelta(days=min(days, default) if days else default)


def end_dates_of(cr: ChangeRequest, *, now: datetime | None = None) -> dict[tuple[str, str], datetime]:
    """The end date of every member a request grants, by (principal type, lower-case principal), from ``now``."""
    now = now or timezone.now()
    if cr.workspace is None:
        return {}
    policy = _policy(_policies(), cr.workspace.environment)
    return {
        (m.principal_type, m.principal.lower()): membership_end(policy, m.persona, start=now, days=m.days)
        for m in RequestSpec.from_json(cr.spec).all_members()
    }


def default_end(workspace: Workspace, persona: str, *, now: datetime | None = None) -> datetime:
    """The end date of a membership of ``workspace`` as ``persona`` starting ``now`` (the policy's default)."""
    policy = _policy(_policies(), workspace.environment)
    return membership_end(policy, persona, start=now or timezone.now())


# --- expiry ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expiry:
    """One membership the expiry job removes (or, in a dry run, would remove)."""

    membership_id: int
    principal: str
    persona: str
    workspace: str
    expires_at: str
    request_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def memberships_past_end(now: datetime) -> QuerySet[Membership]:
    """Active memberships of managed, active workspaces whose end date has passed, oldest end first."""
    return (
        Membership.objects.filter(
            state=ResourceState.ACTIVE,
            expires_at__lte=now,
            workspace__state=ResourceState.ACTIVE,
            workspace__management=Workspace.Management.MANAGED,
        )
        .select_related("workspace", "workspace__owner")
        .order_by("expires_at", "pk")
    )


def memberships_expire(*, now: datetime | None = None, dry_run: bool = False) -> list[Expiry]:
    """Remove the memberships whose end date has passed (module docstring); a dry run saves nothing."""
    now = now or timezone.now()
    due = list(memberships_past_end(now)[:MAX_PER_RUN])
    by_workspace: dict[int, list[Membership]] = defaultdict(list)
    for m in due:
        by_workspace[m.workspace_id].append(m)
    done: list[Expiry] = []
    for members in by_workspace.values():
        request_id = None if dry_run else _expire_workspace_members(members, now).pk
        done += [
            Expiry(
                m.pk,
                m.principal_name,
                m.persona,
                m.workspace.workspace_name,
                m.expires_at.isoformat() if m.expires_at else "",
                request_id,
            )
            for m in members
        ]
    return done


def _expire_workspace_members(members: list[Membership], now: datetime) -> ChangeRequest:
    ws = members[0].workspace
    reason = f"membership ended ({len(members)} past their end date on {now:%Y-%m-%d %H:%M} UTC)"
    with transaction.atomic():
        cr = revocation_approved(
            workspace=ws, memberships=members, actor=SYSTEM, requester=ws.owner, reason=reason
        )
        for m in members:
            audit_record(
                actor=SYSTEM,
                action="membership.expired",
                obj=m,
                request_id=cr.pk,
                workspace_name=ws.workspace_name,
                after={"name": m.principal_name, "persona": m.persona, "expires_at": m.expires_at},
                message=f"ended on {m.expires_at:%Y-%m-%d}: its role assignments are removed by request #{cr.pk}",
            )
    return cr


# --- reminders ---------------------------------------------------------------------------------------------


def _days(policy: EnvironmentPolicy) -> list[int]:
    try:
        return policy.reminders()
    except ValueError:  # a setting saved past the admin form's check reminds at the defaults, not never
        return [14, 3]


def _reminder_day(policy: EnvironmentPolicy, left: timedelta) -> int | None:
    """The reminder day due when ``left`` remains: the nearest policy day not yet passed (None: none due)."""
    due = [d for d in _days(policy) if left <= timedelta(days=d)]
    return min(due) if due else None


def membership_reminders_send(*, now: datetime | None = None) -> list[MembershipReminder]:
    """Remind the members whose end date is within a reminder day of the policy (module docstring)."""
    now = now or timezone.now()
    policies = _policies()
    horizon = max([14, *(d for p in policies.values() for d in _days(p))])
    candidates = list(
        memberships_past_end(now + timedelta(days=horizon)).filter(expires_at__gt=now)[:MAX_PER_RUN]
    )
    leads = selectors.team_lead_addresses({m.workspace_id for m in candidates})
    sent: list[MembershipReminder] = []
    for m in candidates:
        assert m.expires_at is not None  # nosec B101 # filtered on expires_at (mypy narrowing)
        day = _reminder_day(_policy(policies, m.workspace.environment), m.expires_at - now)
        if day is None:
            continue
        member = [m.principal_name.lower()] if m.principal_type == Membership.PrincipalType.USER else []
        reminder = _reminder_once(m, day, member, sorted(leads[m.workspace_id] - set(member)), now)
        if reminder is not None:
            sent.append(reminder)
    return sent


def _reminder_once(
    m: Membership, day: int, member: list[str], leads: list[str], now: datetime
) -> MembershipReminder | None:
    """The reminder row and its mail (in the outbox, sent after the commit); None when made already."""
    recipients = member + leads
    assert m.expires_at is not None  # nosec B101 # reminders are made only for memberships that end
    try:
        with transaction.atomic():
            reminder = MembershipReminder.objects.create(
                membership=m, expires_at=m.expires_at, days_before=day, recipients=recipients, created_at=now
            )
            audit_record(
                actor=SYSTEM,
                action="membership.reminded",
                obj=m,
                workspace_name=m.workspace.workspace_name,
                after={"expires_at": m.expires_at, "days_before": day, "recipients": recipients},
            )
            _reminder_mail(reminder, m, day, member, leads)
    except IntegrityError:  # made by an earlier or concurrent run
        return None
    return reminder


def _reminder_mail(
    reminder: MembershipReminder, m: Membership, day: int, member: list[str], leads: list[str]
) -> None:
    """One mail in the outbox: to the member (or, for a group, to the team leads), the team leads in copy."""
    to, copies = (member, leads) if member else (leads, [])
    if not to:
        return
    notifications.membership_ending_notify(reminder_id=reminder.pk, membership=m, day=day, to=to, cc=copies)
