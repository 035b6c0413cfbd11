"""Reads scoped to what each person may see: alice (team lead, owner), bob (admin), charlie (another team's
lead), dana (data scientist) and anonymous visitors.

``test_access_matrix`` checks the pages built on these; here each selector's rule is checked on its rows.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import transaction
from django.utils import timezone

from accounts import personas
from provisioning.audit import audit_record
from provisioning.models import ChangeRequest, ResourceState
from provisioning.workflow import selectors
from tests import factories
from tests.factories import (
    ChangeRequestFactory,
    ClusterFactory,
    MembershipFactory,
    WorkspaceFactory,
    tutorial_spec,
)

pytestmark = pytest.mark.django_db

ANONYMOUS = AnonymousUser()


def pks(queryset) -> set[int]:  # type: ignore[no-untyped-def]
    return set(queryset.values_list("pk", flat=True))


# --- memberships and workspaces -------------------------------------------------------------------------------


def test_a_membership_names_the_user_by_upn_or_email_ignoring_case(dana) -> None:  # type: ignore[no-untyped-def]
    dana.upn, dana.email = "dana@contoso.com", "dana.s@contoso.com"
    by_upn = MembershipFactory(principal_name="DANA@contoso.com")
    by_email = MembershipFactory(principal_name="dana.s@CONTOSO.com")
    MembershipFactory(principal_name="dana@contoso.com", state=ResourceState.REVOKED)
    MembershipFactory(principal_name="dana@contoso.com", principal_type="group")  # a group of that name
    MembershipFactory(principal_name="charlie@contoso.com")

    assert pks(selectors.memberships_of(dana)) == {by_upn.pk, by_email.pk}
    assert list(selectors.memberships_of(ANONYMOUS)) == []


def test_once_resolved_a_membership_follows_the_user_across_a_upn_change(dana) -> None:  # type: ignore[no-untyped-def]
    dana.entra_object_id = "7d1c0a52-3c1e-4e55-9c0e-5a1d2b3c4d5e"
    renamed = MembershipFactory(principal_name="dana.old@contoso.com", object_id=dana.entra_object_id)

    assert pks(selectors.memberships_of(dana)) == {renamed.pk}


def test_memberships_are_listed_by_workspace_name(dana) -> None:  # type: ignore[no-untyped-def]
    later = MembershipFactory(principal_name="dana@contoso.com", workspace=WorkspaceFactory(team="zulu"))
    sooner = MembershipFactory(principal_name="dana@contoso.com", workspace=WorkspaceFactory(team="alpha"))

    assert list(selectors.memberships_of(dana)) == [sooner, later]


def test_a_team_lead_manages_what_they_own_or_actively_lead(alice, charlie) -> None:  # type: ignore[no-untyped-def]
    owned = WorkspaceFactory(owner=alice)
    led = MembershipFactory(principal_name="alice@contoso.com", persona="team_lead").workspace
    MembershipFactory(principal_name="alice@contoso.com", persona="data_scientist")  # a member, not a lead
    MembershipFactory(principal_name="alice@contoso.com", persona="team_lead", state=ResourceState.PENDING)
    WorkspaceFactory(owner=charlie)

    assert pks(selectors.workspaces_managed_by(alice)) == {owned.pk, led.pk}


def test_admins_manage_every_workspace_and_others_none(bob, dana) -> None:  # type: ignore[no-untyped-def]
    workspaces = {WorkspaceFactory().pk, WorkspaceFactory().pk}
    owned_by_dana = WorkspaceFactory(owner=dana)  # ownership alone does not make a data scientist a lead

    assert pks(selectors.workspaces_managed_by(bob)) == workspaces | {owned_by_dana.pk}
    assert list(selectors.workspaces_managed_by(dana)) == []
    assert list(selectors.workspaces_managed_by(ANONYMOUS)) == []


def test_members_see_their_workspaces_managers_theirs_and_admins_all(alice, bob, charlie, dana) -> None:  # type: ignore[no-untyped-def]
    alices = WorkspaceFactory(owner=alice)
    charlies = WorkspaceFactory(owner=charlie)
    MembershipFactory(workspace=charlies, principal_name="dana@contoso.com", state=ResourceState.PENDING)
    MembershipFactory(workspace=alices, principal_name="dana@contoso.com", state=ResourceState.REVOKED)

    assert pks(selectors.workspaces_visible_to(alice)) == {alices.pk}
    assert pks(selectors.workspaces_visible_to(charlie)) == {charlies.pk}
    assert pks(selectors.workspaces_visible_to(dana)) == {charlies.pk}  # pending already shows; revoked not
    assert pks(selectors.workspaces_visible_to(bob)) == {alices.pk, charlies.pk}
    assert list(selectors.workspaces_visible_to(ANONYMOUS)) == []


def test_a_workspaces_removed_clusters_are_left_out() -> None:
    workspace = WorkspaceFactory()
    kept = ClusterFactory(workspace=workspace)
    ClusterFactory(workspace=workspace, state=ResourceState.REVOKED)
    ClusterFactory()

    assert list(selectors.clusters_of(workspace)) == [kept]


# --- requests ----------------------------------------------------------------------------------------------


@pytest.fixture
def requests(alice, bob, charlie):  # type: ignore[no-untyped-def]
    """alice's draft and her approved workspace, charlie's draft and his submitted change to alice's workspace."""
    approved = ChangeRequestFactory(requester=alice, approver=bob, succeeded=True)
    alices_draft = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="draft"))
    charlies_draft = ChangeRequestFactory(requester=charlie, spec=tutorial_spec(team="other"))
    # charlie leads alice's workspace too: he may ask to change it
    MembershipFactory(workspace=approved.workspace, principal_name="charlie@contoso.com", persona="team_lead")
    charlies_change = ChangeRequestFactory(requester=charlie, workspace=approved.workspace, submitted=True)
    return {
        "approved": approved.pk,
        "alices_draft": alices_draft.pk,
        "charlies_draft": charlies_draft.pk,
        "charlies_change": charlies_change.pk,
    }


def test_team_leads_see_their_own_and_the_non_drafts_of_workspaces_they_manage(
    requests, alice, charlie
) -> None:  # type: ignore[no-untyped-def]
    assert pks(selectors.requests_visible_to(alice)) == {
        requests["approved"],
        requests["alices_draft"],
        requests["charlies_change"],
    }
    assert pks(selectors.requests_visible_to(charlie)) == {
        requests["approved"],
        requests["charlies_draft"],
        requests["charlies_change"],
    }
    assert pks(selectors.requests_of(alice)) == {requests["approved"], requests["alices_draft"]}


def test_admins_see_every_request_but_others_drafts(requests, bob) -> None:  # type: ignore[no-untyped-def]
    own_draft = ChangeRequestFactory(
        requester=factories.UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD]),
        spec=tutorial_spec(team="erins"),
    )

    assert pks(selectors.requests_visible_to(bob)) == {requests["approved"], requests["charlies_change"]}
    assert own_draft.pk in pks(selectors.requests_visible_to(own_draft.requester))


def test_data_scientists_and_visitors_see_no_requests(requests, dana) -> None:  # type: ignore[no-untyped-def]
    MembershipFactory(
        workspace=ChangeRequest.objects.get(pk=requests["approved"]).workspace,
        principal_name="dana@contoso.com",
    )

    assert list(selectors.requests_visible_to(dana)) == []
    assert list(selectors.requests_visible_to(ANONYMOUS)) == []


def test_the_approval_queue_is_submitted_requests_of_others_oldest_first(alice, bob, charlie) -> None:  # type: ignore[no-untyped-def]
    erin = factories.UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    newer = ChangeRequestFactory(requester=alice, submitted=True)
    older = ChangeRequestFactory(requester=charlie, spec=tutorial_spec(team="older"), submitted=True)
    ChangeRequest.objects.filter(pk=older.pk).update(submitted_at=timezone.now() - timedelta(days=1))
    erins = ChangeRequestFactory(requester=erin, spec=tutorial_spec(team="erins"), submitted=True)
    ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="drafted"))
    ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="rejected"), approver=bob, rejected=True)

    assert list(selectors.approval_queue(bob)) == [older, newer, erins]
    assert list(selectors.approval_queue(erin)) == [older, newer]  # never one's own
    assert list(selectors.approval_queue(alice)) == []


def test_the_audit_trail_is_for_admins_only(alice, bob, dana) -> None:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        audit_record(actor="system", action="test.note", object_type="note", object_id=1)

    assert selectors.audit_events_visible_to(bob).count() == 1
    assert list(selectors.audit_events_visible_to(alice)) == []
    assert list(selectors.audit_events_visible_to(dana)) == []
    assert list(selectors.audit_events_visible_to(ANONYMOUS)) == []
