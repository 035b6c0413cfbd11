"""The guard over the clusters that exist in Azure, and workspaces made outside the portal.

Everything runs against the local Azure stand-in with the real SDK clients; clusters "made outside
the portal" are created directly with azure-ai-ml's MLClient, as someone with access to the
subscription would.
"""

from __future__ import annotations

import pytest

from provisioning import arm
from provisioning.audit import audit_verify_chain
from provisioning.azure import common, ml, quotas
from provisioning.capacity import guard
from provisioning.engine import capacity_sync
from provisioning.models import AllowedVmSize, AuditEvent, ClusterFlag, EnvironmentPolicy
from tests.provisioning.outside_portal import SUB, _outside_cluster, _outside_workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]


# --- the guard over the clusters that exist ----------------------------------------------------------------


def test_a_cluster_made_outside_the_portal_with_min_nodes_is_flagged_then_resolved(
    policy, standin, azure_clients
) -> None:
    group = _outside_workspace(azure_clients, "handmade")
    _outside_cluster(azure_clients, group, "handmade", "always-on", min_instances=1)

    first = capacity_sync.clusters_guard(azure_clients)

    assert (first["clusters"], first["opened"], first["errors"]) == (1, 1, [])
    flag = ClusterFlag.objects.get()
    assert (flag.kind, flag.workspace_name, flag.cluster_name, flag.resource_group) == (
        "min_nodes",
        "handmade",
        "always-on",
        group,
    )
    assert flag.managed_by_portal is False and flag.resolved_at is None
    assert flag.azure_id.endswith("/workspaces/handmade/computes/always-on")
    assert "no justification" in flag.detail
    opened = AuditEvent.objects.get(action="cluster_flag.opened")
    assert (opened.actor, opened.object_type, opened.object_id) == ("system", "cluster_flag", str(flag.pk))
    assert opened.workspace_name == "handmade"

    # Seen again: the same flag, still open, first seen unchanged; no new audit event.
    again = capacity_sync.clusters_guard(azure_clients)
    assert (again["opened"], again["resolved"]) == (0, 0)
    kept = ClusterFlag.objects.get()
    assert kept.first_seen == flag.first_seen and kept.last_seen > flag.last_seen
    assert AuditEvent.objects.filter(action__startswith="cluster_flag.").count() == 1

    _outside_cluster(azure_clients, group, "handmade", "always-on", min_instances=0)
    fixed = capacity_sync.clusters_guard(azure_clients)

    assert (fixed["opened"], fixed["resolved"]) == (0, 1)
    assert ClusterFlag.objects.get().resolved_at is not None
    resolved = AuditEvent.objects.get(action="cluster_flag.resolved")
    assert resolved.object_id == str(flag.pk)
    assert audit_verify_chain()[1] is None


def test_the_guard_applies_the_policy_of_the_environment_tag(policy, standin, azure_clients) -> None:
    pro = EnvironmentPolicy.for_environment("pro")
    pro.dedicated_allowed, pro.max_idle_seconds = False, 600
    pro.save()
    pro.allowed_sizes.set([AllowedVmSize.objects.get(name="STANDARD_DS3_V2")])
    group = _outside_workspace(azure_clients, "prodws", tags={"environment": "pro"})
    _outside_cluster(
        azure_clients, group, "prodws", "big", size="STANDARD_D13_V2", idle_time_before_scale_down=3600
    )
    _outside_cluster(azure_clients, group, "prodws", "fsv2", size="STANDARD_F4S_V2", tier="low_priority")

    capacity_sync.clusters_guard(azure_clients)

    flags = {(f.cluster_name, f.kind): f.detail for f in ClusterFlag.objects.all()}
    assert set(flags) == {("big", "idle_time"), ("big", "size"), ("big", "dedicated"), ("fsv2", "size")}
    assert "at most 600 s in the pro environment" in flags[("big", "idle_time")]
    assert flags[("big", "size")] == "STANDARD_D13_V2 is not allowed in the pro environment"
    assert flags[("fsv2", "size")] == "STANDARD_F4S_V2 is not a VM size the portal allows"
    assert AuditEvent.objects.filter(action="cluster_flag.opened").count() == 4


def test_without_an_environment_only_the_rules_of_every_environment_apply(
    policy, standin, azure_clients
) -> None:
    EnvironmentPolicy.objects.create(environment="res", max_idle_seconds=900, dedicated_allowed=False)
    EnvironmentPolicy.objects.create(environment="pro", max_idle_seconds=3000)
    group = _outside_workspace(azure_clients, "noenvws")
    _outside_cluster(azure_clients, group, "noenvws", "slow", idle_time_before_scale_down=2400)
    _outside_cluster(azure_clients, group, "noenvws", "slower", idle_time_before_scale_down=3600)

    capacity_sync.clusters_guard(azure_clients)

    flags = [(f.cluster_name, f.kind) for f in ClusterFlag.objects.all()]
    assert flags == [("slower", "idle_time")]  # dedicated and 2400 s are allowed in some environment
    assert "at most 3000 s in any environment" in ClusterFlag.objects.get().detail


def test_findings_name_the_justification_the_portal_recorded() -> None:
    cluster = quotas.ClusterListing(
        azure_id="/x/computes/warm",
        name="warm",
        location="eastus2",
        vm_size="STANDARD_DS3_V2",
        priority="low_priority",
        min_nodes=1,
        max_nodes=2,
        idle_seconds=120,
        tags={},
    )
    rules = guard.Rules(
        environment="dev",
        allowed_sizes=frozenset({"STANDARD_DS3_V2"}),
        portal_sizes=frozenset({"STANDARD_DS3_V2"}),
        max_idle_seconds=1800,
        dedicated_allowed=True,
    )

    [(kind, detail)] = guard.cluster_findings(cluster, rules, justification="nightly batch SLA")

    assert kind == "min_nodes"
    assert (
        detail
        == "1 nodes stay up (and bill) while idle; the portal recorded a justification: nightly batch SLA"
    )


def test_a_workspace_made_outside_the_portal_is_never_taken_over(policy, standin, azure_clients) -> None:
    group = _outside_workspace(azure_clients, "handws")
    ids = {
        r["type"]: r["id"]
        for r in standin.state.list_resources()
        if f"/resourcegroups/{group}/" in r["id"].lower()
    }
    writes = ("workspace.create", "workspace.update", "workspace.deployment")
    before = [standin.state.count(op) for op in writes]

    with pytest.raises(common.AzureStepError) as raised:
        ml.ensure_workspace(
            azure_clients,
            subscription=SUB,
            resource_group=group,
            name="handws",
            location="eastus2",
            tags={arm.OWNERSHIP_TAG: arm.OWNERSHIP_VALUE},
            storage_id=ids["Microsoft.Storage/storageAccounts"],
            key_vault_id=ids["Microsoft.KeyVault/vaults"],
            registry_id=ids["Microsoft.ContainerRegistry/registries"],
            app_insights_id=ids["Microsoft.Insights/components"],
        )

    assert raised.value.code == "NotManagedByPortal"
    assert "workspace 'handws' exists, not managed by the portal" in raised.value.message
    assert [standin.state.count(op) for op in writes] == before
