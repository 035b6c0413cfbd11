"""Injected faults, as azure-core and azure-ai-ml experience them."""

from __future__ import annotations

import time

import pytest
from azure.ai.ml.entities import AmlCompute
from azure.core.exceptions import HttpResponseError

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB, TAGS


def test_throttling_retry_after_is_honoured_by_azure_core(
    standin: StandIn, azure_clients: AzureClients
) -> None:
    standin.fail_next("resource_group.create", status=429, retry_after=1)
    started = time.monotonic()

    azure_clients.resources(SUB).resource_groups.create_or_update("throttled", {"location": "eastus2"})

    assert time.monotonic() - started >= 1
    assert standin.state.status_codes("resource_group.create") == [429, 201]
    assert standin.state.requests[-1].fault is False


def test_repeated_503_ends_in_an_error_after_azure_cores_retries(
    standin: StandIn, azure_clients: AzureClients
) -> None:
    standin.fail_next("resource_group.get", status=503, retry_after=0.05, times=10)

    with pytest.raises(HttpResponseError) as caught:
        azure_clients.resources(SUB).resource_groups.get("anything")

    assert caught.value.status_code == 503
    assert caught.value.error.code == "ServiceUnavailable"
    assert standin.state.status_codes("resource_group.get") == [503] * 4  # the call and three retries


def test_a_failed_long_running_operation_raises_with_azures_message(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    from azure.ai.ml.entities import Workspace

    ml = azure_clients.ml(SUB, group, "faultws")
    ml.workspaces.begin_create(
        Workspace(
            name="faultws",
            location="eastus2",
            tags=dict(TAGS),
            storage_account=dependencies["storage"],
            key_vault=dependencies["key_vault"],
            container_registry=dependencies["registry"],
            application_insights=dependencies["app_insights"],
        )
    ).result()
    standin.lro_fail("compute.create", "ClusterCreationFailed", "Allocation failed: no capacity in eastus2.")

    with pytest.raises(HttpResponseError) as caught:
        ml.compute.begin_create_or_update(
            AmlCompute(name="unlucky", size="STANDARD_DS3_V2", max_instances=1)
        ).result()

    assert caught.value.error.code == "ClusterCreationFailed"
    assert "Allocation failed: no capacity in eastus2." in str(caught.value)
    stored = standin.state.list_resources("compute")[0]
    assert stored["properties"]["provisioningState"] == "Failed"


def test_a_failed_storage_creation_raises_and_leaves_no_account(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    standin.lro_fail("storage.create", "StorageAccountCreationFailed", "The storage cluster is full.")

    with pytest.raises(HttpResponseError) as caught:
        azure_clients.storage(SUB).storage_accounts.begin_create(
            group,
            "unluckystore",
            {"location": "eastus2", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}},
        ).result()

    assert caught.value.error.code == "StorageAccountCreationFailed"
    assert standin.state.list_resources("storage") == []


def test_knobs_refuse_unknown_operations(standin: StandIn) -> None:
    with pytest.raises(ValueError, match="unknown stand-in operation"):
        standin.fail_next("storage.craete")
    with pytest.raises(ValueError, match="not a long-running operation"):
        standin.lro_fail("app_insights.create", "Failed", "no")
