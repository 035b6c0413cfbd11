"""The provisioning engine against the local Azure stand-in (real SDK clients over HTTPS)."""

from __future__ import annotations

from typing import Any

import pytest

from provisioning.engine import executor as engine
from provisioning.models import AuditEvent, ChangeRequest, Membership, Run, Step, Workspace
from provisioning.spec import ClusterSpec, RequestSpec
from provisioning.workflow import services
from tests.factories import TUTORIAL_MEMBERS, TUTORIAL_SUBSCRIPTION, ChangeRequestFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]


def _principals(standin: Any) -> None:
    for member in TUTORIAL_MEMBERS:
        standin.add_user(member.principal)
    standin.add_group("datasciencegroup")


def _approved_tutorial(alice: Any, bob: Any) -> ChangeRequest:
    return ChangeRequestFactory(requester=alice, approver=bob, approved=True)


def test_tutorial_example_is_provisioned(policy, alice, bob, standin, azure_clients, rq_queue) -> None:
    _principals(standin)
    cr = _approved_tutorial(alice, bob)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.SUCCEEDED
    rg = f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourceGroups/bgmr-bluegranit-eastus2-dev"
    group = standin.state.resource(rg)
    assert group["tags"]["managed-by"] == "azureml-portal"
    assert group["tags"]["dept"] == "bgmr"
    storage = {a["name"]: a for a in standin.state.list_resources("Microsoft.Storage/storageAccounts")}
    assert set(storage) == {"bgmrbluegranite2devwork", "bgmrbluegranite2devdata", "bgmrbluegranite2devbig"}
    work_props = storage["bgmrbluegranite2devwork"]["properties"]
    assert work_props["supportsHttpsTrafficOnly"] is True
    assert work_props["minimumTlsVersion"] == "TLS1_2"
    assert work_props["allowBlobPublicAccess"] is False
    assert storage["bgmrbluegranite2devbig"]["properties"]["isHnsEnabled"] is True
    assert not work_props.get("isHnsEnabled")
    vault = standin.state.list_resources("Microsoft.KeyVault/vaults")[0]
    assert vault["properties"]["enableRbacAuthorization"] is True
    assert vault["properties"]["enablePurgeProtection"] is True
    registry = standin.state.list_resources("Microsoft.ContainerRegistry/registries")[0]
    assert registry["properties"]["adminUserEnabled"] is False
    assert registry["sku"]["name"] == "Basic"
    workspace = standin.state.list_resources("Microsoft.MachineLearningServices/workspaces")[0]
    assert workspace["name"] == "bgmrbluegranite2devws"
    computes = {
        c["name"]: c
        for c in standin.state.list_resources("Microsoft.MachineLearningServices/workspaces/computes")
    }
    assert set(computes) == {"ds3-v2-cluster", "ds13-v2-2ndclust", "nv6-gpucluster"}
    scale = computes["ds13-v2-2ndclust"]["properties"]["properties"]["scaleSettings"]
    assert scale["minNodeCount"] == 0 and scale["maxNodeCount"] == 2
    assert computes["ds13-v2-2ndclust"]["properties"]["properties"]["vmPriority"] == "Dedicated"
    # 5 principals x 8 scopes, each exactly once.
    assignments = standin.state.list_role_assignments()
    assert len(assignments) == 40
    triples = {
        (
            a["properties"]["principalId"],
            a["properties"]["roleDefinitionId"],
            a["properties"]["scope"].lower(),
        )
        for a in assignments
    }
    assert len(triples) == 40
    assert {d["properties"]["roleName"] for d in standin.state.list_role_definitions()} == {
        "Data Scientist",
        "Team Lead",
    }
    # Desired state and the audit.
    ws = Workspace.objects.get()
    assert ws.state == "active" and ws.azure_id.endswith("/workspaces/bgmrbluegranite2devws")
    assert Membership.objects.filter(state="active").exclude(object_id="").count() == 5
    steps = Step.objects.filter(run__change_request=cr)
    assert steps.count() == steps.filter(status="succeeded").count()
    assert AuditEvent.objects.filter(request_id=cr.pk, action="step.succeeded").count() == steps.count()


def test_same_plan_twice_creates_nothing_new_and_sends_no_failing_request(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    _principals(standin)
    cr = _approved_tutorial(alice, bob)
    engine.request_execute(request_id=cr.pk, clients=azure_clients)
    before = (len(standin.state.list_resources()), len(standin.state.list_role_assignments()))
    standin.state.clear_requests()

    # Run the very same plan again as a new run (what an admin's retry of the plan does).
    ChangeRequest.objects.filter(pk=cr.pk).update(status=ChangeRequest.Status.FAILED)
    Step.objects.filter(run__change_request=cr).update(status=Step.Status.FAILED)
    services.request_retry(request_id=cr.pk, actor=bob)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    assert (len(standin.state.list_resources()), len(standin.state.list_role_assignments())) == before
    failing = [
        (r.method, r.path, r.status) for r in standin.state.requests if r.status >= 400 and r.status != 404
    ]
    assert failing == []
    assert not [r for r in standin.state.requests if r.method in ("PUT", "PATCH", "DELETE")]


def test_revoking_a_member_removes_exactly_the_assignments_the_portal_made(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    _principals(standin)
    cr = _approved_tutorial(alice, bob)
    engine.request_execute(request_id=cr.pk, clients=azure_clients)
    user2 = Membership.objects.get(principal_name="user2@contoso.com")
    rg_scope = f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourceGroups/bgmr-bluegranit-eastus2-dev"
    # Someone grants user2 Contributor on the resource group outside the portal.
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

    authz = azure_clients.authorization(TUTORIAL_SUBSCRIPTION)
    contributor = next(iter(authz.role_definitions.list(rg_scope, filter="roleName eq 'Contributor'"))).id
    authz.role_assignments.create(
        rg_scope,
        "0b9d4a1e-1111-4c2d-9a8b-000000000001",
        RoleAssignmentCreateParameters(
            role_definition_id=contributor, principal_id=user2.object_id, principal_type="User"
        ),
    )

    revoke = ChangeRequestFactory(
        requester=alice,
        approver=bob,
        kind="revoke_access",
        spec=RequestSpec(revoke=(user2.pk,)),
        workspace=Workspace.objects.get(),
        approved=True,
    )
    assert engine.request_execute(request_id=revoke.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    left = standin.state.list_role_assignments(principal_id=user2.object_id)
    assert [a["properties"]["roleDefinitionId"] for a in left] == [contributor]
    assert len(standin.state.list_role_assignments()) == 40 - 8 + 1
    user2.refresh_from_db()
    assert user2.state == "revoked"


def test_adding_a_cluster_to_an_existing_workspace(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    _principals(standin)
    cr = _approved_tutorial(alice, bob)
    engine.request_execute(request_id=cr.pk, clients=azure_clients)
    more = ChangeRequestFactory(
        requester=alice,
        approver=bob,
        kind="add_clusters",
        spec=RequestSpec(clusters=(ClusterSpec("gpu-big", "STANDARD_NV6", "dedicated", max_nodes=2),)),
        workspace=Workspace.objects.get(),
        approved=True,
    )

    assert engine.request_execute(request_id=more.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    names = {
        c["name"]
        for c in standin.state.list_resources("Microsoft.MachineLearningServices/workspaces/computes")
    }
    assert "gpu-big" in names and len(names) == 4
