"""Access reviews (issue #17): campaigns started by an admin or the schedule, a team lead's keep or remove, closing
with the removals run like revocations, the deadline handled by policy, the CSV and the pages."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.models import (
    AccessReview,
    AccessReviewDecision,
    AuditEvent,
    ChangeRequest,
    EnvironmentPolicy,
    Membership,
    ResourceState,
    Run,
    UnreviewedAccess,
    Workspace,
)
from provisioning.workflow import reviews
from provisioning.workflow.reviews import Choice, ReviewError
from tests.factories import MembershipFactory, WorkspaceFactory

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
Decision = AccessReviewDecision.Decision


@pytest.fixture
def ws(db, alice) -> Workspace:
    """Alice's workspace: alice leads it; sam and ulf are data scientists."""
    workspace = WorkspaceFactory(owner=alice)
    MembershipFactory(workspace=workspace, principal_name=alice.upn, persona="team_lead", state="active")
    for name in ("sam@contoso.com", "ulf@contoso.com"):
        MembershipFactory(workspace=workspace, principal_name=name, state="active")
    return workspace


def _decisions(review: AccessReview) -> dict[str, AccessReviewDecision]:
    return {d.principal_name: d for d in review.decisions.all()}


def _decide(review: AccessReview, actor, **wanted: str) -> int:  # type: ignore[no-untyped-def]
    rows = _decisions(review)
    choices = [Choice(rows[f"{name}@contoso.com"].pk, decision) for name, decision in wanted.items()]
    return reviews.review_decide(review_id=review.pk, actor=actor, choices=choices, now=NOW)


def test_an_admin_starts_a_review_of_the_active_members_once(ws, bob, alice) -> None:
    review = reviews.review_start(workspace_id=ws.pk, actor=bob, now=NOW)

    assert set(_decisions(review)) == {alice.upn, "sam@contoso.com", "ulf@contoso.com"}
    assert {d.decision for d in review.decisions.all()} == {Decision.PENDING}
    assert review.deadline == NOW + timedelta(days=14)
    assert review.unreviewed == UnreviewedAccess.ESCALATE
    with pytest.raises(ReviewError, match="has an access review open already"):
        reviews.review_start(workspace_id=ws.pk, actor=bob, now=NOW)
    with pytest.raises(PermissionDenied):
        reviews.review_start(workspace_id=ws.pk, actor=alice, now=NOW)
    assert AuditEvent.objects.filter(action="access_review.started", object_id=str(review.pk)).count() == 1


def test_the_lead_decides_and_closing_removes_the_removed_through_a_revocation(
    ws, bob, alice, charlie
) -> None:
    review = reviews.review_start(workspace_id=ws.pk, actor=bob, now=NOW)

    with pytest.raises(PermissionDenied):
        _decide(review, charlie, sam="keep")  # another team's lead
    with pytest.raises(ReviewError, match="keep or remove"):
        _decide(review, alice, sam="maybe")
    assert _decide(review, alice, sam="keep", ulf="remove") == 2
    assert _decide(review, alice, sam="keep", ulf="remove") == 0  # the same form again changes nothing
    with pytest.raises(ReviewError, match="1 member is not reviewed yet"):
        reviews.review_close(review_id=review.pk, actor=alice, now=NOW)
    _decide(review, alice, **{alice.upn.split("@")[0]: "keep"})

    closed = reviews.review_close(review_id=review.pk, actor=alice, now=NOW)

    assert closed.status == AccessReview.Status.CLOSED
    revocation = closed.revocation
    assert revocation is not None
    assert (revocation.kind, revocation.status) == (
        ChangeRequest.Kind.REVOKE_ACCESS,
        ChangeRequest.Status.APPROVED,
    )
    ulf = Membership.objects.get(principal_name="ulf@contoso.com")
    assert revocation.spec["revoke"] == [ulf.pk] and ulf.state == ResourceState.REVOKING
    assert Membership.objects.get(principal_name="sam@contoso.com").state == ResourceState.ACTIVE
    assert (
        reviews.review_close(review_id=review.pk, actor=alice, now=NOW).revocation == revocation
    )  # twice: once
    events = AuditEvent.objects.filter(object_type="access_review").order_by("id")
    actions = list(events.values_list("action", flat=True))
    assert actions.count("access_review.decided") == 3 and actions[-1] == "access_review.closed"


def test_past_the_deadline_unreviewed_members_are_removed_when_policy_says_so(ws, bob, alice) -> None:
    EnvironmentPolicy.objects.filter(environment="dev").update(unreviewed_access=UnreviewedAccess.REMOVE)
    review = reviews.review_start(workspace_id=ws.pk, actor=bob, now=NOW)
    _decide(review, alice, sam="keep")
    later = NOW + timedelta(days=15)

    done = reviews.reviews_due(now=later)

    assert done["closed"] == [review.pk]
    review.refresh_from_db()
    removed = {d.principal_name for d in review.decisions.filter(decision=Decision.REMOVE)}
    assert removed == {alice.upn, "ulf@contoso.com"}
    assert {d.decided_by for d in review.decisions.filter(decision=Decision.REMOVE)} == {
        "policy: not reviewed by the deadline"
    }
    assert review.status == AccessReview.Status.CLOSED and review.revocation is not None
    assert reviews.reviews_due(now=later)["closed"] == []


def test_past_the_deadline_unreviewed_members_are_escalated_to_an_admin(ws, bob, alice) -> None:
    review = reviews.review_start(workspace_id=ws.pk, actor=bob, now=NOW)
    _decide(review, alice, sam="keep", **{alice.upn.split("@")[0]: "keep"})

    reviews.reviews_due(now=NOW + timedelta(days=15))

    review.refresh_from_db()
    assert review.status == AccessReview.Status.ESCALATED
    assert _decisions(review)["ulf@contoso.com"].escalated
    with pytest.raises(PermissionDenied, match="an admin decides"):
        _decide(review, alice, ulf="keep")
    _decide(review, bob, ulf="remove")
    closed = reviews.review_close(review_id=review.pk, actor=bob, now=NOW + timedelta(days=16))
    assert closed.status == AccessReview.Status.CLOSED
    assert closed.revocation is not None and closed.revocation.spec["revoke"] == [
        Membership.objects.get(principal_name="ulf@contoso.com").pk
    ]


def test_the_schedule_starts_a_review_an_interval_after_the_last(ws, bob, alice) -> None:
    Workspace.objects.filter(pk=ws.pk).update(created_at=NOW - timedelta(days=10))
    assert reviews.reviews_due(now=NOW)["started"] == []  # made 10 days ago: not due

    started = reviews.reviews_due(now=NOW + timedelta(days=81))["started"]

    assert started == [ws.pk]
    first = AccessReview.objects.get(workspace=ws)
    assert first.started_by is None
    assert reviews.reviews_due(now=NOW + timedelta(days=82))["started"] == []  # open: not again
    for d in first.decisions.all():
        reviews.review_decide(review_id=first.pk, actor=alice, choices=[Choice(d.pk, "keep")], now=NOW)
    reviews.review_close(review_id=first.pk, actor=alice, now=NOW + timedelta(days=82))
    assert reviews.reviews_due(now=NOW + timedelta(days=100))["started"] == []
    assert reviews.reviews_due(now=NOW + timedelta(days=172))["started"] == [ws.pk]


def test_the_command_runs_the_schedule_and_says_what_it_would_do(ws) -> None:
    Workspace.objects.filter(pk=ws.pk).update(created_at=NOW - timedelta(days=400))
    out = io.StringIO()

    call_command("access_reviews", "--dry-run", "--json", stdout=out)

    assert '"started": [\n    ' + str(ws.pk) in out.getvalue()
    assert not AccessReview.objects.exists()
    call_command("access_reviews", stdout=io.StringIO())
    assert AccessReview.objects.filter(workspace=ws).count() == 1


# --- pages ---------------------------------------------------------------------------------------------


def test_the_lead_reviews_from_the_page_and_outsiders_cannot(client, ws, bob, alice, charlie) -> None:
    review = reviews.review_start(workspace_id=ws.pk, actor=bob)
    url = reverse("provisioning:review_detail", args=[review.pk])
    rows = _decisions(review)
    client.force_login(charlie)
    assert client.get(url).status_code == 404
    assert client.post(url, {f"decision-{rows['ulf@contoso.com'].pk}": "remove"}).status_code == 404

    client.force_login(alice)
    page = client.get(url).content.decode()
    assert f'name="decision-{rows["sam@contoso.com"].pk}"' in page
    assert "0 of 3" in page
    client.post(
        url,
        {f"decision-{rows['ulf@contoso.com'].pk}": "remove", f"note-{rows['ulf@contoso.com'].pk}": "left"},
    )

    ulf = AccessReviewDecision.objects.get(pk=rows["ulf@contoso.com"].pk)
    assert (ulf.decision, ulf.note, ulf.decided_by) == (Decision.REMOVE, "left", alice.principal_name)
    workspace_page = client.get(reverse("provisioning:workspace_detail", args=[ws.pk])).content.decode()
    assert f'Access review <a href="{url}">#{review.pk}</a> is open' in workspace_page


def test_an_admin_starts_a_review_from_the_workspace_page(client, ws, bob, alice) -> None:
    client.force_login(alice)
    assert client.post(reverse("provisioning:review_start", args=[ws.pk])).status_code == 403
    client.force_login(bob)

    response = client.post(reverse("provisioning:review_start", args=[ws.pk]))

    review = AccessReview.objects.get(workspace=ws)
    assert response.url == reverse("provisioning:review_detail", args=[review.pk])
    assert review.started_by == bob


def test_a_reviews_decisions_are_exported_as_csv_safe_from_formulas(client, ws, bob, alice) -> None:
    review = reviews.review_start(workspace_id=ws.pk, actor=bob)
    sam = _decisions(review)["sam@contoso.com"]
    reviews.review_decide(review_id=review.pk, actor=alice, choices=[Choice(sam.pk, "keep", "=HYPERLINK(1)")])
    client.force_login(alice)

    response = client.get(reverse("provisioning:review_csv", args=[review.pk]))

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0][:5] == ["review", "workspace", "member", "persona", "decision"]
    sam_row = next(r for r in rows if r[2] == "sam@contoso.com")
    assert sam_row[4] == "keep" and sam_row[8] == "'=HYPERLINK(1)"
    assert "attachment" in response["Content-Disposition"]


def test_the_review_lists_queries_do_not_grow(client, policy, bob) -> None:
    def grow(count: int) -> None:
        for _ in range(count):
            workspace = WorkspaceFactory()
            MembershipFactory(workspace=workspace, state="active")
            reviews.review_start(workspace_id=workspace.pk, actor=bob)

    def queries(url: str) -> int:
        cache.clear()  # the nav's count of waiting approvals is read each time
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    grow(3)
    client.force_login(bob)
    few = queries(reverse("provisioning:review_list"))
    grow(25)
    assert queries(reverse("provisioning:review_list")) == few <= 8
    review = AccessReview.objects.first()
    assert review is not None
    assert queries(reverse("provisioning:review_detail", args=[review.pk])) <= 8


# --- the removals run like revocations, against Azure ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_a_member_removed_in_a_review_loses_every_role_assignment_in_azure(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    from provisioning.engine import executor as engine
    from tests.provisioning.provisioned import provisioned

    ws = provisioned(standin, azure_clients, alice, bob)
    user3 = Membership.objects.get(principal_name="user3@contoso.com")
    assert len(standin.state.list_role_assignments(principal_id=user3.object_id)) == 8
    review = reviews.review_start(workspace_id=ws.pk, actor=bob)
    choices = [
        Choice(d.pk, "remove" if d.principal_name == "user3@contoso.com" else "keep")
        for d in review.decisions.all()
    ]
    reviews.review_decide(review_id=review.pk, actor=alice, choices=choices)

    closed = reviews.review_close(review_id=review.pk, actor=alice)
    assert closed.revocation is not None
    assert (
        engine.request_execute(request_id=closed.revocation.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    )

    assert standin.state.list_role_assignments(principal_id=user3.object_id) == []
    user3.refresh_from_db()
    assert user3.state == ResourceState.REVOKED
    assert len(standin.state.list_role_assignments()) == 40 - 8


def test_the_workspace_page_shows_its_live_review_and_not_a_closed_one(client, ws, alice, bob) -> None:
    page = reverse("provisioning:workspace_detail", args=[ws.pk])
    client.force_login(bob)
    assert "Access review <a" not in client.get(page).content.decode()

    review = reviews.review_start(workspace_id=ws.pk, actor=bob, now=NOW)

    shown = client.get(page).content.decode()
    assert f'{reverse("provisioning:review_detail", args=[review.pk])}">#{review.pk}</a>' in shown
    _decide(review, alice, sam="keep", ulf="keep", **{alice.upn.split("@")[0]: "keep"})
    assert (
        reviews.review_close(review_id=review.pk, actor=alice, now=NOW).status == AccessReview.Status.CLOSED
    )
    assert "Access review <a" not in client.get(page).content.decode()
