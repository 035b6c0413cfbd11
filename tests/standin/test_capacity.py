"""AzureML capacity in the stand-in: VM sizes, usages with cores used outside the portal, quotas, listings."""

from __future__ import annotations

from typing import Any

import pytest
from azure.ai.ml.entities import AmlCompute, Workspace
from azure.core.exceptions import HttpResponseError

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn, catalog
from tests.standin.conftest import SUB, TAGS

LOCATION = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations"
API = "api-version=2023-08-01-preview"


@pytest.fixture
def workspace_id(azure_clients: AzureClients, group: str, dependencies: dict[str, str]) -> str:
    created = (
        azure_clients.ml(SUB, group, "capacityws")
        .workspaces.begin_create(
            Workspace(
                name="capacityws",
                location="eastus2",
                tags=dict(TAGS),
                storage_account=dependencies["storage"],
                key_vault=dependencies["key_vault"],
                container_registry=dependencies["registry"],
                application_insights=dependencies["app_insights"],
            )
        )
        .result()
    )
    return str(created.id)


def test_at_least_four_regions_have_their_own_offer() -> None:
    offers = {name: catalog.REGIONS[name] for name in ("eastus2", "westeurope", "westus2", "northeurope")}

    assert (
        len(
            {
                (o.dedicated_total, o.low_priority_total, tuple(o.family_limits.items()))
                for o in offers.values()
            }
        )
        == 4
    )
    assert all(o.outside_use for o in offers.values())
    assert all(
        sum(o.outside_use.values()) <= o.dedicated_total and o.outside_low_priority <= o.low_priority_total
        for o in offers.values()
    )
    assert all(o.outside_use[f] <= o.family_limits[f] for o in offers.values() for f in o.outside_use)


def test_vm_sizes_include_the_edsv4_family(standin: StandIn, raw: Any) -> None:
    sizes = raw.request("GET", f"{LOCATION}/northeurope/vmSizes?{API}").json()["value"]

    e4 = next(s for s in sizes if s["name"] == "Standard_E4ds_v4")
    assert (e4["family"], e4["vCPUs"], e4["gpus"], e4["memoryGB"], e4["lowPriorityCapable"]) == (
        "standardEDSv4Family",
        4,
        0,
        32.0,
        True,
    )
    assert set(e4) >= {"osVhdSizeMB", "maxResourceVolumeMB", "estimatedVMPrices", "supportedComputeTypes"}


def test_usages_count_cores_used_outside_the_portal(standin: StandIn, raw: Any) -> None:
    rows = raw.request("GET", f"{LOCATION}/eastus2/usages?{API}").json()["value"]

    by_name = {r["name"]["value"]: r for r in rows}
    dsv2 = by_name["Standard DSv2 Family Cluster Dedicated vCPUs"]
    assert dsv2 == {
        "id": f"/subscriptions/{SUB}/usages/Standard_DSv2_Family_Cluster_Dedicated_vCPUs",
        "amlWorkspaceLocation": "eastus2",
        "type": "Microsoft.MachineLearningServices/vmFamily/usages",
        "currentValue": 20,
        "limit": 48,
        "unit": "Count",
        "name": {
            "value": "Standard DSv2 Family Cluster Dedicated vCPUs",
            "localizedValue": "Standard DSv2 Family Cluster Dedicated vCPUs",
        },
    }
    dedicated = by_name["Total Cluster Dedicated Regional vCPUs"]
    assert (dedicated["type"], dedicated["currentValue"], dedicated["limit"]) == (
        "Microsoft.MachineLearningServices/dedicatedCores/usages",
        36,
        100,
    )
    assert by_name["Total Cluster LowPriority Regional vCPUs"]["currentValue"] == 12


def test_a_cluster_beyond_what_other_workloads_left_is_refused(
    standin: StandIn, azure_clients: AzureClients, group: str, workspace_id: str
) -> None:
    ml = azure_clients.ml(SUB, group, "capacityws")

    with pytest.raises(HttpResponseError) as caught:
        ml.compute.begin_create_or_update(
            AmlCompute(name="huge", size="STANDARD_DS5_V2", min_instances=2, max_instances=2)
        ).result()

    assert caught.value.error.code == "QuotaExceeded"
    assert "Maximum allowed: 48, Current in use: 20, Additional requested: 32" in str(caught.value)


def test_quota_update_answers_in_the_shape_of_microsofts_example(
    standin: StandIn, raw: Any, workspace_id: str
) -> None:
    quota_id = f"{workspace_id}/quotas/Standard_EDSv4_Family_Cluster_Dedicated_vCPUs"
    item = {
        "id": quota_id,
        "type": "Microsoft.MachineLearningServices/workspaces/quotas",
        "limit": 12,
        "unit": "Count",
    }

    answer = raw.request("POST", f"{LOCATION}/eastus2/updateQuotas?{API}", json={"value": [item]})
    listed = raw.request("GET", f"{LOCATION}/eastus2/quotas?{API}").json()["value"]

    assert answer.status_code == 200
    assert answer.json() == {"value": [{**item, "status": "Success"}]}
    workspace_row = next(q for q in listed if q["id"] == quota_id)
    assert workspace_row == {
        "id": quota_id,
        "type": "Microsoft.MachineLearningServices/workspaces/quotas",
        "limit": 12,
        "unit": "Count",
        "name": {
            "value": "Standard EDSv4 Family Cluster Dedicated vCPUs",
            "localizedValue": "Standard EDSv4 Family Cluster Dedicated vCPUs",
        },
    }
    subscription_row = next(
        q
        for q in listed
        if q["id"] == f"/subscriptions/{SUB}/quotas/Standard_EDSv4_Family_Cluster_Dedicated_vCPUs"
    )
    assert (subscription_row["type"], subscription_row["limit"]) == (
        "Microsoft.MachineLearningServices/vmFamily/quotas",
        32,
    )


def test_workspaces_are_listed_by_subscription(
    standin: StandIn, azure_clients: AzureClients, workspace_id: str
) -> None:
    listed = list(azure_clients.ml_subscription(SUB).workspaces.list(scope="subscription"))

    assert [w.id for w in listed] == [workspace_id]
    assert standin.state.status_codes("workspace.list_by_subscription") == [200]
    assert (
        list(
            azure_clients.ml_subscription("00000000-0000-0000-0000-000000000001").workspaces.list(
                scope="subscription"
            )
        )
        == []
    )
