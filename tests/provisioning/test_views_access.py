"""A data scientist's "My access" page and the config.json download."""

from __future__ import annotations

import dataclasses
import json

import pytest
from django.urls import reverse

from provisioning.models import Membership, ResourceState, Workspace
from provisioning.spec import MemberSpec
from tests.factories import TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, data_scientist, tutorial_spec

pytestmark = pytest.mark.django_db


@pytest.fixture
def workspace(policy, alice, bob, dana) -> Workspace:
    """The tutorial's workspace, approved with dana@contoso.com as a data scientist (not provisioned yet)."""
    spec = tutorial_spec()
    spec = dataclasses.replace(
        spec, members=(*spec.members, MemberSpec("dana@contoso.com", "data_scientist"))
    )
    return ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True).workspace


def test_my_access_lists_the_workspace_and_how_to_connect(client, workspace, dana):
    client.force_login(dana)

    response = client.get(reverse("provisioning:my_access"))

    assert response.status_code == 200
    assert response.context["nav"] == "access"
    (card,) = response.context["cards"]
    assert card.membership.persona == "data_scientist"
    assert card.membership.state == ResourceState.PENDING
    assert [c.name for c in card.clusters] == ["ds13-v2-2ndclust", "ds3-v2-cluster", "nv6-gpucluster"]
    page = response.content.decode()
    assert "bgmrbluegranite2devws" in page
    assert "Data Scientist" in page
    assert "Pending provisioning" in page
    assert "STANDARD_D13_V2" in page and "Dedicated" in page and "120 s" in page
    assert f"export SUBSCRIPTION_ID=&quot;{TUTORIAL_SUBSCRIPTION}&quot;" in page
    assert "export WORKSPACE_NAME=&quot;bgmrbluegranite2devws&quot;" in page
    for name in (
        workspace.storage_work,
        workspace.storage_data,
        workspace.data_lake_name,
        workspace.key_vault,
    ):
        assert name in page
    assert (
        f"https://ml.azure.com/?wsid=/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourcegroups/"
        f"{workspace.resource_group}/providers/Microsoft.MachineLearningServices/workspaces/bgmrbluegranite2devws"
    ) in page
    assert reverse("provisioning:config_json", args=[workspace.pk]) in page


def test_my_access_empty_state(client, workspace):
    client.force_login(data_scientist("erin"))

    response = client.get(reverse("provisioning:my_access"))

    assert response.status_code == 200
    assert response.context["cards"] == []
    assert "You don't have access to any workspace yet — ask your team lead" in response.content.decode()


def test_revoked_access_is_not_listed(client, workspace, dana):
    Membership.objects.filter(principal_name="dana@contoso.com").update(state=ResourceState.REVOKED)
    client.force_login(dana)

    assert client.get(reverse("provisioning:my_access")).context["cards"] == []
    assert client.get(reverse("provisioning:config_json", args=[workspace.pk])).status_code == 404


def test_config_json_downloads_the_sdk_config(client, workspace, dana):
    client.force_login(dana)

    response = client.get(reverse("provisioning:config_json", args=[workspace.pk]))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="config.json"'
    assert json.loads(response.content) == {
        "subscription_id": TUTORIAL_SUBSCRIPTION,
        "resource_group": workspace.resource_group,
        "workspace_name": "bgmrbluegranite2devws",
    }
    assert response.content.decode().startswith('{\n  "subscription_id"')


@pytest.mark.parametrize("who,status", [("alice", 200), ("bob", 200), ("charlie", 404), ("erin", 404)])
def test_config_json_only_for_those_who_may_see_the_workspace(
    client, workspace, alice, bob, charlie, who, status
):
    users = {"alice": alice, "bob": bob, "charlie": charlie, "erin": data_scientist("erin")}
    client.force_login(users[who])

    assert client.get(reverse("provisioning:config_json", args=[workspace.pk])).status_code == status


def test_config_json_is_get_only_and_needs_sign_in(client, workspace, dana):
    url = reverse("provisioning:config_json", args=[workspace.pk])
    assert client.get(url).status_code == 302
    client.force_login(dana)
    assert client.post(url).status_code == 405


def test_a_data_scientist_reads_what_her_role_allows_and_forbids_and_whom_to_ask(client, workspace, dana):
    Membership.objects.filter(workspace=workspace, persona="team_lead").update(state=ResourceState.ACTIVE)
    client.force_login(dana)

    page = client.get(reverse("provisioning:my_access")).content.decode()

    for can in (
        "You can submit jobs on the workspace&#x27;s clusters",
        "You can read the workspace&#x27;s datastores",
        "You can read and write files in the team&#x27;s storage accounts",
        "You can pull images from the container registry",
    ):
        assert can in page
    for cannot in (
        "You cannot create or change clusters",
        "You cannot delete clusters",
        "You cannot request quota",
        "You cannot give anyone access",
    ):
        assert cannot in page
    assert "Ask a team lead of this workspace" in page
    assert "admin1@contoso.com" in page and "user1@contoso.com" in page
    assert "Your access has no end date" in page  # pending: it gets one when provisioning succeeds


def test_a_team_lead_reads_that_she_manages_clusters_but_not_quota(client, workspace, alice):
    lead = data_scientist("lead9")
    Membership.objects.create(
        workspace=workspace, principal_name=lead.upn, persona="team_lead", state=ResourceState.ACTIVE
    )
    client.force_login(lead)

    page = client.get(reverse("provisioning:my_access")).content.decode()

    assert "You can create and change clusters" in page
    assert "You cannot request quota" in page
    assert "You can push and pull images in the container registry" in page
    assert reverse("provisioning:workspace_detail", args=[workspace.pk]) in page
