"""AzureML workspaces and computes through azure-ai-ml's MLClient from the portal's factory."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.ai.ml.entities import AmlCompute
from azure.core.exceptions import HttpResponseError

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB, TAGS, error_code
from tests.standin.conftest import workspace_entity as _workspace


def test_workspace_is_created_through_the_template_deployment(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    ml = azure_clients.ml(SUB, group, "bgmrbluegranite2devws")
    started = time.monotonic()

    created = ml.workspaces.begin_create(_workspace("bgmrbluegranite2devws", dependencies)).result()

    assert time.monotonic() - started < 3  # complete at once: azure-ai-ml's 5 s status loop never sleeps
    assert created.name == "bgmrbluegranite2devws"
    assert created.storage_account == dependencies["storage"]
    assert created.container_registry == dependencies["registry"]
    assert created.tags["managed-by"] == "azureml-portal"
    stored = standin.state.list_resources("workspace")[0]
    assert stored["properties"]["keyVault"] == dependencies["key_vault"]
    assert stored["properties"]["applicationInsights"] == dependencies["app_insights"]
    assert standin.state.status_codes("workspace.deployment") == [201]


def test_begin_create_on_an_existing_workspace_updates_it(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str], workspace: str
) -> None:
    standin.state.clear_requests()
    changed = _workspace(workspace, dependencies)
    changed.tags = {**TAGS, "cost-center": "42"}

    updated = azure_clients.ml(SUB, group, workspace).workspaces.begin_create(changed).result()

    assert updated.tags["cost-center"] == "42"
    assert standin.state.count("workspace.update") == 1
    assert standin.state.count("workspace.deployment") == 0


def test_a_failed_deployment_raises_with_azures_message(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    standin.lro_fail("workspace.deployment", "InternalServerError", "The workspace could not be provisioned.")

    poller = azure_clients.ml(SUB, group, "brokenws").workspaces.begin_create(
        _workspace("brokenws", dependencies)
    )
    # Let azure-ai-ml's deployment poller see the failure first, or its status loop sleeps 5 s first.
    time.sleep(0.3)
    with pytest.raises(HttpResponseError) as caught:
        poller.result()

    assert error_code(caught.value) == "DeploymentFailed"
    assert "The workspace could not be provisioned." in str(caught.value)
    assert standin.state.list_resources("workspace") == []


def test_aml_compute_cluster_keeps_its_settings(
    standin: StandIn, azure_clients: AzureClients, group: str, workspace: str
) -> None:
    ml = azure_clients.ml(SUB, group, workspace)

    cluster = ml.compute.begin_create_or_update(
        AmlCompute(
            name="ds3-v2-cluster",
            size="STANDARD_DS3_V2",
            min_instances=0,
            max_instances=2,
            tier="low_priority",
            idle_time_before_scale_down=120,
        )
    ).result()

    assert (cluster.size, cluster.tier) == ("STANDARD_DS3_V2", "low_priority")
    assert (cluster.min_instances, cluster.max_instances, cluster.idle_time_before_scale_down) == (0, 2, 120)
    stored = standin.state.list_resources("compute")[0]["properties"]["properties"]
    assert stored["vmPriority"] == "LowPriority"
    assert stored["scaleSettings"] == {
        "minNodeCount": 0,
        "maxNodeCount": 2,
        "nodeIdleTimeBeforeScaleDown": "PT2M",
    }
    assert [c.name for c in ml.compute.list()] == ["ds3-v2-cluster"]
    assert standin.state.status_codes("compute.create") == [201]


def test_a_cluster_with_min_above_max_is_refused(
    azure_clients: AzureClients, group: str, workspace: str
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        azure_clients.ml(SUB, group, workspace).compute.begin_create_or_update(
            AmlCompute(name="backwards", size="STANDARD_DS3_V2", min_instances=3, max_instances=2)
        ).result()

    assert caught.value.status_code == 400
    assert "minNodeCount 3" in str(caught.value)


def test_a_vm_size_the_region_does_not_offer_is_refused(
    azure_clients: AzureClients, group: str, workspace: str
) -> None:
    with pytest.raises(HttpResponseError, match="not supported for AmlCompute in location 'westus2'"):
        azure_clients.ml(SUB, group, workspace).compute.begin_create_or_update(
            AmlCompute(name="gpu", size="STANDARD_NV6", location="westus2", max_instances=1)
        ).result()


def test_vm_sizes_and_usage_of_a_location(
    standin: StandIn, azure_clients: AzureClients, group: str, workspace: str
) -> None:
    ml = azure_clients.ml(SUB, group, workspace)
    ml.compute.begin_create_or_update(
        AmlCompute(name="always-on", size="STANDARD_D13_V2", min_instances=2, max_instances=2)
    ).result()

    eastus2 = {s.name.upper() for s in ml.compute.list_sizes(location="eastus2")}
    westus2 = {s.name.upper() for s in ml.compute.list_sizes(location="westus2")}
    usage = {u.name["value"]: u for u in ml.compute.list_usage(location="eastus2")}

    assert {"STANDARD_DS3_V2", "STANDARD_D13_V2", "STANDARD_NV6"} <= eastus2
    assert "STANDARD_NV6" not in westus2
    dv2 = usage["Standard Dv2 Family Cluster Dedicated vCPUs"]
    # azure-ai-ml 1.35.2 leaves current_value empty; the service's value is in currentValue.
    assert (dv2.currentValue, dv2.limit) == (16, 24)


def test_workspace_quota_is_set_and_enforced(
    standin: StandIn, azure_clients: AzureClients, raw: Any, group: str, workspace: str
) -> None:
    ws_id = (
        f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/"
        f"workspaces/{workspace}"
    )
    quota_id = f"{ws_id}/quotas/Standard_DSv2_Family_Cluster_Dedicated_vCPUs"
    path = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/eastus2"

    update = raw.request(
        "POST",
        f"{path}/updateQuotas?api-version=2023-08-01-preview",
        json={
            "value": [
                {
                    "id": quota_id,
                    "type": "Microsoft.MachineLearningServices/workspaces/quotas",
                    "limit": 8,
                    "unit": "Count",
                },
                {"id": quota_id, "limit": 500, "unit": "Count"},
            ]
        },
    )
    listed = raw.request("GET", f"{path}/quotas?api-version=2023-08-01-preview").json()["value"]

    assert [r["status"] for r in update.json()["value"]] == [
        "Success",
        "InvalidQuotaExceedsSubscriptionLimit",
    ]
    assert next(q["limit"] for q in listed if q["id"] == quota_id) == 8
    with pytest.raises(HttpResponseError) as caught:
        azure_clients.ml(SUB, group, workspace).compute.begin_create_or_update(
            AmlCompute(name="too-big", size="STANDARD_DS3_V2", min_instances=3, max_instances=3)
        ).result()
    assert error_code(caught.value) == "QuotaExceeded"


def _deployments(azure_clients: AzureClients, group: str, query: str) -> Any:
    from azure.core.rest import HttpRequest

    url = f"/subscriptions/{SUB}/resourcegroups/{group}/providers/Microsoft.Resources/deployments/?{query}"
    return azure_clients.resources(SUB).send_request(HttpRequest("GET", url))


def test_a_groups_deployments_are_listed_by_provisioning_state(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    azure_clients.ml(SUB, group, "donews").workspaces.begin_create(
        _workspace("donews", dependencies)
    ).result()
    standin.set_latency("workspace.deployment", 1.0)
    running = azure_clients.ml(SUB, group, "slowws").workspaces.begin_create(
        _workspace("slowws", dependencies)
    )

    version = "api-version=2020-06-01"
    found = _deployments(azure_clients, group, f"{version}&$filter=provisioningState eq 'Running'").json()
    every = _deployments(azure_clients, group, version).json()
    refused = _deployments(azure_clients, group, f"{version}&$filter=name eq 'x'")
    running.result()

    assert [d["name"].rsplit("-", 1)[0] for d in found["value"]] == ["slowws"]
    assert found["value"][0]["properties"]["provisioningState"] == "Running"
    assert sorted(d["name"].rsplit("-", 1)[0] for d in every["value"]) == ["donews", "slowws"]
    assert refused.status_code == 400 and refused.json()["error"]["code"] == "InvalidFilter"
    assert (
        _deployments(azure_clients, group, f"{version}&$top=1")
        .json()["value"][0]["name"]
        .startswith("donews")
    )
