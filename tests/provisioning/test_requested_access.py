"""Access as a request asks it: the requesting team lead joins the new workspace (unless the request says otherwise),
and each member may ask fewer days than the policy gives, shown on the request."""

from __future__ import annotations

import pytest
from django.urls import reverse

from provisioning.models import ChangeRequest, Membership
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import services
from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory, WorkspaceFactory, tutorial_spec
from tests.provisioning.pages import tutorial_post

pytestmark = pytest.mark.django_db

NEW = ChangeRequest.Kind.NEW_WORKSPACE


def _members(cr: ChangeRequest) -> list[tuple[str, str]]:
    return [(m.principal, m.persona) for m in RequestSpec.from_json(cr.spec).members]


def test_the_requesting_lead_is_the_first_member_of_the_new_workspace(policy, alice, bob) -> None:
    cr = services.request_create(requester=alice, kind=NEW, spec=tutorial_spec())

    assert _members(cr)[0] == (alice.upn, "team_lead")
    assert _members(cr)[1:] == [(m.principal, m.persona) for m in TUTORIAL_MEMBERS]
    services.request_submit(request_id=cr.pk, actor=alice)
    services.request_approve(request_id=cr.pk, approver=bob)
    joined = Membership.objects.get(change_request=cr, principal_name__iexact=alice.upn)
    assert joined.persona == "team_lead"


def test_a_request_that_names_the_lead_or_says_otherwise_is_kept_as_it_is(policy, alice) -> None:
    named = RequestSpec(
        workspace=tutorial_spec().workspace,
        members=(MemberSpec(alice.upn.upper(), "data_scientist"),),
    )

    as_named = services.request_create(requester=alice, kind=NEW, spec=named)
    without = services.request_create(
        requester=alice, kind=NEW, spec=tutorial_spec(team="other"), lead_joins=False
    )

    assert _members(as_named) == [(alice.upn.upper(), "data_scientist")]
    assert alice.upn not in [p for p, _ in _members(without)]


def test_only_a_new_workspace_gains_its_lead(policy, alice) -> None:
    ws = WorkspaceFactory(owner=alice)
    access = RequestSpec(members=(MemberSpec("user9@contoso.com", "data_scientist"),))

    cr = services.request_create(
        requester=alice, kind=ChangeRequest.Kind.GRANT_ACCESS, spec=access, workspace=ws
    )

    assert _members(cr) == [("user9@contoso.com", "data_scientist")]


def test_a_copy_keeps_the_members_the_original_was_decided_with(policy, alice) -> None:
    rejected = ChangeRequestFactory(requester=alice, spec=tutorial_spec(), rejected=True)

    copy = services.request_copy(request_id=rejected.pk, actor=alice)

    assert _members(copy) == _members(rejected)


def test_the_form_offers_joining_ticked_and_keeps_the_choice(client, policy, alice) -> None:
    client.force_login(alice)
    url = reverse("provisioning:new_workspace")

    shown = client.get(url).content.decode()
    assert 'name="lead_joins" value="1" id="id_lead_joins" checked' in shown
    assert "Make me a member, as a team lead" in shown

    client.post(url, {**tutorial_post(), "lead_joins": "1"})
    client.post(url, tutorial_post(team="other"))  # unticked: a browser sends nothing
    joined, left_out = ChangeRequest.objects.order_by("pk")
    assert _members(joined)[0] == (alice.upn, "team_lead")
    assert alice.upn not in [p for p, _ in _members(left_out)]

    reshown = client.post(url, tutorial_post(team="")).content.decode()  # an error: the form comes back
    assert 'id="id_lead_joins" checked' not in reshown


# --- how long access lasts, asked on the form and shown on the request ---------------------------------


def test_a_member_row_asks_fewer_days_and_the_request_says_how_long_access_lasts(
    client, policy, alice
) -> None:
    client.force_login(alice)
    post = {**tutorial_post(), "members-1-days": "30"}

    client.post(reverse("provisioning:new_workspace"), post)

    cr = ChangeRequest.objects.get()
    asked = RequestSpec.from_json(cr.spec).members
    assert [m.days for m in asked] == [None, 30, None, None]
    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()
    assert "Access lasts" in page
    assert "Team leads: 365 days (the dev default)" in page
    assert "Data scientists: 180 days (the dev default)" in page
    assert f"{asked[1].principal}: 30 days (asked)" in page
    edit = client.get(reverse("provisioning:request_edit", args=[cr.pk])).content.decode()
    assert 'name="members-1-days" value="30"' in edit


def test_more_days_than_the_policy_gives_is_shown_on_the_row(client, policy, alice) -> None:
    client.force_login(alice)
    post = {**tutorial_post("submit"), "members-2-days": "400"}

    client.post(reverse("provisioning:new_workspace"), post)

    cr = ChangeRequest.objects.get()
    assert cr.status == ChangeRequest.Status.DRAFT  # kept as a draft to fix
    edit = client.get(reverse("provisioning:request_edit", args=[cr.pk])).content.decode()
    assert "at most 180 days for a data scientist in dev" in edit
    assert 'id="id_members-2-days_error"' in edit
