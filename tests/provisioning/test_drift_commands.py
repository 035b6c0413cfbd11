"""``manage.py reconcile`` and ``manage.py remediate_drift``, and the scheduled reconcile."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from provisioning.management.commands.provisioning_scheduler import RECONCILE_ALL_JOB_ID
from provisioning.models import DriftItem
from tests.factories import TUTORIAL_SUBSCRIPTION, ClusterFactory, WorkspaceFactory
from tests.provisioning.observations import record, resized
from tests.provisioning.provisioned import provisioned

RG = "bgmr-bluegranit-eastus2-dev"
WS = "bgmrbluegranite2devws"
Status = DriftItem.Status


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("loopback_only")
def test_reconcile_prints_the_open_drift_as_json(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    provisioned(standin, azure_clients, alice, bob)
    assert json.loads(_run("reconcile", "--json")) == {"workspaces": [{"name": WS, "drift": []}]}
    standin.outside.resize_cluster(TUTORIAL_SUBSCRIPTION, RG, WS, "ds13-v2-2ndclust", max_nodes=40)

    shown = json.loads(_run("reconcile", "--workspace", WS.upper(), "--json"))

    (workspace,) = shown["workspaces"]
    assert workspace["name"] == WS
    (item,) = workspace["drift"]
    assert {k: item[k] for k in ("kind", "field", "expected", "actual")} == {
        "kind": "changed",
        "field": "max_nodes",
        "expected": 2,
        "actual": 40,
    }
    assert item["resource_id"].endswith("/workspaces/bgmrbluegranite2devws/computes/ds13-v2-2ndclust")
    assert set(item) >= {"kind", "resource_id", "field", "expected", "actual"}
    text = _run("reconcile")
    assert f"{WS}: 1 open drift item (0 new, 0 resolved; 5 ARM reads)" in text
    assert f"#{item['id']} changed: " in text and "max_nodes: 2 -> 40" in text


@pytest.mark.django_db
def test_reconcile_refuses_an_unknown_or_inactive_workspace(policy) -> None:
    with pytest.raises(CommandError, match="no workspace named 'nosuchws'"):
        call_command("reconcile", "--workspace", "nosuchws")
    ws = WorkspaceFactory(state="provisioning")
    with pytest.raises(CommandError, match="is provisioning: only active workspaces are reconciled"):
        call_command("reconcile", "--workspace", ws.workspace_name)


@pytest.mark.django_db
def test_reconcile_with_nothing_to_read(policy) -> None:
    assert json.loads(_run("reconcile", "--json")) == {"workspaces": []}
    assert "No active workspaces to reconcile." in _run("reconcile")


@pytest.fixture
def drifted(policy, alice):  # type: ignore[no-untyped-def]
    ws = WorkspaceFactory(owner=alice)
    ClusterFactory(workspace=ws, name="cpu", max_nodes=2, idle_seconds=120)
    record(ws, resized(ws, max_nodes=40, idle_seconds=600))
    return ws


@pytest.mark.django_db
def test_remediate_drift_accepts_with_a_reason(drifted, bob) -> None:
    idle = drifted.drift_items.get(field="idle_seconds")
    with pytest.raises(CommandError, match="--accept needs --reason"):
        call_command("remediate_drift", "--workspace", drifted.workspace_name, "--admin", "bob", "--accept")

    out = _run(
        "remediate_drift",
        "--workspace",
        drifted.workspace_name,
        "--admin",
        "bob",
        "--item",
        str(idle.pk),
        "--accept",
        "--reason",
        "slow starts",
    )

    assert (
        f"Accepted 1 drift item of {drifted.workspace_name}:" in out
        and f"#{idle.pk} changed: cpu idle_seconds" in out
    )
    assert drifted.clusters.get().idle_seconds == 600
    assert drifted.drift_items.get(field="max_nodes").status == Status.OPEN


@pytest.mark.django_db
def test_remediate_drift_queues_a_remediation_of_every_open_item(drifted, bob, rq_queue) -> None:
    out = _run("remediate_drift", "--workspace", drifted.workspace_name, "--admin", "bob@contoso.com")

    assert "remediates 2 drift items" in out and "queued for a worker" in out
    assert set(drifted.drift_items.values_list("status", flat=True)) == {Status.REMEDIATING}


@pytest.mark.django_db
def test_remediate_drift_is_for_admins_and_their_workspace_items(drifted, alice, bob) -> None:
    other = WorkspaceFactory()
    ClusterFactory(workspace=other, name="cpu", max_nodes=2)
    record(other, resized(other, max_nodes=5))
    foreign = other.drift_items.get()

    with pytest.raises(CommandError, match="only admins can remediate drift"):
        call_command("remediate_drift", "--workspace", drifted.workspace_name, "--admin", "alice")
    with pytest.raises(CommandError, match="no admin with the UPN or username 'nobody'"):
        call_command("remediate_drift", "--workspace", drifted.workspace_name, "--admin", "nobody")
    with pytest.raises(CommandError, match=f"no drift item #{foreign.pk} of workspace"):
        call_command(
            "remediate_drift",
            "--workspace",
            drifted.workspace_name,
            "--admin",
            "bob",
            "--item",
            str(foreign.pk),
        )


@pytest.mark.django_db
def test_the_scheduler_queues_one_reconcile_of_every_workspace(rq_queue, settings) -> None:
    call_command("provisioning_scheduler", "--once")
    call_command("provisioning_scheduler", "--once")

    assert rq_queue.job_ids.count(RECONCILE_ALL_JOB_ID) == 1
    assert rq_queue.fetch_job(RECONCILE_ALL_JOB_ID).func_name == "provisioning.jobs.reconcile_all"
    assert settings.RECONCILE_INTERVAL_MINUTES == 30
