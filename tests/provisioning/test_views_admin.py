"""The approval queue and the admin's decisions, through the web client."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.template.loader import render_to_string
from django.urls import reverse

from accounts import personas
from provisioning.models import AllowedVmSize, AuditEvent, ChangeRequest, Workspace
from provisioning.queue import provisioning_job_id
from tests.factories import ChangeRequestFactory, UserFactory, tutorial_spec

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status


def provisioning_jobs(queue):
    """Provisioning jobs only (submitting also queues a name check)."""
    return [job_id for job_id in queue.job_ids if job_id.startswith("provision-")]


def _submitted(requester, **overrides):  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=requester, spec=tutorial_spec(**overrides), submitted=True)


@pytest.fixture
def submitted(policy, alice):  # type: ignore[no-untyped-def]
    """Alice's tutorial request, waiting for approval."""
    return _submitted(alice)


def _messages(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def _decisions(cr: ChangeRequest) -> list[str]:
    return list(
        AuditEvent.objects.filter(
            request_id=cr.pk, action__in=["request.approved", "request.rejected"]
        ).values_list("action", flat=True)
    )


def test_bob_approves_alices_request(client, submitted, bob, rq_queue, django_capture_on_commit_callbacks):
    client.force_login(bob)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("provisioning:request_approve", args=[submitted.pk]))

    assert response.status_code == 302
    assert response.url == reverse("provisioning:request_detail", args=[submitted.pk])
    submitted.refresh_from_db()
    assert submitted.status == Status.APPROVED
    assert submitted.approver == bob
    event = AuditEvent.objects.get(request_id=submitted.pk, action="request.approved")
    assert event.actor == "bob"
    assert provisioning_jobs(rq_queue) == [provisioning_job_id(submitted.pk)]
    # The message tells what was done, not a status that would be stale once provisioning moves on.
    assert f"Request #{submitted.pk} approved; its page follows the provisioning." in _messages(response)


def test_an_admin_cannot_approve_their_own_request(client, policy):
    erin = UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    cr = _submitted(erin)
    client.force_login(erin)

    response = client.post(reverse("provisioning:request_approve", args=[cr.pk]))

    assert response.status_code == 403
    cr.refresh_from_db()
    assert cr.status == Status.SUBMITTED
    assert _decisions(cr) == []
    assert not Workspace.objects.exists()


def test_an_admin_cannot_reject_their_own_request(client, policy):
    erin = UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    cr = _submitted(erin)
    client.force_login(erin)

    response = client.post(reverse("provisioning:request_reject", args=[cr.pk]), {"reason": "no"})

    assert response.status_code == 403
    cr.refresh_from_db()
    assert cr.status == Status.SUBMITTED


def test_reject_with_a_reason(client, submitted, bob):
    client.force_login(bob)

    response = client.post(
        reverse("provisioning:request_reject", args=[submitted.pk]),
        {"reason": "Use the westeurope region for this team."},
    )

    assert response.status_code == 302
    submitted.refresh_from_db()
    assert submitted.status == Status.REJECTED
    assert submitted.reason == "Use the westeurope region for this team."
    event = AuditEvent.objects.get(request_id=submitted.pk, action="request.rejected")
    assert (event.actor, event.message) == ("bob", "Use the westeurope region for this team.")
    assert not Workspace.objects.exists()


@pytest.mark.parametrize("data", [{}, {"reason": ""}, {"reason": "   \n "}])
def test_reject_without_a_reason_is_refused(client, submitted, bob, data):
    client.force_login(bob)

    response = client.post(reverse("provisioning:request_reject", args=[submitted.pk]), data)

    assert response.status_code == 302
    assert response.url == reverse("provisioning:request_detail", args=[submitted.pk])
    submitted.refresh_from_db()
    assert submitted.status == Status.SUBMITTED
    assert _decisions(submitted) == []
    assert any("Say why" in m for m in _messages(response))


@pytest.mark.parametrize("name", ["provisioning:request_approve", "provisioning:request_reject"])
def test_decisions_are_post_only(client, submitted, bob, name):
    client.force_login(bob)

    assert client.get(reverse(name, args=[submitted.pk])).status_code == 405
    submitted.refresh_from_db()
    assert submitted.status == Status.SUBMITTED


@pytest.mark.parametrize("who", ["alice", "charlie", "dana"])
def test_only_admins_decide(client, submitted, charlie, dana, who):
    client.force_login({"alice": submitted.requester, "charlie": charlie, "dana": dana}[who])

    assert client.post(reverse("provisioning:request_approve", args=[submitted.pk])).status_code == 403
    assert (
        client.post(reverse("provisioning:request_reject", args=[submitted.pk]), {"reason": "x"}).status_code
        == 403
    )
    assert client.get(reverse("provisioning:approval_queue")).status_code == 403
    submitted.refresh_from_db()
    assert submitted.status == Status.SUBMITTED


def test_anonymous_users_are_sent_to_sign_in(client, submitted):
    response = client.post(reverse("provisioning:request_approve", args=[submitted.pk]))

    assert response.status_code == 302
    assert reverse("accounts:login") in response.url


def test_someone_elses_draft_is_not_found(client, policy, alice, bob):
    draft = ChangeRequestFactory(requester=alice)
    client.force_login(bob)

    assert client.post(reverse("provisioning:request_approve", args=[draft.pk])).status_code == 404
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_approving_twice_explains_instead_of_failing(client, policy, alice, bob):
    approved = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    client.force_login(bob)

    response = client.post(reverse("provisioning:request_approve", args=[approved.pk]))

    assert response.status_code == 302
    assert any("cannot be approved" in m for m in _messages(response))
    assert len(_decisions(approved)) == 1


def test_approval_lists_the_problems_found_at_approval(client, submitted, bob):
    # Policy changed after submission: the approval re-checks the request and says what is wrong.
    AllowedVmSize.objects.filter(name="STANDARD_NV6").update(is_active=False)
    client.force_login(bob)

    response = client.post(reverse("provisioning:request_approve", args=[submitted.pk]))

    assert response.status_code == 302
    (message,) = _messages(response)
    assert message.startswith("Could not approve the request")
    assert "<li>clusters.2." in message
    submitted.refresh_from_db()
    assert submitted.status == Status.SUBMITTED
    assert not Workspace.objects.exists()


def test_queue_lists_submitted_requests_oldest_first(client, policy, alice, charlie, bob):
    first = _submitted(alice)
    second = _submitted(charlie, team="otherteam")
    client.force_login(bob)

    response = client.get(reverse("provisioning:approval_queue"))

    assert response.status_code == 200
    assert response.context["nav"] == "approvals"
    rows = response.context["waiting"]
    assert [row.cr.pk for row in rows] == [first.pk, second.pk]
    assert (rows[0].clusters, rows[0].members) == (3, 5)  # 4 members and the security group
    page = response.content.decode()
    assert reverse("provisioning:request_detail", args=[first.pk]) in page
    assert "bgmrbluegranite2devws" in page
    assert "Nothing waiting for approval" not in page


def test_queue_empty_state_and_recent_decisions(client, policy, alice, bob):
    approved = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    client.force_login(bob)

    response = client.get(reverse("provisioning:approval_queue"))

    page = response.content.decode()
    assert "Nothing waiting for approval" in page
    assert [cr.pk for cr in response.context["decided"]] == [approved.pk]
    assert "Recently decided" in page


def test_queue_leaves_out_the_admins_own_requests(client, policy):
    erin = UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    _submitted(erin)
    client.force_login(erin)

    response = client.get(reverse("provisioning:approval_queue"))

    assert response.context["waiting"] == []
    assert response.context["own_waiting"] == 1
    assert "waiting for another administrator" in response.content.decode()


def test_decision_form_posts_to_approve_and_reject(rf, submitted, bob):
    request = rf.get("/")
    request.user = bob

    html = render_to_string("provisioning/_decision_form.html", {"cr": submitted}, request=request)

    assert f'action="{reverse("provisioning:request_approve", args=[submitted.pk])}"' in html
    assert f'action="{reverse("provisioning:request_reject", args=[submitted.pk])}"' in html
    assert html.count('name="csrfmiddlewaretoken"') == 2
    assert f'<label class="form-label" for="reject-reason-{submitted.pk}">' in html
    assert 'name="reason"' in html and "required" in html
    assert "You approve exactly the plan on this page" in html
