"""The pages of a failed request: amend (its team lead or an admin), keep or roll back (admins)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status


@pytest.fixture
def failed(policy, alice, bob, rq_queue) -> ChangeRequest:
    """The tutorial request, failed at its first role grant (the workspace exists)."""
    return ChangeRequestFactory(requester=alice, approver=bob, failed=True, failed_step="role_grant")


def _members(cr: ChangeRequest) -> list[str]:
    return [m["principal"] for m in ChangeRequest.objects.get(pk=cr.pk).spec["members"]]


def test_the_team_lead_amends_from_the_request_page(client, alice, failed) -> None:
    client.force_login(alice)
    page = client.get(reverse("provisioning:request_detail", args=[failed.pk])).content.decode()
    assert "Amend the request" in page and "Roll back and abandon" not in page

    form = client.get(reverse("provisioning:request_amend", args=[failed.pk])).content.decode()
    assert "user3@contoso.com" in form
    members = _members(failed)
    index = members.index("user3@contoso.com")
    response = client.post(
        reverse("provisioning:request_amend", args=[failed.pk]),
        {f"drop_member_{index}": "on", "reason": "user3 moved to another team"},
    )

    assert response.status_code == 302
    assert ChangeRequest.objects.get(pk=failed.pk).status == Status.PROVISIONING
    assert "user3@contoso.com" not in _members(failed)
    assert AuditEvent.objects.filter(request_id=failed.pk, action="request.amended").exists()


def test_a_bad_replacement_is_shown_and_changes_nothing(client, alice, failed) -> None:
    client.force_login(alice)
    index = _members(failed).index("user3@contoso.com")
    response = client.post(
        reverse("provisioning:request_amend", args=[failed.pk]),
        {f"replace_member_{index}": "not an address", "reason": "typo"},
    )
    assert response.status_code == 400
    assert "is not an email address or user principal name" in response.content.decode()
    assert 'value="not an address"' in response.content.decode()  # what was typed is kept
    cr = ChangeRequest.objects.get(pk=failed.pk)
    assert cr.status == Status.FAILED and "user3@contoso.com" in _members(failed)


def test_an_admin_sees_what_was_created_and_rolls_it_back(client, bob, failed) -> None:
    client.force_login(bob)
    page = client.get(reverse("provisioning:request_detail", args=[failed.pk])).content.decode()
    assert "What this request created in Azure" in page
    assert "/resourceGroups/bgmr-bluegranit-eastus2-dev" in page
    assert "Keep and abandon" in page and "Roll back and abandon" in page

    response = client.post(
        reverse("provisioning:request_rollback", args=[failed.pk]), {"reason": "reorganised"}
    )

    assert response.status_code == 302
    assert ChangeRequest.objects.get(pk=failed.pk).status == Status.ROLLING_BACK
    page = client.get(reverse("provisioning:request_detail", args=[failed.pk])).content.decode()
    assert "Rolling back: a run removes what this request created" in page


def test_keep_needs_an_admin_and_a_reason(client, alice, bob, dana, failed) -> None:
    client.force_login(alice)
    assert (
        client.post(reverse("provisioning:request_keep", args=[failed.pk]), {"reason": "mine"}).status_code
        == 403
    )
    client.force_login(bob)
    client.post(reverse("provisioning:request_keep", args=[failed.pk]), {"reason": ""})
    assert ChangeRequest.objects.get(pk=failed.pk).status == Status.FAILED
    client.post(reverse("provisioning:request_keep", args=[failed.pk]), {"reason": "start small"})
    assert ChangeRequest.objects.get(pk=failed.pk).status == Status.ABANDONED


def test_others_cannot_reach_the_amend_page(client, charlie, dana, failed) -> None:
    for outsider in (charlie, dana):
        client.force_login(outsider)
        assert client.get(reverse("provisioning:request_amend", args=[failed.pk])).status_code == 404
        response = client.post(
            reverse("provisioning:request_amend", args=[failed.pk]), {"drop_member_0": "on", "reason": "x"}
        )
        assert response.status_code == 404
    assert ChangeRequest.objects.get(pk=failed.pk).status == Status.FAILED
