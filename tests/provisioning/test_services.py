"""The request workflow's services: lifecycle, who may do what, what submit refuses, what approval makes."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts import personas
from provisioning.audit import audit_verify_chain
from provisioning.models import (
    AllowedVmSize,
    AuditEvent,
    ChangeRequest,
    Cluster,
    Membership,
    ResourceState,
    Workspace,
)
from provisioning.queue import provisioning_job_id
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.workflow import services
from provisioning.workflow.services import RequestError, TransitionError
from tests import factories
from tests.factories import (
    TUTORIAL_CLUSTERS,
    TUTORIAL_MEMBERS,
    ChangeRequestFactory,
    tutorial_spec,
    tutorial_workspace,
)

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status
NEW = ChangeRequest.Kind.NEW_WORKSPACE

# DESIGN section 5, written out again here so the plan is checked against the design, not against itself.
ROLES = {
    "team_lead": {
        "resource_group": "Reader",
        "workspace": "Team Lead",
        "storage_account": "Storage Blob Data Contributor",
        "key_vault": "Key Vault Secrets Officer",
        "registry": "AcrPush",
        "app_insights": "Reader",
    },
    "data_scientist": {
        "resource_group": "Reader",
        "workspace": "Data Scientist",
        "storage_account": "Storage Blob Data Contributor",
        "key_vault": "Key Vault Secrets User",
        "registry": "AcrPull",
        "app_insights": "Reader",
    },
}
TUTORIAL_SCOPES = {
    ("resource_group", "bgmr-bluegranit-eastus2-dev"),
    ("workspace", "bgmrbluegranite2devws"),
    ("storage_account", "bgmrbluegranite2devwork"),
    ("storage_account", "bgmrbluegranite2devdata"),
    ("storage_account", "bgmrbluegranite2devbig"),
    ("key_vault", "bgmrbluegranite2devkv"),
    ("registry", "bgmrbluegranite2devcr"),
    ("app_insights", "bgmrbluegranite2devai"),
}


def provisioning_jobs(queue):
    """Provisioning jobs only (submitting also queues a name check)."""
    return [job_id for job_id in queue.job_ids if job_id.startswith("provision-")]


def actions(cr: ChangeRequest) -> list[str]:
    return list(AuditEvent.objects.filter(request_id=cr.pk).order_by("id").values_list("action", flat=True))


def problem_fields(exc: pytest.ExceptionInfo[RequestError]) -> list[str]:
    return [p.field for p in exc.value.problems]


def draft(user, spec: RequestSpec | None = None) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=user, kind=NEW, spec=spec or tutorial_spec())


def submitted(user, spec: RequestSpec | None = None) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=user, spec=spec or tutorial_spec(), submitted=True)


def approved(user, approver, spec: RequestSpec | None = None) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(
        requester=user, approver=approver, spec=spec or tutorial_spec(), approved=True
    )


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


# --- what approval creates ---------------------------------------------------------------------------------


def test_approval_creates_the_desired_state(policy, alice, bob):
    cr = approved(alice, bob)
    ws = Workspace.objects.get()
    assert (
        ws.resource_group,
        ws.workspace_name,
        ws.storage_work,
        ws.storage_data,
        ws.data_lake_name,
        ws.key_vault,
        ws.registry,
        ws.app_insights,
    ) == (
        "bgmr-bluegranit-eastus2-dev",
        "bgmrbluegranite2devws",
        "bgmrbluegranite2devwork",
        "bgmrbluegranite2devdata",
        "bgmrbluegranite2devbig",
        "bgmrbluegranite2devkv",
        "bgmrbluegranite2devcr",
        "bgmrbluegranite2devai",
    )
    assert (ws.owner, ws.state, ws.subscription_id, ws.region) == (
        alice,
        ResourceState.PENDING,
        factories.TUTORIAL_SUBSCRIPTION,
        "eastus2",
    )

    clusters = {c.name: c for c in Cluster.objects.filter(workspace=ws, change_request=cr)}
    assert set(clusters) == {c.name for c in TUTORIAL_CLUSTERS}
    for spec in TUTORIAL_CLUSTERS:
        c = clusters[spec.name]
        assert (c.vm_size, c.priority, c.min_nodes, c.max_nodes, c.idle_seconds) == (
            spec.vm_size,
            spec.priority,
            0,
            spec.max_nodes,
            120,
        )

    members = {
        (m.principal_name, m.principal_type, m.persona)
        for m in Membership.objects.filter(workspace=ws, change_request=cr)
    }
    assert members == {
        ("admin1@contoso.com", "user", "team_lead"),
        ("user1@contoso.com", "user", "team_lead"),
        ("user2@contoso.com", "user", "data_scientist"),
        ("user3@contoso.com", "user", "data_scientist"),
        ("datasciencegroup", "group", "data_scientist"),
    }
    assert set(Membership.objects.values_list("state", flat=True)) == {ResourceState.PENDING}


def test_plan_grants_every_member_the_design_roles_on_every_scope(policy, alice, bob):
    plan = approved(alice, bob).plan
    by_principal: dict[str, list[dict[str, str]]] = {}
    for ra in plan["role_assignments"]:
        by_principal.setdefault(ra["principal"], []).append(ra)
    personas_of = {m.principal: m.persona for m in TUTORIAL_MEMBERS} | {"datasciencegroup": "data_scientist"}
    assert set(by_principal) == set(personas_of)
    for principal, assignments in by_principal.items():
        # 8 scopes with a data lake: resource group, workspace, 3 storage accounts, vault, registry, insights.
        assert {(ra["scope_type"], ra["scope_name"]) for ra in assignments} == TUTORIAL_SCOPES
        assert len(assignments) == 8
        for ra in assignments:
            assert ra["role"] == ROLES[personas_of[principal]][ra["scope_type"]], ra
    group = by_principal["datasciencegroup"][0]
    assert (group["principal_type"], group["persona"]) == ("group", "data_scientist")
    assert not any(ra["role"] in ("Owner", "Contributor") for ra in plan["role_assignments"])
    assert "bob" not in {ra["principal"].split("@")[0] for ra in plan["role_assignments"]}
    assert plan["custom_roles"] == ["Data Scientist", "Team Lead"]


def test_plan_without_data_lake_has_seven_scopes(policy, alice, bob):
    plan = approved(alice, bob, tutorial_spec(data_lake=False)).plan
    per_member = [ra for ra in plan["role_assignments"] if ra["principal"] == "user2@contoso.com"]
    assert len(per_member) == 7
    assert "bgmrbluegranite2devbig" not in {ra["scope_name"] for ra in plan["role_assignments"]}
    assert all(r["name"] != "bgmrbluegranite2devbig" for r in plan["resources"])


def test_plan_resources_fix_the_tutorials_defects(policy, alice, bob):
    cr = approved(alice, bob)
    resources = {r["name"]: r for r in cr.plan["resources"]}
    group = resources["bgmr-bluegranit-eastus2-dev"]
    assert group["tags"]["managed-by"] == "azureml-portal"
    assert group["tags"]["portal-request"] == str(cr.pk)
    assert (group["tags"]["dept"], group["tags"]["team"], group["tags"]["environment"]) == (
        "bgmr",
        "bluegranit",
        "dev",
    )
    assert resources["bgmrbluegranite2devbig"]["settings"]["hierarchical_namespace"] is True
    assert resources["bgmrbluegranite2devwork"]["settings"]["hierarchical_namespace"] is False
    assert resources["bgmrbluegranite2devcr"]["settings"]["admin_user_enabled"] is False
    assert resources["bgmrbluegranite2devkv"]["settings"]["permission_model"] == "RBAC"
    assert [c["name"] for c in cr.plan["clusters"]] == [c.name for c in TUTORIAL_CLUSTERS]
    assert {c["min_nodes"] for c in cr.plan["clusters"]} == {0}
    assert {c["idle_seconds"] for c in cr.plan["clusters"]} == {120}


def test_changes_to_a_workspace_add_clusters_grant_and_revoke(policy, alice, bob):
    workspace = approved(alice, bob).workspace
    Membership.objects.update(state=ResourceState.ACTIVE)  # as the provisioning run leaves them

    add = services.request_create(
        requester=alice,
        kind=ChangeRequest.Kind.ADD_CLUSTERS,
        workspace=workspace,
        spec=RequestSpec(clusters=(ClusterSpec(name="cpu-big", vm_size="standard_ds3_v2", max_nodes=4),)),
    )
    services.request_submit(request_id=add.pk, actor=alice)
    services.request_approve(request_id=add.pk, approver=bob)
    assert Cluster.objects.get(name="cpu-big", change_request=add).vm_size == "STANDARD_DS3_V2"

    user2 = Membership.objects.get(principal_name="user2@contoso.com")
    revoke = services.request_create(
        requester=alice,
        kind=ChangeRequest.Kind.REVOKE_ACCESS,
        workspace=workspace,
        spec=RequestSpec(revoke=(user2.pk,)),
    )
    services.request_submit(request_id=revoke.pk, actor=alice)
    plan = services.request_approve(request_id=revoke.pk, approver=bob).plan
    assert len(plan["revocations"]) == 8
    assert {ra["principal"] for ra in plan["revocations"]} == {"user2@contoso.com"}
    assert plan["role_assignments"] == []
    user2.refresh_from_db()
    assert user2.state == ResourceState.REVOKING

    # Revoking a membership that is no longer active is refused, with its index.
    again = services.request_create(
        requester=alice,
        kind=ChangeRequest.Kind.REVOKE_ACCESS,
        workspace=workspace,
        spec=RequestSpec(revoke=(user2.pk,)),
    )
    with pytest.raises(RequestError) as exc:
        services.request_submit(request_id=again.pk, actor=alice)
    assert problem_fields(exc) == ["revoke.0"]


def test_services_write_a_valid_audit_chain(policy, alice, bob, charlie):
    approved(alice, bob)
    cr = submitted(charlie, tutorial_spec(team="other"))
    services.request_reject(request_id=cr.pk, approver=bob, reason="duplicate")
    checked, broken = audit_verify_chain()
    assert (checked, broken) == (AuditEvent.objects.count(), None)
    assert checked == 6


# --- enqueue on commit, and Redis being down ---------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_job_is_enqueued_only_once_the_approval_commits(policy, alice, bob, rq_queue):
    cr = submitted(alice)
    with transaction.atomic():
        services.request_approve(request_id=cr.pk, approver=bob)
        assert (
            provisioning_jobs(rq_queue) == []
        )  # a worker must never see a request the database does not yet hold
    assert provisioning_jobs(rq_queue) == [provisioning_job_id(cr.pk)]
    cr.refresh_from_db()
    assert cr.enqueued_at is not None
    job = rq_queue.fetch_job(provisioning_job_id(cr.pk))
    assert job.args == [cr.pk]


@pytest.mark.django_db(transaction=True)
def test_no_job_when_the_approval_rolls_back(policy, alice, bob, rq_queue):
    cr = submitted(alice)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        services.request_approve(request_id=cr.pk, approver=bob)
        raise Abort
    assert provisioning_jobs(rq_queue) == []
    cr.refresh_from_db()
    assert (cr.status, cr.plan, cr.enqueued_at) == (Status.SUBMITTED, None, None)
    assert not Workspace.objects.exists()
    assert actions(cr) == ["request.created", "request.submitted"]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.django_db(transaction=True)
def test_approval_commits_even_when_redis_is_unreachable(policy, alice, bob, rq_queue, monkeypatch):
    cr = submitted(alice)
    monkeypatch.setitem(settings.RQ_QUEUES["provisioning"], "URL", f"redis://127.0.0.1:{_unused_port()}/0")
    services.request_approve(request_id=cr.pk, approver=bob)
    cr.refresh_from_db()
    assert cr.status == Status.APPROVED
    assert cr.enqueued_at is None  # the sweeper will find it
    assert Workspace.objects.filter(workspace_name="bgmrbluegranite2devws").exists()
    assert actions(cr)[-1] == "request.approved"
    assert provisioning_jobs(rq_queue) == []
