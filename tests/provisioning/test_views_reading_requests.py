"""The team lead's pages, through the web client: reading requests, and copying one into a new draft."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest
from provisioning.spec import RequestSpec
from provisioning.workflow import services
from tests.factories import ChangeRequestFactory, tutorial_spec
from tests.provisioning.pages import Status, assert_accessible, messages_of, tutorial_post

pytestmark = pytest.mark.django_db


# --- Reading requests ------------------------------------------------------------------------------


def test_my_requests_lists_alices_requests(client, draft, alice, charlie):
    ChangeRequestFactory(requester=charlie, spec=tutorial_spec(team="other"))
    client.force_login(alice)

    response = client.get(reverse("provisioning:my_requests"))

    assert response.context["nav"] == "requests"
    assert list(response.context["change_requests"]) == [draft]
    page = response.content.decode()
    assert 'class="badge status-badge status-draft"' in page
    assert "bgmrbluegranite2devws" in page and "bgmrothere2devws" not in page


def test_my_requests_empty_state(client, policy, alice):
    client.force_login(alice)

    page = client.get(reverse("provisioning:my_requests")).content.decode()

    assert "You have not requested anything yet" in page
    assert reverse("provisioning:new_workspace") in page


def test_the_request_page_shows_the_full_plan(client, draft, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:request_detail", args=[draft.pk]))

    assert response.status_code == 200
    assert not response.context["can_decide"]
    page = response.content.decode()
    for text in (
        "bgmr-bluegranit-eastus2-dev",
        "bgmrbluegranite2devbig",
        "hierarchical_namespace",
        "admin_user_enabled",
        "ds13-v2-2ndclust",
        "Dedicated",
        "Key Vault Secrets Officer",
        "AcrPull",
        "datasciencegroup",
        "Storage Blob Data Contributor",
        "Edit draft",
        "Submit for approval",
    ):
        assert text in page
    assert len(response.context["plan"]["role_assignments"]) == 40  # 5 principals x 8 scopes
    assert "Your decision" not in page
    assert_accessible(page)


def test_bob_sees_the_decision_form_on_a_submitted_request(client, policy, alice, bob):
    submitted = ChangeRequestFactory(requester=alice, submitted=True)
    client.force_login(bob)

    response = client.get(reverse("provisioning:request_detail", args=[submitted.pk]))

    assert response.context["can_decide"]
    assert reverse("provisioning:request_approve", args=[submitted.pk]) in response.content.decode()
    assert_accessible(response.content.decode())
    assert "Edit draft" not in response.content.decode()


def test_an_approved_request_says_it_waits_for_a_worker(client, workspace, alice):
    cr = ChangeRequest.objects.get()
    client.force_login(alice)

    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()

    assert "Approved: waiting for a provisioning worker to start." in page
    assert "Cancel request" not in page


@pytest.mark.parametrize(
    ("status", "headline"),
    [
        (Status.PROVISIONING, "provisioning, 0 of"),
        (Status.SUCCEEDED, "provisioning succeeded"),
        (Status.FAILED, "provisioning failed"),
        (Status.ROLLED_BACK, "rolled back"),
    ],
)
def test_the_progress_headline_follows_the_status(client, policy, alice, bob, status, headline):
    cr = ChangeRequestFactory(requester=alice, approver=bob, status=status)
    client.force_login(alice)

    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()
    polled = client.get(
        reverse("provisioning:request_progress", args=[cr.pk]), headers={"HX-Request": "true"}
    ).content.decode()

    for shown in (page, polled):
        assert headline in shown
        assert "queued" not in shown.lower() and "waiting for a provisioning worker" not in shown
        assert "steps done" in shown
    # The polled panel brings the heading's status badge along (out of band).
    assert f'class="badge status-badge status-{status}"' in polled and 'hx-swap-oob="true"' in polled


def test_a_succeeded_request_polls_no_more(client, policy, alice, bob):
    cr = ChangeRequestFactory(requester=alice, approver=bob, succeeded=True)
    client.force_login(alice)

    polled = client.get(reverse("provisioning:request_progress", args=[cr.pk])).content.decode()

    done = cr.runs.get().steps.count()
    assert f"Run 1: provisioning succeeded, {done} of {done} steps done." in " ".join(polled.split())
    assert "hx-trigger" not in polled


def test_a_rejected_request_shows_the_reason(client, policy, alice, bob):
    rejected = ChangeRequestFactory(
        requester=alice, approver=bob, reason="Use westeurope for this team.", rejected=True
    )
    client.force_login(alice)

    page = client.get(reverse("provisioning:request_detail", args=[rejected.pk])).content.decode()

    assert "Rejected by bob" in page
    assert "Use westeurope for this team." in page


def test_alice_copies_a_rejected_request_into_a_new_draft_and_fixes_one_field(client, policy, alice, bob):
    rejected = ChangeRequestFactory(
        requester=alice, approver=bob, reason="The storage name is taken in Azure.", rejected=True
    )
    client.force_login(alice)
    assert (
        "Copy into a new draft"
        in client.get(reverse("provisioning:request_detail", args=[rejected.pk])).content.decode()
    )

    response = client.post(reverse("provisioning:request_copy", args=[rejected.pk]), follow=True)

    copy = ChangeRequest.objects.exclude(pk=rejected.pk).get()
    assert response.redirect_chain[-1][0] == reverse("provisioning:request_edit", args=[copy.pk])
    assert (copy.status, copy.kind, copy.requester, copy.spec) == (
        Status.DRAFT,
        rejected.kind,
        alice,
        rejected.spec,
    )
    assert any(f"Draft #{copy.pk} holds request #{rejected.pk}'s content" in m for m in messages_of(response))
    page = response.content.decode()
    for value in ("bgmr", "bluegranit", "ds3-v2-cluster", "admin1@contoso.com"):
        assert f'value="{value}"' in page
    created = AuditEvent.objects.get(request_id=copy.pk, action="request.created")
    assert created.message == f"copied from request #{rejected.pk}"
    assert copy.copied_from == rejected
    detail = client.get(reverse("provisioning:request_detail", args=[copy.pk])).content.decode()
    assert (
        f'copied from <a href="{reverse("provisioning:request_detail", args=[rejected.pk])}">request #{rejected.pk}</a>'
        in detail
    )
    rejected.refresh_from_db()
    assert rejected.status == Status.REJECTED  # the decision stays as it was

    post = tutorial_post("submit", custom_name="bgmrbluegranite2")
    client.post(reverse("provisioning:request_edit", args=[copy.pk]), post)
    copy.refresh_from_db()
    assert copy.status == Status.SUBMITTED
    assert RequestSpec.from_json(copy.spec).workspace.custom_name == "bgmrbluegranite2"


def test_only_a_rejected_or_cancelled_request_of_ones_own_is_copied(client, draft, alice, charlie):
    client.force_login(alice)
    page = client.get(reverse("provisioning:request_detail", args=[draft.pk])).content.decode()
    assert "Copy into a new draft" not in page

    response = client.post(reverse("provisioning:request_copy", args=[draft.pk]), follow=True)

    assert any("only rejected or cancelled requests are copied" in m for m in messages_of(response))
    assert client.get(reverse("provisioning:request_copy", args=[draft.pk])).status_code == 405
    services.request_cancel(request_id=draft.pk, actor=alice)
    client.force_login(charlie)
    assert client.post(reverse("provisioning:request_copy", args=[draft.pk])).status_code == 404
    assert ChangeRequest.objects.count() == 1
