"""Deciding quickly: the summary and decision at the top of a request's page, and decisions from the queue."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts import personas
from provisioning.models import ChangeRequest
from provisioning.workflow import name_checks
from tests.factories import ChangeRequestFactory, UserFactory, WorkspaceFactory, members_found, tutorial_spec

pytestmark = pytest.mark.django_db

Kind = ChangeRequest.Kind
Status = ChangeRequest.Status
QUEUE = reverse("provisioning:approval_queue")


def _access_request(requester) -> ChangeRequest:  # type: ignore[no-untyped-def]
    """A request for access to the requester's workspace, its member found in Entra ID."""
    cr = ChangeRequestFactory(
        workspace=WorkspaceFactory(owner=requester), kind=Kind.GRANT_ACCESS, submitted=True
    )
    members_found(cr)
    return ChangeRequest.objects.get(pk=cr.pk)


@pytest.fixture
def submitted(policy, alice) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=alice, spec=tutorial_spec(), submitted=True)


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


# --- the request page ------------------------------------------------------------------------------


def test_the_request_page_opens_with_the_summary_and_the_admins_decision(client, submitted, bob) -> None:
    client.force_login(bob)

    page = client.get(reverse("provisioning:request_detail", args=[submitted.pk])).content.decode()

    summary, decision, plan = (
        page.index(s) for s in ('id="summary-heading"', 'id="decision-heading"', 'id="plan-heading"')
    )
    assert summary < decision < plan
    assert "asks: new workspace (3 new clusters, 5 members added)" in page
    assert "eastus2" in page and "Worst-case cost" in page
    assert 'class="request-layout with-decision"' in page
    assert 'id="reject-reason-' in page
    assert 'hx-select="#request-summary"' in page  # follows the checks still being made


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_plans_role_assignments_are_grouped_and_collapsed(client, submitted, who) -> None:  # type: ignore[no-untyped-def]
    client.force_login(submitted.requester if who == "alice" else UserFactory(persona=personas.ADMIN))

    response = client.get(reverse("provisioning:request_detail", args=[submitted.pk]))

    page = response.content.decode()
    people = {g.label: len(g.assignments) for g in response.context["by_person"]}
    assert sum(people.values()) == len(response.context["plan"]["role_assignments"])
    assert "<details open" not in page
    label, count = next(iter(people.items()))
    assert f"{label}</span>: {count} assignment" in page
    assert page.count('<details class="role-group">') == len(people) + len(response.context["by_scope"])


@pytest.mark.parametrize("who", ["requester", "first_approver", "scientist"])
def test_the_decision_is_shown_only_to_who_may_decide(client, submitted, bob, dana, who) -> None:  # type: ignore[no-untyped-def]
    if who == "first_approver":  # a second approval is another admin's
        ChangeRequest.objects.filter(pk=submitted.pk).update(first_approver=bob)
    user = {"requester": submitted.requester, "first_approver": bob, "scientist": dana}[who]
    client.force_login(user)

    response = client.get(reverse("provisioning:request_detail", args=[submitted.pk]))

    if who == "scientist":
        assert response.status_code == 404
        return
    page = response.content.decode()
    assert 'id="summary-heading"' in page
    assert 'id="decision-heading"' not in page
    assert reverse("provisioning:request_approve", args=[submitted.pk]) not in page


def test_the_summary_names_what_blocks_the_approval(client, submitted, bob) -> None:
    answers = [
        {
            "kind": "storage",
            "name": "bgmrbluegranite2devsa",
            "available": False,
            "reason": "AlreadyExists",
            "message": "",
        }
    ]
    name_checks.name_check_record(request_id=submitted.pk, answers=answers)
    client.force_login(bob)

    response = client.get(reverse("provisioning:request_detail", args=[submitted.pk]))

    assert [p.field for p in response.context["summary"].blocking] == ["workspace.team"]
    page = response.content.decode()
    assert "Approval is blocked by 1 problem:" in page
    assert "1 taken" in page


# --- the queue -------------------------------------------------------------------------------------


def test_a_clean_request_is_approved_from_the_queue(client, alice, bob, rq_queue) -> None:  # type: ignore[no-untyped-def]
    cr = _access_request(alice)
    client.force_login(bob)

    page = client.get(QUEUE).content.decode()
    assert f'action="{reverse("provisioning:request_approve", args=[cr.pk])}"' in page
    response = client.post(reverse("provisioning:request_approve", args=[cr.pk]), {"next": "queue"})

    assert response.url == QUEUE
    cr.refresh_from_db()
    assert (cr.status, cr.approver) == (Status.APPROVED, bob)
    assert any("approved" in m for m in _messages(response))


def test_rejecting_from_the_queue_needs_a_reason(client, alice, bob) -> None:  # type: ignore[no-untyped-def]
    cr = _access_request(alice)
    client.force_login(bob)
    url = reverse("provisioning:request_reject", args=[cr.pk])

    refused = client.post(url, {"next": "queue", "reason": ""})
    cr.refresh_from_db()
    assert (refused.url, cr.status) == (QUEUE, Status.SUBMITTED)
    response = client.post(url, {"next": "queue", "reason": "Not before the audit."})

    assert response.url == QUEUE
    cr.refresh_from_db()
    assert (cr.status, cr.reason) == (Status.REJECTED, "Not before the audit.")


def test_the_queue_sends_requests_with_checks_or_cores_to_their_page(client, submitted, alice, bob) -> None:  # type: ignore[no-untyped-def]
    pending = ChangeRequestFactory(
        workspace=WorkspaceFactory(owner=alice), kind=Kind.GRANT_ACCESS, submitted=True
    )
    client.force_login(bob)

    response = client.get(QUEUE)

    blockers = {row.cr.pk: row.blocker for row in response.context["waiting"]}
    assert blockers == {
        submitted.pk: "names are still being checked in Azure",
        pending.pk: "members are still being checked in Entra ID",
    }
    page = response.content.decode()
    assert reverse("provisioning:request_approve", args=[submitted.pk]) not in page
    assert "Decide on its page: members are still being checked in Entra ID." in page


def test_an_admin_cannot_approve_her_own_request_from_the_queue(client, policy) -> None:  # type: ignore[no-untyped-def]
    erin = UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    cr = _access_request(erin)
    client.force_login(erin)

    assert client.get(QUEUE).context["waiting"] == []
    response = client.post(reverse("provisioning:request_approve", args=[cr.pk]), {"next": "queue"})

    assert response.status_code == 403
    cr.refresh_from_db()
    assert cr.status == Status.SUBMITTED
