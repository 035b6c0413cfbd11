"""The request workflow's services: what approval creates, and enqueueing its job once it commits."""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.db import transaction

from provisioning.audit import audit_verify_chain
from provisioning.models import AuditEvent, ChangeRequest, Cluster, Membership, ResourceState, Workspace
from provisioning.queue import provisioning_job_id
from provisioning.spec import ClusterSpec, RequestSpec
from provisioning.workflow import services
from provisioning.workflow.services import RequestError
from tests import factories
from tests.factories import TUTORIAL_CLUSTERS, TUTORIAL_MEMBERS, tutorial_spec
from tests.provisioning.change_requests import Status, actions, approved, problem_fields, submitted

pytestmark = pytest.mark.django_db

# The role matrix (README "Roles granted"), written out again here so the plan is checked against the design, not against itself.
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
