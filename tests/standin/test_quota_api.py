"""The Quota API in the stand-in, through azure-mgmt-quota: limits, increase requests and their status."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.quota import QuotaMgmtClient

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB, error_code

SCOPE = f"subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/eastus2"
USAGES = f"/subscriptions/{SUB}/providers/Microsoft.MachineLearningServices/locations/eastus2/usages"


@pytest.fixture
def quota(standin: StandIn, azure_clients: AzureClients) -> Any:
    client = QuotaMgmtClient(
        azure_clients.credential(),
        SUB,
        base_url=standin.base_url,
        credential_scopes=[f"{standin.base_url}/.default"],
    )
    yield client
    client.close()


def _request(family: str, limit: int) -> dict[str, Any]:
    return {
        "properties": {"limit": {"limitObjectType": "LimitValue", "value": limit}, "name": {"value": family}}
    }


def _usage_limit(raw: Any, name: str) -> int:
    rows = raw.request("GET", f"{USAGES}?api-version=2023-08-01-preview").json()["value"]
    return int(
        next(r["limit"] for r in rows if r["name"]["value"] == name and "/resourceGroups/" not in r["id"])
    )


def test_limits_are_the_azureml_usages_limits(quota: Any, raw: Any) -> None:
    listed = {q.name: q.properties.limit.value for q in quota.quota.list(SCOPE)}
    one = quota.quota.get("standardEDSv4Family", SCOPE)

    assert (
        listed["standardDSv2Family"]
        == _usage_limit(raw, "Standard DSv2 Family Cluster Dedicated vCPUs")
        == 48
    )
    assert listed["totalLowPriorityCores"] == 100
    assert one.properties.limit.value == 32
    assert one.properties.name.localized_value == "Standard EDSv4 Family vCPUs"
    assert one.id.endswith("/providers/Microsoft.Quota/Quotas/standardEDSv4Family")


def test_unknown_resource_name_is_refused(quota: Any) -> None:
    with pytest.raises(HttpResponseError) as refused:
        quota.quota.get("standardXYZFamily", SCOPE)

    assert refused.value.status_code == 400
    assert error_code(refused.value) == "InvalidResourceName"


def test_increase_is_in_progress_then_granted_everywhere(standin: StandIn, quota: Any, raw: Any) -> None:
    standin.set_quota(delay=0.3)
    captured: list[Any] = []
    quota.quota.begin_create_or_update(
        "standardDSv2Family",
        SCOPE,
        _request("standardDSv2Family", 96),
        polling=False,
        raw_response_hook=lambda response: captured.append(response.http_response),
    )
    answer = captured[0]
    request_id = answer.headers["Location"].split("/quotaRequests/")[1].split("?")[0]

    first = quota.quota_request_status.get(request_id, SCOPE)
    time.sleep(0.35)
    done = quota.quota_request_status.get(request_id, SCOPE)

    assert answer.status_code == 202
    assert first.properties.provisioning_state == "InProgress"
    assert quota.quota.get("standardDSv2Family", SCOPE).properties.limit.value == 96
    assert done.properties.provisioning_state == "Succeeded"
    assert done.properties.value[0].limit.value == 96
    assert _usage_limit(raw, "Standard DSv2 Family Cluster Dedicated vCPUs") == 96


def test_sdk_poller_ends_with_the_quota_request(standin: StandIn, quota: Any) -> None:
    poller = quota.quota.begin_create_or_update(
        "totalLowPriorityCores", SCOPE, _request("totalLowPriorityCores", 150), polling_interval=0
    )

    result = poller.result()

    assert result.id.endswith(f"/providers/Microsoft.Quota/quotaRequests/{result.name}")
    assert quota.quota.get("totalLowPriorityCores", SCOPE).properties.limit.value == 150


def test_increase_above_the_maximum_fails_with_contact_support(standin: StandIn, quota: Any) -> None:
    standin.set_quota(maximum=60)
    captured: list[Any] = []
    quota.quota.begin_create_or_update(
        "standardDSv2Family",
        SCOPE,
        _request("standardDSv2Family", 61),
        polling=False,
        raw_response_hook=lambda response: captured.append(response.http_response),
    )
    request_id = captured[0].headers["Location"].split("/quotaRequests/")[1].split("?")[0]

    failed = quota.quota_request_status.get(request_id, SCOPE)

    assert failed.properties.provisioning_state == "Failed"
    assert failed.properties.error.code == "ContactSupport"
    assert failed.properties.message == "Request failed, please contact support."
    assert quota.quota.get("standardDSv2Family", SCOPE).properties.limit.value == 48
