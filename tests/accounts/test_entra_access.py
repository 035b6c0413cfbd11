"""Memberships named by UPN find their person through the Entra object id, before and after first sign-in."""

from __future__ import annotations

import dataclasses

import pytest

from accounts.models import User
from provisioning.models import AuditEvent, Membership, Workspace
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


def test_a_sign_in_named_like_a_bound_membership_gets_no_access_and_is_audited(client, people, workspace):
    # The membership is bound to another person's object id; the scientist's UPN (and email) name it.
    scientist = people["scientist"]
    Membership.objects.filter(principal_name=scientist.upn).update(object_id=OTHER_OID)

    sign_in(client, scientist.upn)

    assert workspace.workspace_name not in client.get("/access/").content.decode()
    assert client.get(f"/workspaces/{workspace.pk}/").status_code == 404
    refused = AuditEvent.objects.get(action="membership.binding_refused")
    assert refused.after["object_id"] == scientist.object_id
    assert [m["name"] for m in refused.after["memberships"]] == [scientist.upn]


def test_the_email_claim_binds_nothing(client, entra_mode, workspace):
    # Somebody whose mail attribute (the email claim) is the address a membership was requested for.
    Membership.objects.create(
        workspace=workspace, principal_name="victim@contoso.com", persona="team_lead", state="active"
    )
    entra_mode.add_user("mallory@contoso.com", mail="victim@contoso.com", roles=["Portal.DataScientist"])

    sign_in(client, "mallory@contoso.com")

    assert Membership.objects.get(principal_name="victim@contoso.com").object_id == ""
    assert workspace.workspace_name not in client.get("/access/").content.decode()


def test_a_guest_binds_nothing_by_its_address(client, entra_mode, workspace):
    # A guest invited as partner@fabrikam.com signs in with that address as preferred_username and email.
    Membership.objects.create(
        workspace=workspace, principal_name="partner@fabrikam.com", persona="data_scientist", state="active"
    )
    oid = entra_mode.add_user("partner@fabrikam.com", roles=["Portal.DataScientist"], guest=True)
    with entra_mode.state.lock:
        guest_upn = entra_mode.state.principals[oid].upn

    sign_in(client, guest_upn)

    user = User.objects.get(entra_object_id=oid)
    assert user.entra_guest and user.upn == "partner@fabrikam.com"
    assert Membership.objects.get(principal_name="partner@fabrikam.com").object_id == ""
    assert workspace.workspace_name not in client.get("/access/").content.decode()
