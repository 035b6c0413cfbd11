"""Capacity from Azure into the database: size catalog, core usages, workspace quotas.

Everything runs against the local Azure stand-in with the real SDK clients; clusters "made outside
the portal" are created directly with azure-ai-ml's MLClient, as someone with access to the
subscription would. The guard over the clusters that exist is in ``test_cluster_guard``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.management import call_command

from provisioning.azure import quotas
from provisioning.engine import capacity_sync
from provisioning.engine import executor as engine
from provisioning.management.commands.provisioning_scheduler import CAPACITY_JOB_ID
from provisioning.models import (
    AllowedRegion,
    AuditEvent,
    ChangeRequest,
    CoreUsage,
    Run,
    Step,
    VmSize,
    Workspace,
    WorkspaceQuota,
)
from provisioning.workflow import services
from tests import factories
from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory
from tests.provisioning.outside_portal import SUB, _outside_cluster, _outside_workspace
from tests.worker_plugin import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

DSV2_QUOTA = "standard_dsv2_family_cluster_dedicated_vcpus"


# --- helpers -----------------------------------------------------------------------------------------------


def _usage(region: str, scope: str, family: str = "") -> tuple[int, int]:
    row = CoreUsage.objects.get(subscription_id=SUB, region=region, scope=scope, family=family)
    return row.current, row.limit


def _principals(standin: Any) -> None:
    for member in TUTORIAL_MEMBERS:
        standin.add_user(member.principal)
    standin.add_group("datasciencegroup")


def _budget(family: str, dedicated: int, low_priority: int = 16) -> None:
    factories.team_budget(family, dedicated, low_priority)


def _provision_tutorial(alice: Any, bob: Any, standin: Any, clients: Any) -> ChangeRequest:
    _principals(standin)
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    engine.request_execute(request_id=cr.pk, clients=clients)
    cr.refresh_from_db()
    return cr


# --- size catalog and usages -------------------------------------------------------------------------------


def test_sizes_and_usages_flow_from_the_standin(policy, standin, azure_clients) -> None:
    AllowedRegion.objects.create(name="northeurope", display_name="North Europe", abbreviation="ne")
    VmSize.objects.create(
        region="eastus2",
        name="STANDARD_A1",
        display_name="Standard_A1",
        family="standardAFamily",
        vcpus=1,
        refreshed_at="2020-01-01T00:00:00Z",
    )

    summary = capacity_sync.capacity_refresh(azure_clients)

    assert summary["errors"] == []
    assert set(summary["sizes"]) == {"eastus2", "westeurope", "northeurope"}
    ds3 = VmSize.objects.get(region="eastus2", name="STANDARD_DS3_V2")
    assert (ds3.display_name, ds3.family, ds3.vcpus, ds3.gpus, ds3.memory_gb) == (
        "Standard_DS3_v2",
        "standardDSv2Family",
        4,
        0,
        14.0,
    )
    assert ds3.low_priority_capable is True
    assert VmSize.objects.get(region="eastus2", name="STANDARD_NV6").gpus == 1
    assert VmSize.objects.get(region="northeurope", name="STANDARD_E4DS_V4").family == "standardEDSv4Family"
    assert not VmSize.objects.filter(name="STANDARD_A1").exists()  # Azure no longer offers it there
    # Cores used outside the portal show up, as Azure reports them.
    assert _usage("eastus2", CoreUsage.Scope.FAMILY, "standardDSv2Family") == (20, 48)
    assert _usage("eastus2", CoreUsage.Scope.FAMILY, "standardNCASv3_T4Family") == (0, 8)
    assert _usage("eastus2", CoreUsage.Scope.DEDICATED_TOTAL) == (36, 100)
    assert _usage("eastus2", CoreUsage.Scope.LOW_PRIORITY_TOTAL) == (12, 100)
    assert _usage("westeurope", CoreUsage.Scope.DEDICATED_TOTAL) == (20, 64)
    assert _usage("northeurope", CoreUsage.Scope.LOW_PRIORITY_TOTAL) == (24, 60)
    names = CoreUsage.objects.get(region="eastus2", scope="family", family="standardDSv2Family").name
    assert names == "Standard DSv2 Family Cluster Dedicated vCPUs"
    assert not CoreUsage.objects.filter(family__icontains="lowpriority").exists()


def test_usage_follows_the_clusters_azure_runs(policy, standin, azure_clients) -> None:
    capacity_sync.capacity_refresh(azure_clients)
    group = _outside_workspace(azure_clients, "handmade")
    _outside_cluster(azure_clients, group, "handmade", "always-on", min_instances=2, max_instances=2)

    capacity_sync.usage_refresh(azure_clients, SUB, "eastus2")

    assert _usage("eastus2", CoreUsage.Scope.FAMILY, "standardDSv2Family") == (28, 48)
    assert _usage("eastus2", CoreUsage.Scope.DEDICATED_TOTAL) == (44, 100)


def test_a_region_azure_refuses_does_not_stop_the_others(policy, standin, azure_clients) -> None:
    AllowedRegion.objects.create(name="moonbase1", display_name="Moon Base", abbreviation="mb")

    summary = capacity_sync.capacity_refresh(azure_clients)

    assert len(summary["errors"]) == 1 and "moonbase1" in summary["errors"][0]
    assert "LocationNotAvailableForResourceType" in summary["errors"][0]
    assert CoreUsage.objects.filter(region="eastus2").exists()
    assert CoreUsage.objects.filter(region="westeurope").exists()


def test_the_periodic_job_refreshes_capacity_through_a_real_worker(
    policy, standin, rq_queue, start_worker
) -> None:
    call_command("provisioning_scheduler", "--once")
    assert CAPACITY_JOB_ID in rq_queue.job_ids

    start_worker()

    wait_for(
        lambda: CoreUsage.objects.filter(region="westeurope").exists(),
        timeout=60,
        describe=lambda: f"usages: {list(CoreUsage.objects.values_list('region', 'name'))}",
    )
    assert _usage("eastus2", CoreUsage.Scope.FAMILY, "standardDSv2Family") == (20, 48)


def test_the_management_command_refreshes_and_prints(policy, standin, azure_clients, capsys) -> None:
    group = _outside_workspace(azure_clients, "cmdws")
    _outside_cluster(azure_clients, group, "cmdws", "warm", min_instances=1)

    call_command("capacity_refresh")

    out = capsys.readouterr().out
    assert "eastus2:" in out and "VM sizes" in out
    assert "standardDSv2Family: 24 of 48 vCPUs used" in out
    assert "cmdws/warm (outside the portal): min_nodes" in out


def test_the_management_commands_json_gives_objects_not_formatted_strings(
    policy, standin, azure_clients, capsys
) -> None:
    group = _outside_workspace(azure_clients, "jsonws")
    _outside_cluster(azure_clients, group, "jsonws", "warm", min_instances=1)

    call_command("capacity_refresh", "--json")

    doc = json.loads(capsys.readouterr().out)
    assert {"subscription_id": SUB, "region": "eastus2"}.items() <= doc["refresh"]["usages"][0].items()
    assert all(isinstance(u["count"], int) for u in doc["refresh"]["usages"])
    flag = next(f for f in doc["open_flags"] if f["cluster"] == "warm")
    assert (flag["subscription_id"], flag["workspace"], flag["kind"]) == (SUB, "jsonws", "min_nodes")
    assert flag["resource_group"] and "/" not in flag["resource_group"]
    assert flag["azure_id"].lower().endswith("/workspaces/jsonws/computes/warm")


# --- workspace quota from the team's budget ----------------------------------------------------------------


def test_provisioning_applies_the_teams_budget_as_workspace_quota(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    capacity_sync.capacity_refresh(azure_clients)
    _budget("standardDSv2Family", 8)
    _budget("standardDv2Family", 16)

    cr = _provision_tutorial(alice, bob, standin, azure_clients)

    assert cr.status == ChangeRequest.Status.SUCCEEDED
    assert cr.plan["workspace_quotas"] == [
        {"family": "standardDSv2Family", "limit": 8},
        {"family": "standardDv2Family", "limit": 16},
    ]
    ws = Workspace.objects.get()
    ws_id = ws.azure_id.lower()
    assert standin.state.quotas[(ws_id, DSV2_QUOTA)] == 8
    assert standin.state.quotas[(ws_id, "standard_dv2_family_cluster_dedicated_vcpus")] == 16
    rows = {q.family: q for q in WorkspaceQuota.objects.filter(workspace=ws)}
    assert {f: (q.requested, q.applied, q.status) for f, q in rows.items()} == {
        "standardDSv2Family": (8, 8, "Success"),
        "standardDv2Family": (16, 16, "Success"),
    }
    step = Step.objects.get(run__change_request=cr, key="workspace_quota")
    assert (step.status, step.outcome, step.target) == (
        "succeeded",
        "updated",
        "workspace quota for 2 VM families",
    )
    assert AuditEvent.objects.filter(request_id=cr.pk, action="workspace_quota.applied").count() == 1
    assert not [j for j in rq_queue.job_ids if j.startswith("team-quota-")]  # the budgets did not change
    # The portal's own clusters keep to the dev policy: nothing to flag.
    assert capacity_sync.clusters_guard(azure_clients)["flagged"] == 0


def test_a_budget_changed_while_provisioning_reaches_the_new_workspace(
    policy, alice, bob, standin, azure_clients, rq_queue, start_worker
) -> None:
    _principals(standin)
    _budget("standardDSv2Family", 8)
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    rq_queue.empty()  # the provisioning job: this test runs the engine itself
    _budget("standardDSv2Family", 12)  # saved while the workspace is not active yet: no quota job reached it

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == ChangeRequest.Status.SUCCEEDED

    ws = Workspace.objects.get()
    assert cr.plan["workspace_quotas"] == [{"family": "standardDSv2Family", "limit": 8}]  # as approved
    succeeded = AuditEvent.objects.get(request_id=cr.pk, action="request.succeeded")
    assert "the team's budgets changed since approval" in succeeded.message
    assert f"team-quota-{cr.pk}-run-1" in rq_queue.job_ids
    start_worker()

    def recorded() -> int | None:
        return WorkspaceQuota.objects.get(workspace=ws, family="standardDSv2Family").applied

    # The worker sets the quota in Azure, then records what Azure answered: wait for both (the record
    # comes a moment after Azure's answer).
    wait_for(
        lambda: standin.state.quotas.get((ws.azure_id.lower(), DSV2_QUOTA)) == 12 and recorded() == 12,
        timeout=60,
        describe=lambda: f"quotas: {standin.state.quotas}, recorded: {recorded()}",
    )


def test_running_the_same_plan_again_sends_no_quota_update(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    _budget("standardDSv2Family", 8)
    cr = _provision_tutorial(alice, bob, standin, azure_clients)
    standin.state.clear_requests()

    ChangeRequest.objects.filter(pk=cr.pk).update(status=ChangeRequest.Status.FAILED)
    Step.objects.filter(run__change_request=cr).update(status=Step.Status.FAILED)
    services.request_retry(request_id=cr.pk, actor=bob)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    step = Step.objects.get(run__change_request=cr, run__number=2, key="workspace_quota")
    assert step.outcome == "unchanged"
    assert standin.state.count("quotas.update") == 0
    assert AuditEvent.objects.filter(request_id=cr.pk, action="workspace_quota.applied").count() == 1


def test_a_quota_azure_refuses_fails_the_step_with_its_reason(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    _budget("standardDSv2Family", 500)

    cr = _provision_tutorial(alice, bob, standin, azure_clients)

    assert cr.status == ChangeRequest.Status.FAILED
    step = Step.objects.get(run__change_request=cr, key="workspace_quota")
    assert step.status == "failed"
    assert step.error_code == "InvalidQuotaExceedsSubscriptionLimit"
    assert "500 vCPUs of Standard DSv2 Family" in step.error_message
    assert "the subscription's limit in eastus2 is 48" in step.error_message
    assert "Azure support" in step.hint
    row = WorkspaceQuota.objects.get(family="standardDSv2Family")
    assert (row.requested, row.status) == (500, "InvalidQuotaExceedsSubscriptionLimit")
    assert row.applied == 48  # what Azure holds: the subscription's limit, the workspace's default
    assert "limit in eastus2 is 48" in row.message
    refused = AuditEvent.objects.get(request_id=cr.pk, action="workspace_quota.refused")
    assert refused.after["standardDSv2Family"]["status"] == "InvalidQuotaExceedsSubscriptionLimit"
    ws_id = standin.state.list_resources("workspace")[0]["id"]
    assert (ws_id.lower(), DSV2_QUOTA) not in standin.state.quotas


def test_a_budget_change_is_applied_to_the_teams_active_workspaces(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    _budget("standardDSv2Family", 8)
    _provision_tutorial(alice, bob, standin, azure_clients)
    _budget("standardDSv2Family", 12)
    _budget("standardFooFamily", 4)

    summary = capacity_sync.team_quota_apply("bgmr", "bluegranit", "eastus2", clients=azure_clients)

    ws = Workspace.objects.get()
    assert summary == {
        "workspaces": {
            ws.workspace_name: {"standardDSv2Family": "Success", "standardFooFamily": "InvalidVMFamilyName"}
        },
        "errors": [],
    }
    assert standin.state.quotas[(ws.azure_id.lower(), DSV2_QUOTA)] == 12
    foo = WorkspaceQuota.objects.get(workspace=ws, family="standardFooFamily")
    assert foo.applied is None and "does not offer Standard Foo Family" in foo.message
    assert WorkspaceQuota.objects.get(workspace=ws, family="standardDSv2Family").applied == 12


def test_a_quota_below_what_the_workspaces_clusters_hold_is_refused(policy, standin, azure_clients) -> None:
    group = _outside_workspace(azure_clients, "busyws")
    _outside_cluster(azure_clients, group, "busyws", "warm", min_instances=2)  # 8 DSv2 vCPUs held
    ws_id = f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/workspaces/busyws"

    [result] = quotas.apply_workspace_quotas(
        azure_clients,
        subscription=SUB,
        location="eastus2",
        workspace_id=ws_id,
        limits={"standardDSv2Family": 4},
    )

    assert (result.ok, result.status, result.applied) == (False, "InvalidQuotaBelowClusterMinimum", 48)
    assert "minimum nodes" in result.message
