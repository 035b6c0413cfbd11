"""Renewing a membership: its end date moved, from the workspace's page.

A team lead who manages the workspace (or an admin) renews an active membership for a number of days from
now. Within the environment's default for the member's persona it applies at once (audited
``membership.renewed``). Past the default, up to the policy's maximum (none for team leads by default), it
becomes a ``renew_access`` request an admin approves (never the one who asked); its plan shows the end
date old -> new, and approving it applies it at once: no Azure call, the role assignments stay as they are.
Past the maximum it is refused.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from provisioning.audit import audit_record
from provisioning.models import ChangeRequest, EnvironmentPolicy, Membership, ResourceState
from provisioning.plan import build_plan
from provisioning.spec import RequestSpec
from provisioning.workflow import selectors
from provisioning.workflow.transitions import RequestError, request_made, request_transition
from provisioning.workflow.validation import MAX_MEMBER_DAYS

Status = ChangeRequest.Status


class RenewalError(RequestError):
    """A renewal cannot be made as asked; the message says why."""


def _renewable(workspace_id: int, membership_id: int, actor: Any) -> Membership:
    """The active membership, locked, of a managed workspace the actor manages (a team lead of it, or an admin)."""
    if not selectors.manages(actor, workspace_id):
        raise PermissionDenied("only a team lead of the workspace or an admin renews its memberships")
    m = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("workspace")
        .filter(pk=membership_id, workspace_id=workspace_id)
        .first()
    )
    if m is None:
        raise RenewalError("choose a member of this workspace")
    if (
        m.state != ResourceState.ACTIVE
        or m.workspace.state != ResourceState.ACTIVE
        or m.workspace.is_observed
    ):
        raise RenewalError(f"{m.principal_name}'s access is {m.state}: only active access is renewed")
    return m


def _days(days: Any) -> int:
    try:
        value = int(days)
    except (TypeError, ValueError) as exc:
        raise RenewalError("renew for a whole number of days") from exc
    if not 1 <= value <= MAX_MEMBER_DAYS:
        raise RenewalError(f"renew for 1 to {MAX_MEMBER_DAYS} days")
    return value


def membership_renew(
    *, workspace_id: int, membership_id: int, actor: Any, days: Any, now: datetime | None = None
) -> ChangeRequest | None:
    """Renew a membership for ``days`` from ``now`` (module docstring); returns the request when an admin
    must approve it, None when it applied at once."""
    days, now = _days(days), now or timezone.now()
    with transaction.atomic():
        m = _renewable(workspace_id, membership_id, actor)
        default, longest = EnvironmentPolicy.read(m.workspace.environment).membership_days(m.persona)
        if longest is not None and days > longest:
            raise RenewalError(
                f"at most {longest} days for a {m.get_persona_display().lower()} in {m.workspace.environment}"
            )
        new_end = now + timedelta(days=days)
        if days <= default:
            _apply(
                m, new_end, actor=actor, message=f"renewed for {days} days (within the policy's {default})"
            )
            return None
        return _renewal_request(m, days, new_end, actor=actor, default=default)


def _apply(
    m: Membership, new_end: datetime, *, actor: Any, message: str, request_id: int | None = None
) -> None:
    before = m.expires_at
    m.expires_at = new_end
    m.save(update_fields=["expires_at"])
    audit_record(
        actor=actor,
        action="membership.renewed",
        obj=m,
        request_id=request_id,
        workspace_name=m.workspace.workspace_name,
        before={"expires_at": before},
        after={"expires_at": new_end, "name": m.principal_name},
        message=message,
    )


def _renewal_request(
    m: Membership, days: int, new_end: datetime, *, actor: Any, default: int
) -> ChangeRequest:
    if ChangeRequest.objects.filter(
        kind=ChangeRequest.Kind.RENEW_ACCESS, status=Status.SUBMITTED, spec__renewal__membership=m.pk
    ).exists():
        raise RenewalError(f"{m.principal_name}'s renewal already waits for an admin")
    renewal = {
        "membership": m.pk,
        "principal": m.principal_name,
        "persona": m.persona,
        "days": days,
        "expires_at_before": m.expires_at.isoformat() if m.expires_at else None,
        "expires_at": new_end.isoformat(),
    }
    cr = request_made(
        actor=actor,
        message=f"renew {m.principal_name} for {days} days",
        kind=ChangeRequest.Kind.RENEW_ACCESS,
        requester=actor,
        workspace=m.workspace,
        workspace_name=m.workspace.workspace_name,
        spec={**RequestSpec().to_json(), "renewal": renewal},
    )
    request_transition(
        cr,
        Status.SUBMITTED,
        actor=actor,
        message=f"{days} days is past the policy's default of {default}: an admin approves",
        submitted_at=timezone.now(),
    )
    return cr


def renewal_plan(cr: ChangeRequest) -> dict[str, Any]:
    """A renewal's plan: the shape of every plan with nothing for Azure, and the member's end date old -> new."""
    r = (cr.spec or {}).get("renewal") or {}
    ws = cr.workspace
    assert ws is not None  # nosec B101 # a renewal is made for a workspace's membership (mypy narrowing)
    plan = build_plan(
        RequestSpec(),
        kind=cr.kind,
        request_id=cr.pk,
        owner="",  # tags only new resources: a renewal makes none
        existing_names=ws.plan_names(),
        subscription_id=ws.subscription_id,
        scientist_role=ws.scientist_role,
    )
    plan["changes"] = [
        {
            "action": "update",
            "object": "member",
            "name": r.get("principal", ""),
            "fields": {"expires_at": [r.get("expires_at_before"), r.get("expires_at")]},
        }
    ]
    return plan


def renewal_approve(cr: ChangeRequest, approver: Any) -> ChangeRequest:
    """Approve a locked, submitted renewal (the caller checked the approver): the end date moves at once and
    the request succeeds in the same transaction."""
    r = (cr.spec or {}).get("renewal") or {}
    new_end = parse_datetime(str(r.get("expires_at", "")))
    m = (
        Membership.objects.select_for_update(of=("self",))
        .select_related("workspace")
        .filter(pk=int(r.get("membership") or 0), workspace=cr.workspace)
        .first()
    )
    if m is None or new_end is None or m.state != ResourceState.ACTIVE:
        raise RenewalError("the membership this renewal is for is no longer active: reject the request")
    request_transition(
        cr,
        Status.APPROVED,
        actor=approver,
        approver=approver,
        decided_at=timezone.now(),
        plan=renewal_plan(cr),
    )
    request_transition(cr, Status.PROVISIONING, actor=approver, message="a renewal changes nothing in Azure")
    _apply(m, new_end, actor=approver, request_id=cr.pk, message=f"renewal approved (request #{cr.pk})")
    request_transition(cr, Status.SUCCEEDED, actor=approver, message="end date moved")
    return cr
