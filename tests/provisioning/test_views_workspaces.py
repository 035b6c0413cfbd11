"""The team lead's pages, through the web client: workspaces, and requesting changes to them."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest, Membership, ResourceState
from provisioning.spec import RequestSpec
from provisioning.workflow import services
from tests.factories import ChangeRequestFactory
from tests.provisioning.pages import (
    BLANK_CLUSTER,
    BLANK_MEMBER,
    TUTORIAL_CLUSTER_ROWS,
    Kind,
    Status,
    assert_accessible,
    field_error,
    messages_of,
    rows,
)

pytestmark = pytest.mark.django_db


# --- Workspaces and changes to them ----------------------------------------------------------------


def test_workspaces_list_and_detail(client, workspace, alice):
    client.force_login(alice)

    listing = client.get(reverse("provisioning:workspace_list"))
    detail = client.get(reverse("provisioning:workspace_detail", args=[workspace.pk]))

    assert [row["workspace"] for row in listing.context["rows"]] == [workspace]
    assert listing.context["rows"][0]["workspace"].cluster_count == 3
    assert detail.status_code == 200
    assert detail.context["can_change"]
    page = detail.content.decode()
    for text in (
        "nv6-gpucluster",
        "user2@contoso.com",
        "datasciencegroup",
        "Request clusters",
        "Add members",
        "Submit revocation for approval",
    ):
        assert text in page
    assert_accessible(page)


def test_outsiders_cannot_see_or_change_a_workspace(client, workspace, charlie, dana):
    client.force_login(charlie)
    assert client.get(reverse("provisioning:workspace_detail", args=[workspace.pk])).status_code == 404
    assert client.get(reverse("provisioning:add_clusters", args=[workspace.pk])).status_code == 404
    assert client.post(reverse("provisioning:add_members", args=[workspace.pk]), {}).status_code == 404
    assert client.post(reverse("provisioning:revoke_members", args=[workspace.pk]), {}).status_code == 404
    assert client.get(reverse("provisioning:workspace_list")).context["rows"] == []

    client.force_login(dana)
    assert client.get(reverse("provisioning:add_clusters", args=[workspace.pk])).status_code == 403
    assert ChangeRequest.objects.count() == 1


def test_alice_requests_a_cluster_as_a_draft(client, workspace, alice):
    client.force_login(alice)
    new = {**BLANK_CLUSTER, "name": "gpu-big", "vm_size": "STANDARD_NV6", "max_nodes": "4"}

    page = client.get(reverse("provisioning:add_clusters", args=[workspace.pk]))
    response = client.post(
        reverse("provisioning:add_clusters", args=[workspace.pk]),
        {"action": "draft", **rows("clusters", [new], BLANK_CLUSTER)},
    )

    assert page.status_code == 200 and page.context["nav"] == "workspaces"
    assert_accessible(page.content.decode())
    cr = ChangeRequest.objects.get(kind=Kind.ADD_CLUSTERS)
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert (cr.status, cr.workspace, cr.workspace_name) == (Status.DRAFT, workspace, "bgmrbluegranite2devws")
    assert [c.name for c in RequestSpec.from_json(cr.spec).clusters] == ["gpu-big"]


def test_a_cancelled_cluster_request_is_copied_for_the_same_workspace(client, workspace, alice):
    client.force_login(alice)
    new = {**BLANK_CLUSTER, "name": "gpu-big", "vm_size": "STANDARD_NV6", "max_nodes": "4"}
    client.post(
        reverse("provisioning:add_clusters", args=[workspace.pk]),
        {"action": "draft", **rows("clusters", [new], BLANK_CLUSTER)},
    )
    first = ChangeRequest.objects.get(kind=Kind.ADD_CLUSTERS)
    services.request_cancel(request_id=first.pk, actor=alice)

    response = client.post(reverse("provisioning:request_copy", args=[first.pk]), follow=True)

    copy = ChangeRequest.objects.filter(kind=Kind.ADD_CLUSTERS).exclude(pk=first.pk).get()
    assert (copy.status, copy.workspace, copy.spec) == (Status.DRAFT, workspace, first.spec)
    assert 'value="gpu-big"' in response.content.decode()


def test_a_cluster_name_already_in_the_workspace_is_reported(client, workspace, alice):
    client.force_login(alice)
    again = {**TUTORIAL_CLUSTER_ROWS[0]}

    response = client.post(
        reverse("provisioning:add_clusters", args=[workspace.pk]),
        {"action": "submit", **rows("clusters", [again], BLANK_CLUSTER)},
        follow=True,
    )

    cr = ChangeRequest.objects.get(kind=Kind.ADD_CLUSTERS)
    assert cr.status == Status.DRAFT
    assert "already has a cluster named" in field_error(response.content.decode(), "id_clusters-0-name")


def test_alice_adds_a_member_and_submits(client, workspace, alice):
    client.force_login(alice)
    member = {"principal": "user4@contoso.com", "persona": "data_scientist"}

    response = client.post(
        reverse("provisioning:add_members", args=[workspace.pk]),
        {"action": "submit", **rows("members", [member], BLANK_MEMBER)},
    )

    cr = ChangeRequest.objects.get(kind=Kind.GRANT_ACCESS)
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert cr.status == Status.SUBMITTED
    assert [m.principal for m in RequestSpec.from_json(cr.spec).members] == ["user4@contoso.com"]


def test_alice_revokes_a_member_and_submits(client, workspace, alice):
    user3 = Membership.objects.get(principal_name="user3@contoso.com")
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:revoke_members", args=[workspace.pk]),
        {"action": "submit", "memberships": [str(user3.pk)]},
    )

    cr = ChangeRequest.objects.get(kind=Kind.REVOKE_ACCESS)
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert cr.status == Status.SUBMITTED
    assert RequestSpec.from_json(cr.spec).revoke == (user3.pk,)
    page = client.get(response.url).content.decode()
    assert "Role assignments removed (8)" in page  # every scope of the workspace, data lake included
    assert_accessible(page)
    assert_accessible(
        client.get(reverse("provisioning:revoke_members", args=[workspace.pk])).content.decode()
    )


def test_revoking_nobody_is_explained(client, workspace, alice):
    client.force_login(alice)

    response = client.post(reverse("provisioning:revoke_members", args=[workspace.pk]), {"action": "submit"})

    assert response.status_code == 200
    assert "Choose at least one member to revoke" in response.content.decode()
    assert not ChangeRequest.objects.filter(kind=Kind.REVOKE_ACCESS).exists()


def test_only_active_members_can_be_revoked(client, workspace, alice):
    pending = Membership.objects.get(principal_name="user3@contoso.com")
    Membership.objects.filter(pk=pending.pk).update(state=ResourceState.PENDING)
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:revoke_members", args=[workspace.pk]),
        {"action": "submit", "memberships": [str(pending.pk)]},
    )

    assert response.status_code == 200
    assert not ChangeRequest.objects.filter(kind=Kind.REVOKE_ACCESS).exists()


def test_submitting_twice_explains_instead_of_failing(client, policy, alice):
    submitted = ChangeRequestFactory(requester=alice, submitted=True)
    client.force_login(alice)

    response = client.post(reverse("provisioning:request_submit", args=[submitted.pk]))

    assert response.url == reverse("provisioning:request_detail", args=[submitted.pk])
    assert any(m.startswith(f"Could not submit request #{submitted.pk}") for m in messages_of(response))
    assert AuditEvent.objects.filter(request_id=submitted.pk, action="request.submitted").count() == 1
