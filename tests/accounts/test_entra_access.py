"""Memberships named by UPN find their person through the Entra object id, before and after first sign-in."""

from __future__ import annotations

import dataclasses

import pytest

from accounts.models import User
from provisioning.models import Membership, Workspace
from provisioning.spec import MemberSpec
from tests.accounts.conftest import QUERY_MODE_WARNING, sign_in
from tests.factories import ChangeRequestFactory, tutorial_spec

pytestmark = [pytest.mark.django_db, QUERY_MODE_WARNING]

OTHER_OID = "6a1f7c2e-0b9d-4e8f-a3c5-2d4b6e8f0a1c"


@pytest.fixture
def workspace(policy, alice, bob, people) -> Workspace:  # type: ignore[no-untyped-def]
    """The tutorial's workspace, approved with the Entra scientist (by UPN, not yet signed in) as a member."""
    spec = tutorial_spec()
    spec = dataclasses.replace(
        spec, members=(*spec.members, MemberSpec(people["scientist"].upn.upper(), "data_scientist"))
    )
    return ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True).workspace


def test_a_member_added_by_upn_before_the_first_sign_in_sees_the_workspace(client, people, workspace):
    scientist = people["scientist"]

    sign_in(client, scientist.upn)

    membership = Membership.objects.get(principal_name=scientist.upn)
    assert membership.object_id == scientist.object_id
    page = client.get("/access/")
    assert page.status_code == 200 and workspace.workspace_name in page.content.decode()


def test_the_membership_still_matches_after_the_upn_changes(client, people, workspace, entra_mode):
    scientist = people["scientist"]
    sign_in(client, scientist.upn)
    with entra_mode.state.lock:
        renamed = entra_mode.state.principals[scientist.object_id]
        renamed.upn = renamed.mail = "scientist.renamed@contoso.com"

    sign_in(client, "scientist.renamed@contoso.com")

    user = User.objects.get(entra_object_id=scientist.object_id)
    assert user.upn == "scientist.renamed@contoso.com"
    assert workspace.workspace_name in client.get("/access/").content.decode()


def test_only_unresolved_memberships_naming_the_user_are_linked(client, people, workspace):
    scientist = people["scientist"]
    Membership.objects.filter(principal_name=scientist.upn).update(object_id=OTHER_OID)

    sign_in(client, scientist.upn)

    assert Membership.objects.get(principal_name=scientist.upn).object_id == OTHER_OID
    assert not Membership.objects.filter(object_id=scientist.object_id).exists()
