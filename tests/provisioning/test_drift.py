"""Reconcile and drift end to end (issue 13's acceptance): the tutorial's workspace provisioned on the
local Azure stand-in, changed there "by hand", found by one reconcile, then remediated by the engine,
accepted, or removed by an admin's choice; read back from Azure with the real SDKs."""

from __future__ import annotations

from typing import Any

import pytest

from provisioning.audit import audit_verify_chain
from provisioning.engine import executor as engine
from provisioning.engine.reconcile import reconcile
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    Cluster,
    DriftItem,
    Notification,
    NotificationKind,
    ObservedResource,
    Run,
    Workspace,
)
from provisioning.workflow import drift
from tests.factories import TUTORIAL_SUBSCRIPTION
from tests.provisioning.provisioned import provisioned

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

SUB = TUTORIAL_SUBSCRIPTION
RG = "bgmr-bluegranit-eastus2-dev"
WS = "bgmrbluegranite2devws"
RG_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}"
Status = DriftItem.Status


def _open(ws: Workspace) -> dict[tuple[str, str], DriftItem]:
    return {(i.kind, i.field): i for i in ws.drift_items.filter(status=Status.OPEN)}


def _assignment(ws: Workspace, principal: str, role: str, scope: str) -> ObservedResource:
    return next(
        row
        for row in ws.observed.filter(kind=ObservedResource.Kind.ROLE_ASSIGNMENT)
        if (row.properties["principal"], row.properties["role"], row.properties["scope"].lower())
        == (principal, role, scope.lower())
    )


def _run(cr: ChangeRequest, azure_clients: Any) -> str:
    return engine.request_execute(request_id=cr.pk, clients=azure_clients)


def test_drift_is_found_remediated_accepted_and_removed_by_choice(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    first = reconcile(clients=azure_clients)
    assert first["workspaces"][0]["drift"] == [] and first["errors"] == []
    assert ws.observed.filter(kind="cluster").count() == 3
    assert ws.observed.filter(kind="role_assignment").count() == 40
    reader = _assignment(ws, "user2@contoso.com", "Reader", RG_ID)
    intruder = standin.add_user("intruder@contoso.com")
    # Somebody changes Azure by hand.
    standin.outside.resize_cluster(SUB, RG, WS, "ds13-v2-2ndclust", max_nodes=40)
    standin.outside.resize_cluster(SUB, RG, WS, "nv6-gpucluster", idle_seconds=1800)
    standin.outside.delete_role_assignment(reader.azure_id)
    owner = standin.outside.add_role_assignment(RG_ID, "Owner", intruder)["id"]
    standin.outside.add_resource(SUB, RG, "byhandstorage01")

    reconcile(clients=azure_clients)

    found = _open(ws)
    assert set(found) == {
        ("changed", "max_nodes"),
        ("changed", "idle_seconds"),
        ("access_removed", "role_assignment"),
        ("access_added", "role_assignment"),
        ("unmanaged", ""),
    }
    assert (found["changed", "max_nodes"].expected, found["changed", "max_nodes"].actual) == (2, 40)
    added = found["access_added", "role_assignment"]
    assert added.details["assignment_id"].lower() == owner.lower()
    assert (added.details["role_name"], added.details["principal_name"]) == ("Owner", "intruder@contoso.com")
    assert found["access_removed", "role_assignment"].resource_id == RG_ID
    assert AuditEvent.objects.filter(action="drift.found", actor="reconcile").count() == 5

    # Accepted: the approved state takes Azure's idle time.
    drift.drift_accept(
        item_ids=[found["changed", "idle_seconds"].pk], actor=bob, reason="GPU jobs start slowly"
    )
    assert Cluster.objects.get(name="nv6-gpucluster").idle_seconds == 1800
    # Remediated: "every open item" leaves access added by hand and the unmanaged storage alone.
    fix = drift.drift_remediate(workspace_id=ws.pk, actor=bob)
    assert {i.kind for i in fix.remediated_drift.all()} == {"changed", "access_removed"}
    assert (fix.kind, fix.status, fix.requester, fix.approver) == ("remediate_drift", "approved", bob, bob)
    assert _run(fix, azure_clients) == Run.Status.SUCCEEDED
    ml = azure_clients.ml(SUB, RG, WS)
    assert ml.compute.get("ds13-v2-2ndclust").max_instances == 2  # resized back, read from Azure
    member = ws.memberships.get(principal_name="user2@contoso.com")
    readers = standin.state.list_role_assignments(scope=RG_ID, principal_id=member.object_id)
    assert len(readers) == 1
    # Removed by the admin's choice: only when the item is named.
    removal = drift.drift_remediate(workspace_id=ws.pk, actor=bob, item_ids=[added.pk])
    assert _run(removal, azure_clients) == Run.Status.SUCCEEDED
    authz = azure_clients.authorization(SUB)
    assert not [a for a in authz.role_assignments.list_for_scope(RG_ID) if a.principal_id == intruder]

    reconcile(clients=azure_clients)

    statuses = {(i.kind, i.field): i.status for i in ws.drift_items.all()}
    assert statuses == {
        ("changed", "max_nodes"): Status.REMEDIATED,
        ("changed", "idle_seconds"): Status.ACCEPTED,
        ("access_removed", "role_assignment"): Status.REMEDIATED,
        ("access_added", "role_assignment"): Status.REMEDIATED,
        ("unmanaged", ""): Status.OPEN,
    }
    stray = standin.state.resource(f"{RG_ID}/providers/Microsoft.Storage/storageAccounts/byhandstorage01")
    assert stray is not None and not stray.get("tags")  # reported, never touched
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"drift.accepted", "cluster.updated", "drift.remediating", "drift.remediated"} <= actions
    assert audit_verify_chain()[1] is None


def test_an_unmanaged_resource_is_never_remediated(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    standin.outside.add_resource(SUB, RG, "byhandstorage02")
    reconcile(clients=azure_clients)
    item = ws.drift_items.get(kind="unmanaged")

    with pytest.raises(drift.DriftError, match="not made by the portal"):
        drift.drift_remediate(workspace_id=ws.pk, actor=bob, item_ids=[item.pk])
    with pytest.raises(drift.DriftError, match="no open drift the portal can remediate by itself"):
        drift.drift_remediate(workspace_id=ws.pk, actor=bob)

    drift.drift_accept(item_ids=[item.pk], actor=bob, reason="the team's scratch account")
    reconcile(clients=azure_clients)
    item.refresh_from_db()
    assert (item.status, item.closed_at) == (Status.ACCEPTED, None)  # a standing exception, seen again
    assert item.last_seen > item.first_seen
    assert ws.drift_items.count() == 1


def test_reconciling_twice_changes_nothing_the_second_time(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    standin.outside.resize_cluster(SUB, RG, WS, "ds3-v2-cluster", max_nodes=3)
    reconcile(clients=azure_clients)
    before = (
        list(ws.drift_items.values_list("pk", "status", "expected", "actual", "first_seen")),
        list(ws.observed.order_by("pk").values_list("pk", "azure_id", "properties")),
        AuditEvent.objects.count(),
    )

    again = reconcile(clients=azure_clients)

    after = (
        list(ws.drift_items.values_list("pk", "status", "expected", "actual", "first_seen")),
        list(ws.observed.order_by("pk").values_list("pk", "azure_id", "properties")),
        AuditEvent.objects.count(),
    )
    assert after == before
    assert (again["workspaces"][0]["found"], again["workspaces"][0]["resolved"]) == (0, 0)
    # The admins were told once: by the reconcile that found the drift, not the one that saw it again.
    told = Notification.objects.filter(kind=NotificationKind.DRIFT_FOUND, channel="mail")
    assert list(told.values_list("recipients", flat=True)) == [[bob.email]]


def test_drift_fixed_in_azure_is_resolved_and_audited(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    standin.outside.resize_cluster(SUB, RG, WS, "ds3-v2-cluster", min_nodes=1)
    reconcile(clients=azure_clients)
    standin.outside.resize_cluster(SUB, RG, WS, "ds3-v2-cluster", min_nodes=0)

    reconcile(clients=azure_clients)

    item = ws.drift_items.get()
    assert item.status == Status.RESOLVED and item.closed_at is not None
    assert AuditEvent.objects.filter(action="drift.resolved", object_id=str(item.pk)).exists()


def test_a_vm_size_changed_in_azure_cannot_be_remediated_in_place_and_reopens(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    standin.outside.resize_cluster(SUB, RG, WS, "ds3-v2-cluster", vm_size="STANDARD_D13_V2")
    reconcile(clients=azure_clients)

    fix = drift.drift_remediate(workspace_id=ws.pk, actor=bob)
    assert _run(fix, azure_clients) == Run.Status.FAILED

    item = ws.drift_items.get()
    assert (item.status, item.remediation_id) == (Status.OPEN, fix.pk)
    reopened = AuditEvent.objects.get(action="drift.reopened")
    assert "ClusterChangeRefused" in reopened.message


def test_reads_per_workspace_stay_within_the_budget(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    from tests.factories import tutorial_spec

    provisioned(standin, azure_clients, alice, bob)
    provisioned(standin, azure_clients, alice, bob, spec=tutorial_spec(team="redgranit"))
    standin.state.clear_requests()

    summary = reconcile(clients=azure_clients)

    arm_reads = [
        r
        for r in standin.state.requests
        if r.method == "GET" and not r.operation.startswith(("graph", "entra"))
    ]
    assert len(summary["workspaces"]) == 2
    assert len(arm_reads) == sum(w["reads"] for w in summary["workspaces"])
    assert len(arm_reads) / 2 <= 12
    assert len(arm_reads) == 2 * 4 + 1  # group, resources, computes, assignments; role names once
    assert [r for r in standin.state.requests if r.method != "GET" and r.operation != "entra.token"] == []
