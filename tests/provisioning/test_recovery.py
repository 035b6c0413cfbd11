"""A failed request is amended and runs on, or abandoned: kept as Azure holds it, or rolled back.

The engine runs in-process against the stand-in (real SDK clients over HTTPS), as in test_faults.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import PermissionDenied

from provisioning.engine import executor as engine
from provisioning.engine.reconcile import reconcile
from provisioning.models import AuditEvent, ChangeRequest, Cluster, Membership, ResourceState, Run, Step
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import recovery, services
from provisioning.workflow.recovery import Amendment, ClusterChange
from provisioning.workflow.transitions import RequestError, TransitionError
from tests import factories
from tests.factories import TUTORIAL_CLUSTERS, TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, tutorial_workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

Status = ChangeRequest.Status
MEMBER = "user1@contoso.com"
UNKNOWN = "gone.away@contoso.com"
GROUP = f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourceGroups/bgmr-mend-eastus2-dev"


def _spec() -> RequestSpec:
    """A workspace with one cluster, a member Entra ID knows and one it does not."""
    return RequestSpec(
        workspace=tutorial_workspace(team="mend", data_lake=False, security_group=""),
        clusters=TUTORIAL_CLUSTERS[:1],
        members=(
            MemberSpec(principal=MEMBER, persona="team_lead"),
            MemberSpec(principal=UNKNOWN, persona="data_scientist"),
        ),
    )


def _failed_at_the_unknown_member(alice: Any, bob: Any, standin: Any, azure_clients: Any) -> ChangeRequest:
    """Entra ID does not know one member: the run fails at once, before anything is made in Azure."""
    standin.add_user(MEMBER)
    cr = ChangeRequestFactory(requester=alice, approver=bob, spec=_spec(), approved=True)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED
    cr.refresh_from_db()
    assert cr.status == Status.FAILED
    failed = Step.objects.get(run__change_request=cr, status=Step.Status.FAILED)
    assert (failed.kind, failed.error_code) == ("principal", "GraphLookupFailed")
    return cr


def _failed_at_the_cluster(alice: Any, bob: Any, standin: Any, azure_clients: Any) -> ChangeRequest:
    """Azure refuses the cluster: the workspace and its resources exist, the cluster does not."""
    standin.add_user(MEMBER)
    standin.add_user(UNKNOWN)
    standin.lro_fail("compute.create", "QuotaExceeded", "Not enough quota for 2 nodes of this size.")
    cr = ChangeRequestFactory(requester=alice, approver=bob, spec=_spec(), approved=True)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED
    cr.refresh_from_db()
    failed = Step.objects.get(run__change_request=cr, status=Step.Status.FAILED)
    assert (failed.kind, failed.error_code) == ("cluster", "QuotaExceeded")
    return cr


def _assignments_under(standin: Any, group: str = GROUP) -> list[dict[str, Any]]:
    """The role assignments at the group or below it."""
    return [
        a
        for a in standin.state.list_role_assignments()
        if a["properties"]["scope"].lower().startswith(group.lower())
    ]


def test_a_request_failed_at_an_unknown_member_is_amended_and_runs_to_succeeded(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    cr = _failed_at_the_unknown_member(alice, bob, standin, azure_clients)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == "nothing to do"

    recovery.request_amend(
        request_id=cr.pk, actor=alice, amendment=Amendment(reason="left the company", drop_members=(UNKNOWN,))
    )

    cr.refresh_from_db()
    assert cr.status == Status.PROVISIONING  # it only narrows access: no new approval
    assert [m["principal"] for m in cr.spec["members"]] == [MEMBER]
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    cr.refresh_from_db()
    assert cr.status == Status.SUCCEEDED
    states = dict(Membership.objects.filter(change_request=cr).values_list("principal_name", "state"))
    assert states == {MEMBER: ResourceState.ACTIVE, UNKNOWN: ResourceState.REVOKED}
    assert len(_assignments_under(standin)) == 7  # 7 scopes without a data lake
    amended = AuditEvent.objects.get(request_id=cr.pk, action="request.amended")
    assert (amended.actor, amended.message) == (alice.username, "left the company")
    assert amended.after["widens"] == []
    run2 = Run.objects.get(change_request=cr, number=2)
    assert run2.steps.filter(status=Step.Status.SKIPPED).exists()  # it continued from what was done


def test_a_wider_amendment_goes_back_to_an_approver_who_is_not_the_amender(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    cr = _failed_at_the_unknown_member(alice, bob, standin, azure_clients)
    standin.add_user("user2@contoso.com")

    recovery.request_amend(
        request_id=cr.pk,
        actor=bob,
        amendment=Amendment(reason="replaced by user2", replace_members=((UNKNOWN, "user2@contoso.com"),)),
    )

    cr.refresh_from_db()
    assert (cr.status, cr.amended_by, cr.approver) == (Status.SUBMITTED, bob, None)
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=cr.pk, approver=bob)
    carol = factories.admin("carol")
    services.request_approve(request_id=cr.pk, approver=carol)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    states = dict(Membership.objects.filter(change_request=cr).values_list("principal_name", "state"))
    assert states == {
        MEMBER: ResourceState.ACTIVE,
        UNKNOWN: ResourceState.REVOKED,
        "user2@contoso.com": ResourceState.ACTIVE,
    }
    assert len(_assignments_under(standin)) == 14


def test_keep_makes_the_workspace_managed_with_what_azure_holds(
    policy, alice, bob, standin, azure_clients, rq_queue, client
) -> None:
    cr = _failed_at_the_cluster(alice, bob, standin, azure_clients)
    granted = {
        key.split(":")[1]
        for key in Step.objects.filter(
            run__change_request=cr, kind="role_grant", status=Step.Status.SUCCEEDED
        ).values_list("key", flat=True)
    }

    recovery.request_keep(request_id=cr.pk, actor=bob, reason="the team starts without the cluster")

    cr.refresh_from_db()
    assert cr.status == Status.ABANDONED
    assert cr.workspace.state == ResourceState.ACTIVE
    assert cr.workspace.azure_id.endswith("/workspaces/bgmrmende2devws")
    assert set(Cluster.objects.filter(change_request=cr).values_list("state", flat=True)) == {"revoked"}
    states = dict(Membership.objects.filter(change_request=cr).values_list("principal_name", "state"))
    assert states == {
        m: ResourceState.ACTIVE if m in granted else ResourceState.REVOKED for m in (MEMBER, UNKNOWN)
    }
    assert AuditEvent.objects.get(request_id=cr.pk, action="request.abandoned").actor == bob.username
    # The request page shows what Azure holds of it once a reconcile has read it, as it is: Azure keeps the
    # cluster whose creation failed (the portal dropped it from the approved state).
    reconcile(workspace_ids=[cr.workspace_id], clients=azure_clients)
    client.force_login(alice)
    page = client.get(f"/requests/{cr.pk}/").content.decode()
    held = page.split("What Azure holds now of this request")[1]
    assert "bgmrmende2devwork" in held and "bgmrmende2devws" in held
    assert "ds3-v2-cluster" in held


def test_rollback_removes_what_the_request_created_and_nothing_else(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    # Someone else's group and storage account in the same subscription, made before the request.
    other = "rg-someone-else"
    azure_clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups.create_or_update(
        other, {"location": "eastus2"}
    )
    azure_clients.storage(TUTORIAL_SUBSCRIPTION).storage_accounts.begin_create(
        other, "someoneelsest", {"location": "eastus2", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}
    ).result()
    cr = _failed_at_the_cluster(alice, bob, standin, azure_clients)
    made = recovery.created_by(cr)
    assert {m["kind"] for m in made} >= {"resource_group", "workspace", "storage_account", "key_vault"}

    recovery.request_rollback(request_id=cr.pk, actor=bob, reason="the team was reorganised")
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.ROLLING_BACK
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    cr.refresh_from_db()
    assert cr.status == Status.ROLLED_BACK
    assert standin.state.resource(GROUP) is None
    names = {
        r["name"] for r in standin.state.list_resources() if r["type"] != "Microsoft.Resources/deployments"
    }
    assert "bgmrmende2devws" not in names and "bgmrmende2devwork" not in names
    assert {other, "someoneelsest"} <= names  # untouched
    assert _assignments_under(standin) == []
    assert {d["properties"]["roleName"] for d in standin.state.list_role_definitions()} == {
        "Data Scientist",
        "Team Lead",
    }  # shared with other workspaces: never removed
    assert cr.workspace.state == ResourceState.REVOKED
    assert set(Membership.objects.filter(change_request=cr).values_list("state", flat=True)) == {"revoked"}
    rollback = Run.objects.get(change_request=cr, purpose=Run.Purpose.ROLLBACK)
    assert {s.outcome for s in rollback.steps.all()} <= {"removed", "absent"}
    # A second delivery of the same job finds nothing to do.
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == "nothing to do"


def test_who_may_amend_and_abandon(
    policy, alice, bob, charlie, dana, standin, azure_clients, rq_queue
) -> None:
    cr = _failed_at_the_unknown_member(alice, bob, standin, azure_clients)
    drop = Amendment(reason="left", drop_members=(UNKNOWN,))
    for outsider in (charlie, dana):
        with pytest.raises(PermissionDenied):
            recovery.request_amend(request_id=cr.pk, actor=outsider, amendment=drop)
    for not_admin in (alice, charlie):
        with pytest.raises(PermissionDenied):
            recovery.request_keep(request_id=cr.pk, actor=not_admin, reason="keep")
        with pytest.raises(PermissionDenied):
            recovery.request_rollback(request_id=cr.pk, actor=not_admin, reason="undo")
    with pytest.raises(RequestError):
        recovery.request_amend(
            request_id=cr.pk, actor=alice, amendment=Amendment(reason="  ", drop_members=(UNKNOWN,))
        )
    with pytest.raises(RequestError):
        recovery.request_rollback(request_id=cr.pk, actor=bob, reason="x" * 2001)
    with pytest.raises(RequestError):
        recovery.request_amend(
            request_id=cr.pk, actor=alice, amendment=Amendment(reason="r", drop_members=("who@contoso.com",))
        )
    assert ChangeRequest.objects.get(pk=cr.pk).status == Status.FAILED


# --- without Azure: the database side of amendments --------------------------------------------------------


@pytest.mark.django_db
def test_a_cluster_azure_refused_is_lowered_and_runs_again(policy, alice, bob, rq_queue) -> None:
    refused = "ds13-v2-2ndclust"  # dedicated, 2 nodes
    cr = ChangeRequestFactory(requester=alice, approver=bob, failed=True, failed_step=f"cluster:{refused}")

    recovery.request_amend(
        request_id=cr.pk,
        actor=alice,
        amendment=Amendment(
            reason="quota: one low-priority node",
            clusters=(ClusterChange(name=refused, max_nodes=1, priority="low_priority"),),
        ),
    )

    cr.refresh_from_db()
    assert cr.status == Status.PROVISIONING  # lower: no new approval
    planned = next(c for c in cr.plan["clusters"] if c["name"] == refused)
    assert (planned["max_nodes"], planned["priority"]) == (1, "low_priority")
    row = Cluster.objects.get(change_request=cr, name=refused)
    assert (row.max_nodes, row.priority, row.state) == (1, "low_priority", ResourceState.PROVISIONING)
    run = Run.objects.get(change_request=cr, number=2)
    assert run.steps.get(key=f"cluster:{refused}").status == Step.Status.PENDING


@pytest.mark.django_db
def test_raising_a_cluster_goes_back_to_approval_and_a_created_cluster_is_not_amended(
    policy, alice, bob, rq_queue
) -> None:
    cr = ChangeRequestFactory(requester=alice, approver=bob, failed=True, failed_step="role_grant")
    created = cr.plan["clusters"][0]["name"]
    with pytest.raises(RequestError, match="exists in Azure already"):
        recovery.request_amend(
            request_id=cr.pk,
            actor=alice,
            amendment=Amendment(reason="r", clusters=(ClusterChange(name=created, max_nodes=1),)),
        )
    other = ChangeRequestFactory(
        requester=alice,
        approver=bob,
        failed=True,
        failed_step="cluster",
        spec=factories.tutorial_spec(team="other"),
    )
    name = other.plan["clusters"][0]["name"]
    recovery.request_amend(
        request_id=other.pk,
        actor=alice,
        amendment=Amendment(reason="more nodes", clusters=(ClusterChange(name=name, max_nodes=3),)),
    )
    assert ChangeRequest.objects.get(pk=other.pk).status == Status.SUBMITTED


@pytest.mark.django_db
def test_only_a_failed_request_is_amended(policy, alice, bob) -> None:
    cr = ChangeRequestFactory(requester=alice, approver=bob, succeeded=True)
    with pytest.raises(TransitionError):
        recovery.request_amend(
            request_id=cr.pk,
            actor=alice,
            amendment=Amendment(reason="r", drop_members=("user3@contoso.com",)),
        )
