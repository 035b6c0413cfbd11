"""Day-2 changes with a plan: clusters updated in place, replaced or deleted, members' roles changed.

The engine runs in-process against the stand-in (real SDK clients over HTTPS): what the plan says is
what Azure receives, counted in the stand-in's request log.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from provisioning.arm import WORKSPACE_PROVIDER, arm_id
from provisioning.azure import ml
from provisioning.capacity import report
from provisioning.engine import executor as engine
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    Cluster,
    Membership,
    ResourceState,
    Run,
    Step,
    TeamBudget,
)
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.standin import catalog
from provisioning.steps import steps_for_plan
from provisioning.workflow import recovery, services
from provisioning.workflow.transitions import RequestError, TransitionError
from tests.factories import TUTORIAL_CLUSTERS, tutorial_workspace, vm_size
from tests.provisioning.provisioned import provisioned

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

Kind = ChangeRequest.Kind
Status = ChangeRequest.Status
CPU = TUTORIAL_CLUSTERS[0]  # ds3-v2-cluster: STANDARD_DS3_V2, low priority, 1 node


def _workspace(standin: Any, azure_clients: Any, alice: Any, bob: Any) -> Any:
    spec = RequestSpec(
        workspace=tutorial_workspace(team="dayt", data_lake=False, security_group=""),
        clusters=(CPU,),
        members=(
            MemberSpec("user1@contoso.com", "team_lead"),
            MemberSpec("user2@contoso.com", "data_scientist"),
        ),
    )
    return provisioned(standin, azure_clients, alice, bob, spec=spec)


def _change(alice: Any, ws: Any, **edits: Any) -> ChangeRequest:
    cr = services.request_create(
        requester=alice, kind=Kind.CHANGE_WORKSPACE, spec=RequestSpec(**edits), workspace=ws
    )
    return services.request_submit(request_id=cr.pk, actor=alice)


def _approved(cr: ChangeRequest, bob: Any) -> ChangeRequest:
    ChangeRequest.objects.filter(pk=cr.pk).update(principal_check=[])  # nothing new to look up in Entra ID
    return services.request_approve(request_id=cr.pk, approver=bob)


def _roles_held(standin: Any, object_id: str) -> list[str]:
    """The names of the roles a principal holds in the stand-in (built-in and custom)."""
    names = {str(r["id"]).lower(): str(r["roleName"]) for r in catalog.BUILTIN_ROLES}
    with standin.state.lock:
        names.update(
            {guid.lower(): d["properties"]["roleName"] for guid, d in standin.state.role_definitions.items()}
        )
    return [
        names.get(a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1].lower(), "?")
        for a in standin.state.list_role_assignments(principal_id=object_id)
    ]


def _cluster_in_azure(standin: Any, ws: Any, name: str) -> dict[str, Any] | None:
    base = arm_id(ws.subscription_id, ws.resource_group, WORKSPACE_PROVIDER, ws.workspace_name)
    return standin.state.get(f"{base}/computes/{name}")


def test_a_larger_max_nodes_is_an_update_in_place_made_with_one_patch(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    wider = ClusterSpec(CPU.name, CPU.vm_size, CPU.priority, max_nodes=3, idle_seconds=300)
    cr = _change(alice, ws, cluster_updates=(wider,))
    plan = services.request_plan(cr)
    assert plan["changes"] == [
        {
            "action": "update",
            "object": "cluster",
            "name": CPU.name,
            "fields": {"max_nodes": [1, 3], "idle_seconds": [120, 300]},
        }
    ]
    assert [s.kind for s in steps_for_plan(plan)] == ["cluster_update"]

    _approved(cr, bob)
    standin.state.clear_requests()
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    counts = standin.state.operation_counts()
    assert counts.get("compute.update") == 1
    assert not counts.get("compute.create") and not counts.get("compute.delete")
    scale = _cluster_in_azure(standin, ws, CPU.name)["properties"]["properties"]["scaleSettings"]
    assert (scale["maxNodeCount"], scale["nodeIdleTimeBeforeScaleDown"]) == (3, "PT5M")
    cluster = Cluster.objects.get(workspace=ws, name=CPU.name)
    assert (cluster.max_nodes, cluster.idle_seconds, cluster.state) == (3, 300, ResourceState.ACTIVE)
    event = AuditEvent.objects.get(action="cluster.updated", request_id=cr.pk)
    assert (event.before, event.after) == (
        {"max_nodes": 1, "idle_seconds": 120},
        {"max_nodes": 3, "idle_seconds": 300},
    )

    # The step again (a second delivery) changes nothing in Azure.
    standin.state.clear_requests()
    outcome = ml.update_cluster(
        azure_clients,
        subscription=ws.subscription_id,
        resource_group=ws.resource_group,
        workspace=ws.workspace_name,
        name=CPU.name,
        min_nodes=0,
        max_nodes=3,
        idle_seconds=300,
    )
    assert outcome.action == "unchanged" and not standin.state.count("compute.update")


def test_a_size_change_is_a_replace_refused_while_nodes_run_then_done(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    bigger = ClusterSpec(CPU.name, "STANDARD_D13_V2", "dedicated", max_nodes=1)
    cr = _change(alice, ws, cluster_updates=(bigger,))
    [line] = services.request_plan(cr)["changes"]
    assert (line["action"], line["fields"]) == (
        "replace",
        {"vm_size": ["STANDARD_DS3_V2", "STANDARD_D13_V2"], "priority": ["low_priority", "dedicated"]},
    )
    assert "cannot change the VM size or priority" in line["why"] and "running nodes" in line["why"]
    _approved(cr, bob)
    standin.outside.run_jobs(ws.subscription_id, ws.resource_group, ws.workspace_name, CPU.name, nodes=1)
    standin.state.clear_requests()

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED
    failed = Step.objects.get(run__change_request=cr, status=Step.Status.FAILED)
    assert (failed.kind, failed.error_code) == ("cluster_delete", "ClusterHasRunningNodes")
    assert "1 node running jobs" in failed.error_message and "nothing was sent" in failed.error_message
    assert not standin.state.count("compute.delete")
    assert (
        _cluster_in_azure(standin, ws, CPU.name)["properties"]["properties"]["vmSize"].upper()
        == "STANDARD_DS3_V2"
    )

    standin.outside.run_jobs(ws.subscription_id, ws.resource_group, ws.workspace_name, CPU.name, nodes=0)
    services.request_retry(request_id=cr.pk, actor=bob)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    inner = _cluster_in_azure(standin, ws, CPU.name)["properties"]["properties"]
    assert (inner["vmSize"].upper(), inner["vmPriority"]) == ("STANDARD_D13_V2", "Dedicated")
    cluster = Cluster.objects.get(workspace=ws, name=CPU.name)
    assert (cluster.vm_size, cluster.priority, cluster.state) == ("STANDARD_D13_V2", "dedicated", "active")


def test_a_deleted_cluster_is_gone_in_azure_and_in_the_portal(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    cr = _change(alice, ws, cluster_deletes=(CPU.name.upper(),))
    [line] = services.request_plan(cr)["changes"]
    assert (line["action"], line["object"], line["name"]) == ("delete", "cluster", CPU.name)
    _approved(cr, bob)
    assert Cluster.objects.get(workspace=ws, name=CPU.name).state == ResourceState.REVOKING

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    assert _cluster_in_azure(standin, ws, CPU.name) is None
    assert Cluster.objects.get(workspace=ws, name=CPU.name).state == ResourceState.REVOKED
    assert AuditEvent.objects.filter(action="cluster.revoked", request_id=cr.pk).count() == 1


def test_a_role_change_grants_the_new_roles_and_removes_the_old(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    cr = _change(alice, ws, persona_changes=(MemberSpec("USER2@contoso.com", "team_lead"),))
    plan = services.request_plan(cr)
    assert plan["changes"] == [
        {
            "action": "update",
            "object": "member",
            "name": "user2@contoso.com",
            "fields": {"persona": ["data_scientist", "team_lead"]},
        }
    ]
    assert sorted(ra["role"] for ra in plan["role_assignments"]) == [
        "AcrPush",
        "Key Vault Secrets Officer",
        "Team Lead",
    ]
    assert sorted(ra["role"] for ra in plan["revocations"]) == [
        "AcrPull",
        "Data Scientist",
        "Key Vault Secrets User",
    ]
    _approved(cr, bob)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    member = Membership.objects.get(workspace=ws, principal_name="user2@contoso.com")
    assert (member.persona, member.state) == ("team_lead", ResourceState.ACTIVE)
    assert sorted(_roles_held(standin, member.object_id)) == [
        "AcrPush",
        "Key Vault Secrets Officer",
        "Reader",
        "Reader",
        "Storage Blob Data Contributor",
        "Storage Blob Data Contributor",
        "Team Lead",
    ]
    assert AuditEvent.objects.filter(action="membership.updated", request_id=cr.pk).count() == 1


def test_a_larger_max_nodes_is_checked_as_the_new_worst_case_not_added_to_the_old(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    vm_size(ws.region, "STANDARD_DS3_V2", "standardDSv2Family", 4)
    TeamBudget.objects.create(
        department=ws.department,
        team=ws.team,
        region=ws.region,
        family="standardDSv2Family",
        dedicated_cores=0,
        low_priority_cores=12,
    )
    # 1 node (4 cores) held; 3 nodes = 12 cores fits the budget of 12 (it would not as 4 + 12).
    fits = ClusterSpec(CPU.name, CPU.vm_size, CPU.priority, max_nodes=3)
    cr = _change(alice, ws, cluster_updates=(fits,))
    assert cr.status == Status.SUBMITTED
    services.request_cancel(request_id=cr.pk, actor=alice)

    too_many = ClusterSpec(CPU.name, CPU.vm_size, CPU.priority, max_nodes=4)
    draft = services.request_create(
        requester=alice,
        kind=Kind.CHANGE_WORKSPACE,
        spec=RequestSpec(cluster_updates=(too_many,)),
        workspace=ws,
    )
    with pytest.raises(RequestError) as refused:
        services.request_submit(request_id=draft.pk, actor=alice)
    [problem] = [p for p in refused.value.problems if p.field == "cluster_updates.0.max_nodes"]
    assert "asks 16" in problem.message and "has 0 of 12 used" in problem.message


def test_changes_are_refused_when_they_name_nothing_live_or_clash(
    standin, azure_clients, alice, bob, charlie, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    same = ClusterSpec(CPU.name, CPU.vm_size, CPU.priority, max_nodes=1)
    problems = {
        p.field: p.message
        for p in services.spec_problems(
            RequestSpec(
                cluster_updates=(same,),
                cluster_deletes=("nosuch",),
                persona_changes=(MemberSpec("user1@contoso.com", "team_lead"),),
            ),
            kind=Kind.CHANGE_WORKSPACE,
            workspace=ws,
        )
    }
    assert "changes nothing" in problems["cluster_updates.0.name"]
    assert "no active cluster named 'nosuch'" in problems["cluster_deletes.0"]
    assert "already team_lead" in problems["persona_changes.0.persona"]
    assert (
        "changes nothing"
        in services.spec_problems(RequestSpec(), kind=Kind.CHANGE_WORKSPACE, workspace=ws)[0].message
    )

    first = _change(alice, ws, cluster_deletes=(CPU.name,))
    clash = services.spec_problems(
        RequestSpec(cluster_updates=(ClusterSpec(CPU.name, CPU.vm_size, CPU.priority, max_nodes=2),)),
        kind=Kind.CHANGE_WORKSPACE,
        workspace=ws,
    )
    assert [p.message for p in clash] == [
        f"cluster '{CPU.name}' is already changed by request #{first.pk}: wait until it is done, or cancel it"
    ]
    with pytest.raises(PermissionDenied):  # charlie leads no part of this workspace
        services.request_create(
            requester=charlie,
            kind=Kind.CHANGE_WORKSPACE,
            spec=RequestSpec(cluster_deletes=(CPU.name,)),
            workspace=ws,
        )


def test_a_failed_delete_kept_as_azure_holds_it_leaves_the_cluster_active(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    cr = _approved(_change(alice, ws, cluster_deletes=(CPU.name,)), bob)
    standin.outside.run_jobs(ws.subscription_id, ws.resource_group, ws.workspace_name, CPU.name, nodes=1)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED

    with pytest.raises(TransitionError, match="Keep what Azure holds"):
        recovery.request_rollback(request_id=cr.pk, actor=bob, reason="undo it")
    recovery.request_keep(request_id=cr.pk, actor=bob, reason="the team still runs jobs on it")

    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.ABANDONED
    assert Cluster.objects.get(workspace=ws, name=CPU.name).state == ResourceState.ACTIVE


def test_a_replace_that_deleted_but_did_not_create_kept_revokes_the_cluster(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    bigger = ClusterSpec(CPU.name, "STANDARD_D13_V2", "dedicated", max_nodes=1)
    cr = _approved(_change(alice, ws, cluster_updates=(bigger,)), bob)
    standin.lro_fail("compute.create", "QuotaExceeded", "Not enough quota for this size.")
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED
    failed = Step.objects.get(run__change_request=cr, status=Step.Status.FAILED)
    assert (failed.key, failed.error_code) == (f"cluster:{CPU.name}", "QuotaExceeded")

    recovery.request_keep(request_id=cr.pk, actor=bob, reason="no quota for the new size this quarter")

    assert Cluster.objects.get(workspace=ws, name=CPU.name).state == ResourceState.REVOKED


def test_the_capacity_page_counts_a_waiting_change_as_its_growth(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = _workspace(standin, azure_clients, alice, bob)
    vm_size(ws.region, "STANDARD_DS3_V2", "standardDSv2Family", 4)
    _change(alice, ws, cluster_updates=(ClusterSpec(CPU.name, CPU.vm_size, CPU.priority, max_nodes=3),))

    pending = report.pending_by_team()

    assert pending[(ws.department, ws.team, ws.region)] == {("standardDSv2Family", "low_priority"): 8}
