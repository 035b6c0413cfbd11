"""Recording drift and acting on it: who may, what changes in the approved state, what is refused.

Observations are plain values (``provisioning.drift``) handed to the real recording service, as a worker
hands what it read from Azure; no Azure is needed here (``test_drift.py`` reads the stand-in).
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.core.exceptions import PermissionDenied

from provisioning.models import AuditEvent, ChangeRequest, DriftItem, Membership, ResourceState, Workspace
from provisioning.plan import build_plan
from provisioning.spec import RequestSpec
from provisioning.workflow import drift, reconcile
from tests.factories import ClusterFactory, MembershipFactory, WorkspaceFactory
from tests.provisioning.observations import added, in_step, record, resized

pytestmark = pytest.mark.django_db
Status = DriftItem.Status


@pytest.fixture
def ws(policy, alice) -> Workspace:
    """Alice's active workspace: one cluster, one data scientist with a known object id."""
    workspace = WorkspaceFactory(owner=alice)
    ClusterFactory(workspace=workspace, name="cpu", max_nodes=2)
    MembershipFactory(
        workspace=workspace, principal_name="ds@contoso.com", object_id="0d5c0000-0000-0000-0000-000000000001"
    )
    return workspace


def test_an_observation_in_step_records_no_drift_and_what_azure_holds(ws) -> None:
    summary = record(ws, in_step(ws))

    assert summary["drift"] == [] and summary["found"] == 0
    kinds = sorted(set(ws.observed.values_list("kind", flat=True)))
    assert kinds == ["cluster", "resource", "resource_group", "role_assignment"]
    assert ws.observed.get(kind="cluster").properties["max_nodes"] == 2
    names = set(ws.observed.filter(kind="role_assignment").values_list("name", flat=True))
    assert names == {
        "Reader for ds@contoso.com",
        "Data Scientist for ds@contoso.com",
        "Storage Blob Data Contributor for ds@contoso.com",
        "Key Vault Secrets User for ds@contoso.com",
        "AcrPull for ds@contoso.com",
    }


def test_a_difference_seen_again_updates_its_item_instead_of_adding_one(ws) -> None:
    record(ws, resized(ws, max_nodes=40))
    record(ws, resized(ws, max_nodes=50))

    item = ws.drift_items.get()
    assert (item.status, item.expected, item.actual) == (Status.OPEN, 2, 50)
    assert AuditEvent.objects.filter(action="drift.found").count() == 1


def test_only_admins_accept_or_remediate(ws, alice, dana, charlie) -> None:
    record(ws, resized(ws, max_nodes=40))
    item = ws.drift_items.get()

    for who in (alice, dana, charlie):
        with pytest.raises(PermissionDenied):
            drift.drift_accept(item_ids=[item.pk], actor=who, reason="fine")
        with pytest.raises(PermissionDenied):
            drift.drift_remediate(workspace_id=ws.pk, actor=who)
    item.refresh_from_db()
    assert item.status == Status.OPEN
    assert list(drift.drift_items_visible_to(alice)) == []


@pytest.mark.parametrize(
    ("ids", "reason", "message"),
    [
        (["x"], "fine", "named by their numbers"),
        ([], "fine", "at least one"),
        (list(range(1, 502)), "fine", "at most 500"),
        ([999_999], "fine", "no drift item #999999"),
        (None, "   ", "a reason is required"),
        (None, "x" * 1001, "too long"),
    ],
)
def test_accepting_needs_open_items_and_a_short_reason(ws, bob, ids, reason, message) -> None:
    record(ws, resized(ws, max_nodes=40))
    item = ws.drift_items.get()

    with pytest.raises(drift.DriftError, match=message):
        drift.drift_accept(item_ids=[item.pk] if ids is None else ids, actor=bob, reason=reason)


def test_accepting_a_changed_setting_updates_the_cluster_and_closes_the_item(ws, bob) -> None:
    record(ws, resized(ws, max_nodes=40))
    item = ws.drift_items.get()

    drift.drift_accept(item_ids=[item.pk], actor=bob, reason="the team needs 40 nodes")

    item.refresh_from_db()
    assert (item.status, item.reason) == (Status.ACCEPTED, "the team needs 40 nodes")
    assert item.closed_at is not None  # taken into the approved state
    assert ws.clusters.get().max_nodes == 40
    changed = AuditEvent.objects.get(action="cluster.updated")
    assert (changed.before, changed.after, changed.actor) == ({"max_nodes": 2}, {"max_nodes": 40}, "bob")
    assert record(ws, resized(ws, max_nodes=40))["drift"] == []
    # Azure changing it again later is a new difference, not covered by the acceptance.
    assert len(record(ws, resized(ws, max_nodes=60))["drift"]) == 1


def test_min_nodes_cannot_pass_max_nodes_by_acceptance(ws, bob) -> None:
    record(ws, resized(ws, min_nodes=3, max_nodes=3))
    items = {i.field: i for i in ws.drift_items.all()}

    with pytest.raises(drift.DriftError, match="accept its max_nodes item together"):
        drift.drift_accept(item_ids=[items["min_nodes"].pk], actor=bob, reason="warm nodes")
    drift.drift_accept(item_ids=[i.pk for i in items.values()], actor=bob, reason="warm nodes")
    assert (ws.clusters.get().min_nodes, ws.clusters.get().max_nodes) == (3, 3)


def test_accepting_a_missing_cluster_takes_it_out_of_the_approved_state(ws, bob) -> None:
    record(ws, replace(in_step(ws), clusters=()))
    item = ws.drift_items.get()
    assert item.kind == "missing"

    drift.drift_accept(item_ids=[item.pk], actor=bob, reason="deleted on purpose")

    assert ws.clusters.get().state == ResourceState.REVOKED
    assert list(
        AuditEvent.objects.filter(object_type="cluster").order_by("id").values_list("action", flat=True)
    ) == [
        "cluster.revoking",
        "cluster.revoked",
    ]
    assert record(ws, replace(in_step(ws), clusters=()))["drift"] == []


def test_access_added_with_a_portal_role_on_the_workspace_becomes_a_membership(ws, bob) -> None:
    approved = reconcile.approved_state(ws)
    scope = approved.resource_id("Microsoft.MachineLearningServices/workspaces", ws.workspace_name)
    before = added(ws, "Data Scientist", "0d5c0000-0000-0000-0000-0000000000ff", scope)
    record(ws, before)
    item = ws.drift_items.get()

    drift.drift_accept(item_ids=[item.pk], actor=bob, reason="joined the team last week")

    member = ws.memberships.get(object_id="0d5c0000-0000-0000-0000-0000000000ff")
    assert (member.principal_name, member.persona, member.state) == (
        "new@contoso.com",
        "data_scientist",
        "active",
    )
    assert member.change_request is None
    assert AuditEvent.objects.filter(action="membership.accepted", object_id=str(member.pk)).exists()
    # Now a member: the other roles of the persona are expected, and missing.
    drift_now = record(ws, before)["drift"]
    assert {d["kind"] for d in drift_now} == {"access_removed"} and len(drift_now) == 6


def test_other_access_added_stays_an_accepted_exception(ws, bob) -> None:
    record(ws, added(ws, "Owner", "0d5c0000-0000-0000-0000-0000000000ee"))
    item = ws.drift_items.get()

    drift.drift_accept(item_ids=[item.pk], actor=bob, reason="break-glass account")

    item.refresh_from_db()
    assert (item.status, item.closed_at) == (Status.ACCEPTED, None)
    assert not ws.memberships.filter(object_id="0d5c0000-0000-0000-0000-0000000000ee").exists()
    record(ws, added(ws, "Owner", "0d5c0000-0000-0000-0000-0000000000ee"))
    assert list(ws.drift_items.values_list("status", flat=True)) == [Status.ACCEPTED]


def test_a_remediation_plan_has_the_shape_of_every_plan(
    ws, bob, rq_queue, django_capture_on_commit_callbacks
) -> None:
    approved = reconcile.approved_state(ws)
    seen = added(ws, "Owner", "0d5c0000-0000-0000-0000-0000000000ee")
    seen = replace(
        seen,
        clusters=tuple(replace(c, max_nodes=9) for c in seen.clusters),
        assignments=seen.assignments[1:],  # the member's first grant removed
    )
    record(ws, seen)
    owner = ws.drift_items.get(kind="access_added")

    with django_capture_on_commit_callbacks(execute=True):
        cr = drift.drift_remediate(
            workspace_id=ws.pk, actor=bob, item_ids=list(ws.drift_items.values_list("pk", flat=True))
        )

    ordinary = build_plan(
        RequestSpec(), kind="grant_access", request_id=1, owner="x", existing_names=approved.names
    )
    assert set(cr.plan) == {*ordinary, "removals"}
    assert cr.plan["clusters"] == [
        {
            "name": "cpu",
            "vm_size": "STANDARD_DS3_V2",
            "priority": "low_priority",
            "min_nodes": 0,
            "max_nodes": 2,
            "idle_seconds": 120,
        }
    ]
    assert cr.plan["removals"] == [
        {
            "kind": "role_assignment",
            "azure_id": owner.resource_id,
            "name": f"Owner for new@contoso.com on {approved.group_id}",
        }
    ]
    assert [ra["principal"] for ra in cr.plan["role_assignments"]] == ["ds@contoso.com"]
    assert cr.plan["resources"] == [] and cr.plan["workspace_quotas"] == []
    assert set(ws.drift_items.values_list("status", flat=True)) == {Status.REMEDIATING}
    moves = (
        AuditEvent.objects.filter(request_id=cr.pk, action__startswith="request.")
        .order_by("id")
        .values_list("action", "actor")
    )
    assert list(moves) == [
        ("request.created", "bob"),
        ("request.submitted", "bob"),
        ("request.approved", "bob"),
    ]
    # The provisioning run, once (besides the delivery of its notifications).
    assert [j for j in rq_queue.job_ids if not j.startswith("notifications-")] == [
        f"provision-request-{cr.pk}-run-1"
    ]


def test_items_being_remediated_are_left_to_their_run(ws, bob, rq_queue) -> None:
    record(ws, resized(ws, max_nodes=40))
    drift.drift_remediate(workspace_id=ws.pk, actor=bob)

    record(ws, in_step(ws))  # Azure already back, the run not finished

    assert ws.drift_items.get().status == Status.REMEDIATING
    with pytest.raises(drift.DriftError, match="not open"):
        drift.drift_accept(item_ids=[ws.drift_items.get().pk], actor=bob, reason="changed my mind")


def test_a_member_revoked_since_cannot_get_access_back_by_remediation(ws, bob) -> None:
    seen = in_step(ws)
    record(ws, replace(seen, assignments=seen.assignments[1:]))
    Membership.objects.filter(workspace=ws).delete()  # gone from the approved state meanwhile

    with pytest.raises(drift.DriftError, match="no longer an active member"):
        drift.drift_remediate(workspace_id=ws.pk, actor=bob)
    assert not ChangeRequest.objects.filter(kind="remediate_drift").exists()


def test_a_lead_asks_for_a_reconcile_of_a_workspace_they_manage_only(
    ws, alice, charlie, dana, rq_queue
) -> None:
    assert reconcile.reconcile_request(workspace_id=ws.pk, actor=alice) == "queued"
    assert reconcile.reconcile_request(workspace_id=ws.pk, actor=alice) == "already queued"
    for outsider in (charlie, dana):
        with pytest.raises(PermissionDenied):
            reconcile.reconcile_request(workspace_id=ws.pk, actor=outsider)
    assert AuditEvent.objects.filter(action="workspace.reconcile_requested").count() == 1
    assert rq_queue.job_ids == [f"reconcile-workspace-{ws.pk}"]
