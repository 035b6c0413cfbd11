"""The request workflow's services: lifecycle, who may do what, and what submit refuses."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from accounts import personas
from provisioning.models import AllowedVmSize, AuditEvent, ChangeRequest, Workspace
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.workflow import services
from provisioning.workflow.services import RequestError, TransitionError
from tests import factories
from tests.factories import tutorial_spec, tutorial_workspace
from tests.provisioning.change_requests import Status, actions, approved, draft, problem_fields, submitted

pytestmark = pytest.mark.django_db


@pytest.fixture
def erin(db: None):  # type: ignore[no-untyped-def]
    """An admin who is also a team lead: may request, never approve her own request."""
    return factories.UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])


@pytest.fixture
def frank(db: None):  # type: ignore[no-untyped-def]
    """A second admin."""
    return factories.admin("frank")


# --- lifecycle -------------------------------------------------------------------------------------------


def test_create_saves_a_draft_and_audits_it(policy, alice):
    cr = draft(alice)
    cr.refresh_from_db()
    assert cr.status == Status.DRAFT
    assert cr.requester == alice
    assert cr.workspace is None
    assert cr.workspace_name == "bgmrbluegranite2devws"
    assert RequestSpec.from_json(cr.spec) == tutorial_spec()
    assert cr.plan is None
    event = AuditEvent.objects.get(request_id=cr.pk)
    assert (event.action, event.actor, event.object_type, event.object_id) == (
        "request.created",
        "alice",
        "change_request",
        str(cr.pk),
    )
    assert event.after == cr.spec


def test_a_draft_can_be_created_with_problems(policy, alice):
    """Drafts are work in progress: problems are refused at submit, not at save."""
    cr = draft(alice, tutorial_spec(team="bluegranite-too-long"))
    assert cr.status == Status.DRAFT


def test_edit_replaces_the_spec_and_records_before_and_after(policy, alice):
    cr = draft(alice)
    old = cr.spec
    new_spec = tutorial_spec(team="redgranit", data_lake=False)
    services.request_update(request_id=cr.pk, actor=alice, spec=new_spec)
    cr.refresh_from_db()
    assert RequestSpec.from_json(cr.spec) == new_spec
    assert cr.workspace_name == "bgmrredgranite2devws"
    event = AuditEvent.objects.filter(request_id=cr.pk).latest("id")
    assert event.action == "request.edited"
    assert event.before == old
    assert event.after == cr.spec


def test_submit_moves_to_submitted(policy, alice):
    cr = submitted(alice)
    cr.refresh_from_db()
    assert cr.status == Status.SUBMITTED
    assert cr.submitted_at is not None
    event = AuditEvent.objects.filter(request_id=cr.pk).latest("id")
    assert event.action == "request.submitted"
    assert (event.before["status"], event.after["status"]) == ("draft", "submitted")


def test_a_submitted_request_can_no_longer_be_edited(policy, alice):
    cr = submitted(alice)
    with pytest.raises(TransitionError):
        services.request_update(request_id=cr.pk, actor=alice, spec=tutorial_spec(team="other"))
    cr.refresh_from_db()
    assert RequestSpec.from_json(cr.spec) == tutorial_spec()
    assert actions(cr) == ["request.created", "request.submitted"]


def test_approve_records_the_decision_and_the_plan(policy, alice, bob):
    cr = approved(alice, bob)
    cr.refresh_from_db()
    assert cr.status == Status.APPROVED
    assert cr.approver == bob
    assert cr.decided_at is not None
    assert cr.plan is not None
    assert cr.workspace == Workspace.objects.get()
    assert actions(cr) == ["request.created", "request.submitted", "request.approved"]
    event = AuditEvent.objects.filter(request_id=cr.pk).latest("id")
    assert event.actor == "bob"


def test_reject_needs_a_reason_and_keeps_it(policy, alice, bob):
    cr = submitted(alice)
    with pytest.raises(RequestError) as exc:
        services.request_reject(request_id=cr.pk, approver=bob, reason="   ")
    assert problem_fields(exc) == ["reason"]
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.SUBMITTED

    services.request_reject(request_id=cr.pk, approver=bob, reason=" Use the shared research workspace. ")
    cr.refresh_from_db()
    assert cr.status == Status.REJECTED
    assert cr.reason == "Use the shared research workspace."
    assert cr.approver == bob
    assert cr.decided_at is not None
    assert not Workspace.objects.exists()
    event = AuditEvent.objects.filter(request_id=cr.pk).latest("id")
    assert (event.action, event.message) == ("request.rejected", "Use the shared research workspace.")


@pytest.mark.parametrize("submit_first", [False, True], ids=["draft", "submitted"])
def test_cancel_a_draft_or_a_submitted_request(policy, alice, submit_first: bool):
    cr = submitted(alice) if submit_first else draft(alice)
    services.request_cancel(request_id=cr.pk, actor=alice)
    cr.refresh_from_db()
    assert cr.status == Status.CANCELLED
    assert actions(cr)[-1] == "request.cancelled"
    with pytest.raises(TransitionError):
        services.request_submit(request_id=cr.pk, actor=alice)


def test_an_unknown_request_is_a_request_error(policy, alice, bob):
    with pytest.raises(RequestError, match="does not exist"):
        services.request_approve(request_id=999_999, approver=bob)


# --- permissions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["bob", "dana"])
def test_only_team_leads_create_requests(policy, bob, dana, who: str):
    user = {"bob": bob, "dana": dana}[who]
    with pytest.raises(PermissionDenied):
        draft(user)
    assert not ChangeRequest.objects.exists()
    assert not AuditEvent.objects.exists()


def test_only_the_requester_edits_submits_or_cancels(policy, alice, bob, charlie):
    cr = draft(alice)
    for user in (charlie, bob):
        with pytest.raises(PermissionDenied):
            services.request_update(request_id=cr.pk, actor=user, spec=tutorial_spec(team="hijack"))
        with pytest.raises(PermissionDenied):
            services.request_submit(request_id=cr.pk, actor=user)
        with pytest.raises(PermissionDenied):
            services.request_cancel(request_id=cr.pk, actor=user)
    cr.refresh_from_db()
    assert cr.status == Status.DRAFT
    assert RequestSpec.from_json(cr.spec) == tutorial_spec()
    assert actions(cr) == ["request.created"]


def test_only_admins_approve_or_reject(policy, alice, charlie, dana):
    cr = submitted(alice)
    for user in (alice, charlie, dana):
        with pytest.raises(PermissionDenied):
            services.request_approve(request_id=cr.pk, approver=user)
        with pytest.raises(PermissionDenied):
            services.request_reject(request_id=cr.pk, approver=user, reason="no")
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.SUBMITTED
    assert actions(cr) == ["request.created", "request.submitted"]


def test_an_admin_never_decides_her_own_request(policy, erin, frank):
    cr = submitted(erin)
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=cr.pk, approver=erin)
    with pytest.raises(PermissionDenied):
        services.request_reject(request_id=cr.pk, approver=erin, reason="changed my mind")
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.SUBMITTED
    assert not cr.can_approve(erin)
    services.request_approve(request_id=cr.pk, approver=frank)
    assert ChangeRequest.objects.get(pk=cr.pk).approver == frank


def test_changes_only_to_workspaces_you_manage(policy, alice, bob, charlie):
    workspace = approved(alice, bob).workspace
    spec = RequestSpec(clusters=(ClusterSpec(name="extra", vm_size="STANDARD_DS3_V2"),))
    with pytest.raises(PermissionDenied):
        services.request_create(
            requester=charlie, kind=ChangeRequest.Kind.ADD_CLUSTERS, spec=spec, workspace=workspace
        )
    with pytest.raises(PermissionDenied):
        services.request_create(requester=alice, kind=ChangeRequest.Kind.ADD_CLUSTERS, spec=spec)
    cr = services.request_create(
        requester=alice, kind=ChangeRequest.Kind.ADD_CLUSTERS, spec=spec, workspace=workspace
    )
    assert cr.workspace_name == "bgmrbluegranite2devws"


# --- submit refuses problems, field by field --------------------------------------------------------------


def _refused_at_submit(alice, spec: RequestSpec) -> list[str]:  # type: ignore[no-untyped-def]
    cr = draft(alice, spec)
    with pytest.raises(RequestError) as exc:
        services.request_submit(request_id=cr.pk, actor=alice)
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.DRAFT
    assert actions(cr) == ["request.created"]
    return problem_fields(exc)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"team": "bluegranite"}, "workspace.team"),
        ({"department": "bgmrx"}, "workspace.department"),
        ({"environment": "prod"}, "workspace.environment"),
        ({"region_abbv": "e"}, "workspace.region_abbv"),
        ({"custom_name": "c" * 20}, "workspace.custom_name"),
        ({"custom_name": "my-aml"}, "workspace.custom_name"),
        ({"region": "westus"}, "workspace.region"),
        ({"subscription_id": "00000000-0000-0000-0000-000000000000"}, "workspace.subscription_id"),
    ],
)
def test_submit_refuses_naming_and_policy_problems(policy, alice, overrides: dict[str, str], field: str):
    assert field in _refused_at_submit(alice, tutorial_spec(**overrides))


def test_submit_refuses_cluster_and_member_problems_with_their_index(policy, alice):
    spec = RequestSpec(
        workspace=tutorial_workspace(),
        clusters=(
            ClusterSpec(name="1-bad-name", vm_size="STANDARD_DS3_V2"),
            ClusterSpec(name="gpu", vm_size="STANDARD_NC24"),
            ClusterSpec(name="big", vm_size="STANDARD_DS3_V2", max_nodes=11),
            ClusterSpec(name="BIG", vm_size="STANDARD_DS3_V2", min_nodes=2, max_nodes=1),
        ),
        members=(
            MemberSpec(principal="not-an-email", persona="data_scientist"),
            MemberSpec(principal="user2@contoso.com", persona="owner"),
            MemberSpec(principal="User2@Contoso.com", persona="data_scientist"),
        ),
    )
    assert set(_refused_at_submit(alice, spec)) == {
        "clusters.0.name",
        "clusters.1.vm_size",
        "clusters.2.max_nodes",
        "clusters.3.name",
        "clusters.3.min_nodes",
        "members.0.principal",
        "members.1.persona",
        "members.2.principal",
    }


def test_names_of_a_portal_workspace_are_refused(policy, alice, bob, charlie):
    approved(alice, bob)
    cr = draft(charlie)
    with pytest.raises(RequestError) as exc:
        services.request_submit(request_id=cr.pk, actor=charlie)
    assert set(problem_fields(exc)) == {"workspace.team"}
    assert any("already used by workspace 'bgmrbluegranite2devws'" in p.message for p in exc.value.problems)


def test_names_of_another_pending_request_are_refused(policy, alice, charlie):
    first = submitted(alice)
    cr = draft(charlie, tutorial_spec(custom_name="bgmrbluegranite2dev"))
    with pytest.raises(RequestError) as exc:
        services.request_submit(request_id=cr.pk, actor=charlie)
    assert problem_fields(exc) == ["workspace.custom_name"]
    assert f"already requested by request #{first.pk}" in exc.value.problems[0].message

    # Once the first is withdrawn the names are free again; drafts never hold names.
    services.request_cancel(request_id=first.pk, actor=alice)
    draft(alice)
    services.request_submit(request_id=cr.pk, actor=charlie)
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.SUBMITTED


def test_approval_checks_the_request_again(policy, alice, bob):
    """Policy may change between submit and approval: the admin approves what is allowed now."""
    cr = submitted(alice)
    AllowedVmSize.objects.filter(name="STANDARD_NV6").update(is_active=False)
    with pytest.raises(RequestError) as exc:
        services.request_approve(request_id=cr.pk, approver=bob)
    assert problem_fields(exc) == ["clusters.2.vm_size"]
    cr.refresh_from_db()
    assert (cr.status, cr.plan) == (Status.SUBMITTED, None)
    assert not Workspace.objects.exists()
