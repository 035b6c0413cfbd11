"""Adopting workspaces the tutorial's scripts made: discovered, adopted as observed (nothing written to
Azure), reconciled and reported, refused any change, then taken over (the portal's tag on every resource).

Everything runs through the real SDK clients against the local Azure stand-in; the stand-in's request
log shows which calls reached Azure.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.engine import adoption as engine
from provisioning.engine.reconcile import reconcile
from provisioning.models import AuditEvent, ChangeRequest, Cluster, DriftItem, Membership, Workspace
from provisioning.spec import ClusterSpec, RequestSpec
from provisioning.workflow import adoption, drift, services
from provisioning.workflow.transitions import RequestError
from tests.provisioning.scripted import by_hand, by_the_scripts

pytestmark = pytest.mark.django_db(transaction=True)
WRITES = ("PUT", "PATCH", "DELETE")


def _writes(standin) -> list[str]:  # type: ignore[no-untyped-def]
    """ARM writes the stand-in received (POSTs are reads here: token and name checks are not ARM writes)."""
    return [f"{r.method} {r.path}" for r in standin.state.requests if r.method in WRITES]


@pytest.fixture
def discovered(standin, azure_clients, policy, rq_queue):  # type: ignore[no-untyped-def]
    """The scripts' workspace and a hand-made one in the stand-in, and a finished discovery of them."""
    ids = by_the_scripts(standin)
    by_hand(standin)
    standin.state.clear_requests()
    scan = engine.discovery_run(clients=azure_clients)
    return ids, scan


def test_discovery_finds_the_scripts_workspace_and_reads_the_convention_back(discovered, standin) -> None:
    ids, scan = discovered
    found = {w["name"]: w for w in scan.workspaces}

    churn = found["mktgchurne2devws"]
    assert churn["azure_id"] == ids["workspace"] and churn["managed_by_portal"] is False
    assert churn["convention"] == {
        "follows": True,
        "department": "mktg",
        "team": "churn",
        "region": "eastus2",
        "environment": "dev",
        "region_abbv": "e2",
        "reason": "",
    }
    assert churn["dependent_resources"]["container_registry"] == ids["registry"]
    assert [c["name"] for c in churn["clusters"]] == ["cpu-cluster"]
    assert churn["clusters"][0]["idle_seconds"] == 1800
    roles = sorted((a["role"], a["principal_name"]) for a in churn["role_assignments"])
    assert roles == [
        ("Data Scientist", "ds1@contoso.com"),
        ("Owner", "lead1@contoso.com"),
        ("Reader", "lead1@contoso.com"),
    ]
    sandbox = found["sandbox-ml"]
    assert sandbox["convention"]["follows"] is False and sandbox["convention"]["reason"]
    assert _writes(standin) == []


def test_adopted_workspace_is_observed_and_nothing_is_written_to_azure(
    discovered, standin, bob, alice
) -> None:
    ids, _ = discovered
    standin.state.clear_requests()

    ws = adoption.workspace_adopt(azure_id=ids["workspace"], team_lead="alice@contoso.com", actor=bob)

    ws.refresh_from_db()
    assert ws.is_observed and ws.state == "active" and ws.owner == alice and ws.adopted_by == bob
    assert (ws.department, ws.team, ws.region_abbv, ws.environment) == ("mktg", "churn", "e2", "dev")
    assert (ws.storage_data, ws.registry) == ("mktgchurne2devdata", "mktgchurne2devcr")
    assert list(ws.clusters.values_list("name", "state")) == [("cpu-cluster", "active")]
    assert list(ws.memberships.values_list("principal_name", "persona", "state")) == [
        ("ds1@contoso.com", "data_scientist", "active")
    ]
    assert AuditEvent.objects.filter(action="workspace.adopted", workspace_name=ws.workspace_name).exists()

    summary = reconcile(workspace_ids=[ws.pk], clients=azure_clients_of(standin))
    assert summary["errors"] == []
    items = DriftItem.objects.filter(workspace=ws)
    assert items.exists()  # the scripts' Owner and Reader grants, and the portal's matrix not met
    assert not items.filter(field=f"tags.{OWNERSHIP_TAG}").exists()  # untagged is what observed means
    assert _writes(standin) == []


def azure_clients_of(standin):  # type: ignore[no-untyped-def]
    from provisioning.azure.clients import AzureClients

    return AzureClients.from_settings()


def test_observed_workspace_refuses_remediation_and_requests(discovered, standin, bob, alice) -> None:
    ids, _ = discovered
    ws = adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=bob)
    reconcile(workspace_ids=[ws.pk], clients=azure_clients_of(standin))
    standin.state.clear_requests()

    with pytest.raises(drift.DriftError, match="observed"):
        drift.drift_remediate(workspace_id=ws.pk, actor=bob)
    spec = RequestSpec(clusters=(ClusterSpec(name="gpu", vm_size="STANDARD_NV6", max_nodes=1),))
    with pytest.raises(RequestError, match="observed"):
        services.request_create(
            requester=alice, kind=ChangeRequest.Kind.ADD_CLUSTERS, spec=spec, workspace=ws
        )
    assert not ChangeRequest.objects.filter(workspace=ws).exists()
    assert _writes(standin) == []


def test_adopting_twice_is_refused_and_unknown_team_leads_are_named(discovered, bob, alice, dana) -> None:
    ids, _ = discovered
    with pytest.raises(adoption.AdoptionError, match="sign in"):
        adoption.workspace_adopt(azure_id=ids["workspace"], team_lead="nobody@contoso.com", actor=bob)
    with pytest.raises(adoption.AdoptionError, match="not a team lead"):
        adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=dana, actor=bob)
    adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=bob)
    with pytest.raises(adoption.AdoptionError, match="already holds"):
        adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=bob)
    assert Workspace.objects.count() == 1 and Cluster.objects.count() == 1


def test_only_admins_adopt_discover_and_take_over(discovered, bob, alice) -> None:
    ids, _ = discovered
    with pytest.raises(PermissionDenied):
        adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=alice)
    with pytest.raises(PermissionDenied):
        adoption.discovery_request(actor=alice)
    ws = adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=bob)
    with pytest.raises(PermissionDenied):
        adoption.workspace_take_over(workspace_id=ws.pk, actor=alice)


def test_taking_over_tags_every_resource_then_changes_are_allowed(
    discovered, standin, azure_clients, bob, alice
) -> None:
    ids, _ = discovered
    ws = adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=bob)
    scopes = adoption.takeover_scopes(ws)
    assert {s["kind"] for s in scopes} == {
        "resource group",
        "workspace",
        "storage account",
        "key vault",
        "container registry",
        "application insights",
        "cluster",
    }
    adoption.workspace_take_over(workspace_id=ws.pk, actor=bob)

    first = engine.take_over_run(workspace_id=ws.pk, actor_id=bob.pk, clients=azure_clients)
    again = engine.take_over_run(workspace_id=ws.pk, actor_id=bob.pk, clients=azure_clients)

    assert first["status"] == "managed" and again["status"] == "already managed"
    for scope in scopes:
        tags = standin.state.resource(scope["azure_id"])["tags"]
        assert tags.get(OWNERSHIP_TAG) == OWNERSHIP_VALUE, scope
    tagged = AuditEvent.objects.filter(action="workspace.resource_tagged", workspace_name=ws.workspace_name)
    assert tagged.count() == len(scopes) == 8
    ws.refresh_from_db()
    assert not ws.is_observed
    assert AuditEvent.objects.filter(action="workspace.taken_over", actor=bob.username).exists()
    spec = RequestSpec(clusters=(ClusterSpec(name="gpu", vm_size="STANDARD_NV6", max_nodes=1),))
    cr = services.request_create(
        requester=alice, kind=ChangeRequest.Kind.ADD_CLUSTERS, spec=spec, workspace=ws
    )
    assert cr.workspace == ws
    with pytest.raises(adoption.AdoptionError, match="already managed"):
        adoption.workspace_take_over(workspace_id=ws.pk, actor=bob)


def test_the_unconventional_workspace_is_adopted_without_registry_or_data_storage(
    discovered, bob, alice
) -> None:
    _, scan = discovered
    sandbox = next(w for w in scan.workspaces if w["name"] == "sandbox-ml")

    ws = adoption.workspace_adopt(azure_id=sandbox["azure_id"], team_lead=alice, actor=bob)

    assert (ws.department, ws.team, ws.storage_data, ws.registry) == ("", "", "", "")
    assert ws.region == "westeurope" and ws.is_observed
    assert Membership.objects.filter(workspace=ws).count() == 0


def test_a_held_workspace_is_not_discovered_again(discovered, azure_clients, bob, alice) -> None:
    ids, _ = discovered
    adoption.workspace_adopt(azure_id=ids["workspace"], team_lead=alice, actor=bob)

    scan = engine.discovery_run(clients=azure_clients)

    assert [w["name"] for w in scan.workspaces] == ["sandbox-ml"]
