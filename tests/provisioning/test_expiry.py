"""Time-boxed membership (issue #17): end dates, reminders, the expiry job and renewals, on a fixed clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.utils import timezone

from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    EnvironmentPolicy,
    Membership,
    MembershipReminder,
    ResourceState,
    Run,
)
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import delivery, expiry, renewals, services
from provisioning.workflow.validation import spec_problems
from tests.factories import MembershipFactory, WorkspaceFactory

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def _member(workspace, *, ends_in_days: float, persona: str = "data_scientist", name: str = "") -> Membership:
    extra = {"principal_name": name} if name else {}
    return MembershipFactory(
        workspace=workspace, persona=persona, expires_at=NOW + timedelta(days=ends_in_days), **extra
    )


@pytest.fixture
def workspace(db, alice):
    ws = WorkspaceFactory(owner=alice)
    _member(ws, ends_in_days=400, persona="team_lead", name="lead@contoso.com")
    return ws


# --- policy ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_seed_policy_has_the_issues_durations() -> None:
    days = {
        p.environment: (p.membership_days("data_scientist"), p.membership_days("team_lead"))
        for p in EnvironmentPolicy.objects.all()
    }
    assert days["res"] == ((90, 180), (365, None))
    assert days["dev"] == ((180, 360), (365, None))
    assert days["pro"] == ((365, 730), (365, None))
    assert EnvironmentPolicy.objects.get(environment="dev").reminders() == [14, 3]


@pytest.mark.django_db
def test_a_member_may_ask_fewer_days_than_the_default_never_more(policy, workspace) -> None:
    short = RequestSpec(members=(MemberSpec("new@contoso.com", "data_scientist", days=30),))
    long = RequestSpec(members=(MemberSpec("new@contoso.com", "data_scientist", days=181),))
    silly = RequestSpec(members=(MemberSpec("new@contoso.com", "data_scientist", days=0),))

    def days_problems(spec: RequestSpec) -> list[str]:
        return [
            p.message
            for p in spec_problems(spec, kind="grant_access", workspace=workspace)
            if p.field.endswith("days")
        ]

    assert days_problems(short) == []
    assert days_problems(long) == [
        "at most 180 days for a data scientist in dev: the team lead renews it later"
    ]
    from provisioning.workflow.validation import bounds_problems

    assert [p.message for p in bounds_problems(silly)] == ["days must be 1 to 3650"]
    assert RequestSpec.from_json(short.to_json()) == short
    assert (
        "days"
        not in RequestSpec(members=(MemberSpec("x@contoso.com", "data_scientist"),)).to_json()["members"][0]
    )


# --- reminders ---------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reminders_go_at_the_policys_days_once_to_the_member_and_team_leads(
    workspace, django_capture_on_commit_callbacks
) -> None:
    member = _member(workspace, ends_in_days=20, name="sam@contoso.com")

    def run(now: datetime) -> list[MembershipReminder]:
        with django_capture_on_commit_callbacks(execute=True):
            made = expiry.membership_reminders_send(now=now)
        delivery.notifications_deliver()  # the outbox's job, queued on commit
        return made

    assert run(NOW) == []
    fourteen = run(NOW + timedelta(days=6))
    assert [(r.membership, r.days_before) for r in fourteen] == [(member, 14)]
    assert run(NOW + timedelta(days=6, hours=1)) == []  # idempotent
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == ["sam@contoso.com"]
    assert set(sent.cc) == {"lead@contoso.com", workspace.owner.email.lower()}
    assert "ends in 14 days" in sent.subject
    assert [r.days_before for r in run(NOW + timedelta(days=17, hours=1))] == [3]
    assert run(NOW + timedelta(days=18)) == []
    assert len(mail.outbox) == 2
    assert AuditEvent.objects.filter(action="membership.reminded", object_id=str(member.pk)).count() == 2


@pytest.mark.django_db
def test_a_late_found_membership_gets_only_the_nearest_reminder(
    workspace, django_capture_on_commit_callbacks
) -> None:
    _member(workspace, ends_in_days=2)
    with django_capture_on_commit_callbacks(execute=True):
        sent = expiry.membership_reminders_send(now=NOW)
    delivery.notifications_deliver()
    assert [r.days_before for r in sent] == [3]
    assert len(mail.outbox) == 1


# --- renewals ----------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_renewal_within_the_default_applies_at_once_and_is_audited(workspace, alice) -> None:
    member = _member(workspace, ends_in_days=5)

    assert (
        renewals.membership_renew(
            workspace_id=workspace.pk, membership_id=member.pk, actor=alice, days=180, now=NOW
        )
        is None
    )

    member.refresh_from_db()
    assert member.expires_at == NOW + timedelta(days=180)
    event = AuditEvent.objects.get(action="membership.renewed")
    assert event.actor == alice.username and event.after["expires_at"].startswith("2027-08-28")
    assert not ChangeRequest.objects.filter(kind="renew_access").exists()


@pytest.mark.django_db
def test_a_renewal_past_the_default_needs_an_admin_and_applies_at_approval(workspace, alice, bob) -> None:
    member = _member(workspace, ends_in_days=5)

    cr = renewals.membership_renew(
        workspace_id=workspace.pk, membership_id=member.pk, actor=alice, days=300, now=NOW
    )

    assert cr is not None and cr.status == ChangeRequest.Status.SUBMITTED and cr.kind == "renew_access"
    member.refresh_from_db()
    assert member.expires_at == NOW + timedelta(days=5)  # unchanged until approved
    plan = services.request_plan(cr)
    assert plan["changes"][0]["fields"]["expires_at"][1].startswith("2027-12-26")
    with pytest.raises(renewals.RenewalError, match="already waits"):
        renewals.membership_renew(
            workspace_id=workspace.pk, membership_id=member.pk, actor=alice, days=300, now=NOW
        )
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=cr.pk, approver=alice)

    services.request_approve(request_id=cr.pk, approver=bob)

    cr.refresh_from_db()
    member.refresh_from_db()
    assert cr.status == ChangeRequest.Status.SUCCEEDED and cr.approver == bob
    assert member.expires_at == NOW + timedelta(days=300)
    assert not Run.objects.filter(change_request=cr).exists()  # nothing for Azure
    assert AuditEvent.objects.filter(action="membership.renewed", request_id=cr.pk).exists()


@pytest.mark.django_db
def test_a_renewal_past_the_maximum_or_by_an_outsider_is_refused(workspace, alice, charlie) -> None:
    member = _member(workspace, ends_in_days=5)
    lead = Membership.objects.get(principal_name="lead@contoso.com")

    with pytest.raises(renewals.RenewalError, match="at most 360 days for a data scientist in dev"):
        renewals.membership_renew(
            workspace_id=workspace.pk, membership_id=member.pk, actor=alice, days=361, now=NOW
        )
    with pytest.raises(renewals.RenewalError, match="whole number of days"):
        renewals.membership_renew(
            workspace_id=workspace.pk, membership_id=member.pk, actor=alice, days="many", now=NOW
        )
    with pytest.raises(PermissionDenied):
        renewals.membership_renew(
            workspace_id=workspace.pk, membership_id=member.pk, actor=charlie, days=10, now=NOW
        )
    # Team leads have no maximum in the seed policy: long renewals go to an admin.
    assert (
        renewals.membership_renew(
            workspace_id=workspace.pk, membership_id=lead.pk, actor=alice, days=1000, now=NOW
        )
        is not None
    )


@pytest.mark.django_db
def test_the_workspace_page_renews(client, workspace, alice) -> None:
    member = _member(workspace, ends_in_days=5)
    client.force_login(alice)
    page = client.get(f"/workspaces/{workspace.pk}/")
    assert b"Days from today" in page.content

    response = client.post(f"/workspaces/{workspace.pk}/renew/", {"membership": member.pk, "days": "30"})

    assert response.status_code == 302
    member.refresh_from_db()
    assert member.expires_at > timezone.now() + timedelta(days=29)
    over = client.post(f"/workspaces/{workspace.pk}/renew/", {"membership": member.pk, "days": "250"})
    cr = ChangeRequest.objects.get(kind="renew_access")
    assert over["Location"] == f"/requests/{cr.pk}/"
    assert client.get(over["Location"]).status_code == 200


# --- expiry ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_dry_run_changes_nothing(workspace) -> None:
    member = _member(workspace, ends_in_days=-1, name="gone@contoso.com")
    Membership.objects.filter(pk=member.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    out = StringIO()
    call_command("expire_memberships", "--dry-run", stdout=out)
    assert f"would expire gone@contoso.com (data_scientist) on {workspace.workspace_name}" in out.getvalue()
    member.refresh_from_db()
    assert member.state == ResourceState.ACTIVE
    assert not ChangeRequest.objects.filter(kind="revoke_access").exists()
    out = StringIO()
    call_command("expire_memberships", "--dry-run", "--json", stdout=out)
    assert json.loads(out.getvalue())["memberships"][0]["request_id"] is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_a_membership_past_its_end_is_removed_from_azure_and_audited(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    from provisioning.engine import executor as engine
    from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory, tutorial_spec

    for m in TUTORIAL_MEMBERS:
        standin.add_user(m.principal)
    standin.add_group("datasciencegroup")
    spec = tutorial_spec()
    shortened = tuple(
        MemberSpec(m.principal, m.persona, m.principal_type, days=30)
        if m.principal == "user2@contoso.com"
        else m
        for m in spec.members
    )
    cr = ChangeRequestFactory(
        requester=alice,
        approver=bob,
        approved=True,
        spec=RequestSpec(workspace=spec.workspace, clusters=spec.clusters, members=shortened),
    )
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    user2 = Membership.objects.get(principal_name="user2@contoso.com")
    lead = Membership.objects.filter(persona="team_lead").first()
    assert user2.expires_at is not None and lead is not None and lead.expires_at is not None
    started = user2.created_at
    assert timedelta(days=29) < user2.expires_at - started < timedelta(days=31)  # asked 30
    assert timedelta(days=364) < lead.expires_at - started < timedelta(days=366)  # leads' default
    assert len(standin.state.list_role_assignments(principal_id=user2.object_id)) == 8

    later = user2.expires_at + timedelta(hours=1)
    ended = expiry.memberships_expire(now=later)
    assert [e.principal for e in ended] == ["user2@contoso.com"]
    assert expiry.memberships_expire(now=later) == []  # a second run makes nothing
    revoke = ChangeRequest.objects.get(pk=ended[0].request_id)
    assert (revoke.kind, revoke.status, revoke.requester) == ("revoke_access", "approved", cr.workspace.owner)

    assert engine.request_execute(request_id=revoke.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    assert standin.state.list_role_assignments(principal_id=user2.object_id) == []
    assert len(standin.state.list_role_assignments()) == 40 - 8
    user2.refresh_from_db()
    assert user2.state == ResourceState.REVOKED
    actions = set(
        AuditEvent.objects.filter(object_type="membership", object_id=str(user2.pk)).values_list(
            "action", flat=True
        )
    )
    assert {"membership.expired", "membership.revoking", "membership.revoked"} <= actions
    assert AuditEvent.objects.get(action="membership.expired").actor == expiry.SYSTEM
