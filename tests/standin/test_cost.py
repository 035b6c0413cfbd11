"""Cost Management's Query_Usage in the stand-in: the examples' table shape, made-up daily figures, 400s."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from azure.ai.ml.entities import AmlCompute
from azure.core.exceptions import HttpResponseError

from provisioning.standin import StandIn
from tests.standin.conftest import SUB, Raw, error_code

API = "api-version=2025-03-01"
# The request of Microsoft's ResourceGroupQueryGrouping example (2025-03-01), with Daily granularity.
EXAMPLE = {
    "type": "Usage",
    "dataset": {
        "aggregation": {"totalCost": {"name": "PreTaxCost", "function": "Sum"}},
        "granularity": "Daily",
        "grouping": [{"name": "ResourceType", "type": "Dimension"}],
    },
    "timeframe": "MonthToDate",
}
EXAMPLE_COLUMNS = [
    {"name": "PreTaxCost", "type": "Number"},
    {"name": "ResourceType", "type": "String"},
    {"name": "UsageDate", "type": "Number"},
    {"name": "Currency", "type": "String"},
]


def _query(raw: Raw, scope: str, body: Any) -> Any:
    return raw.request("POST", f"{scope}/providers/Microsoft.CostManagement/query?{API}", json=body)


@pytest.fixture
def cluster(azure_clients: Any, workspace: str, group: str) -> str:
    azure_clients.ml(SUB, group, workspace).compute.begin_create_or_update(
        AmlCompute(name="gpu", size="Standard_DS3_v2", min_instances=1, max_instances=4)
    ).result()
    return "gpu"


def test_resource_group_query_has_the_examples_shape(raw: Raw, group: str, cluster: str) -> None:
    scope = f"/subscriptions/{SUB}/resourceGroups/{group}"

    answer = _query(raw, scope, EXAMPLE)

    assert answer.status_code == 200
    body = answer.json()
    assert body["type"] == "microsoft.costmanagement/Query"
    assert body["id"].startswith(f"{scope}/providers/Microsoft.CostManagement/query/")
    assert body["properties"]["columns"] == EXAMPLE_COLUMNS
    assert body["properties"]["nextLink"] is None
    today = datetime.now(UTC).date()
    rows = body["properties"]["rows"]
    types = {r[1] for r in rows}
    assert types == {
        "microsoft.storage/storageaccounts",
        "microsoft.keyvault/vaults",
        "microsoft.containerregistry/registries",
        "microsoft.insights/components",
        "microsoft.machinelearningservices/workspaces/computes",
    }
    days = {r[2] for r in rows}
    assert days == {int(date(today.year, today.month, d).strftime("%Y%m%d")) for d in range(1, today.day + 1)}
    assert all(isinstance(r[0], float) and r[0] > 0 and r[3] == "USD" for r in rows)
    compute = [r[0] for r in rows if r[1].endswith("/computes")]
    assert all(0.293 * 24 <= amount <= 0.293 * 24 * 2.2 for amount in compute)  # 1 node + up to 40 % of 3
    assert _query(raw, scope, EXAMPLE).json()["properties"]["rows"] == rows  # deterministic


def test_subscription_query_groups_by_resource_group_and_resource(raw: Raw, group: str, cluster: str) -> None:
    body = {
        "type": "ActualCost",
        "timeframe": "Custom",
        "timePeriod": {"from": "2026-01-01T00:00:00Z", "to": "2026-01-03T23:59:59Z"},
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [
                {"type": "Dimension", "name": "ResourceGroupName"},
                {"type": "Dimension", "name": "ResourceId"},
            ],
        },
    }

    table = _query(raw, f"/subscriptions/{SUB}", body).json()["properties"]

    assert [c["name"] for c in table["columns"]] == [
        "Cost",
        "ResourceGroupName",
        "ResourceId",
        "UsageDate",
        "Currency",
    ]
    assert {r[1] for r in table["rows"]} == {group.lower()}
    assert len(table["rows"]) == 5 * 3  # five priced resources x three days
    assert {r[3] for r in table["rows"]} == {20260101, 20260102, 20260103}


@pytest.mark.parametrize(
    "change",
    [
        {"type": "Bills"},
        {"timeframe": None},
        {"timeframe": "Custom"},
        {"dataset": None},
        {"dataset": {**EXAMPLE["dataset"], "granularity": "Monthly"}},  # type: ignore[dict-item]
        {"dataset": {**EXAMPLE["dataset"], "aggregation": {"t": {"name": "PreTaxCost", "function": "Avg"}}}},  # type: ignore[dict-item]
        {"dataset": {**EXAMPLE["dataset"], "grouping": [{"type": "Dimension", "name": "Meter"}]}},  # type: ignore[dict-item]
    ],
)
def test_a_malformed_body_is_a_400(raw: Raw, group: str, change: dict[str, Any]) -> None:
    body = {k: v for k, v in {**EXAMPLE, **change}.items() if v is not None}

    answer = _query(raw, f"/subscriptions/{SUB}/resourceGroups/{group}", body)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "BadRequest"
    assert answer.json()["error"]["message"].startswith("Invalid query definition")


def test_the_sdk_reads_the_table_and_a_missing_group_is_a_404(
    standin: StandIn, azure_clients: Any, group: str
) -> None:
    from azure.mgmt.costmanagement import CostManagementClient

    client = CostManagementClient(azure_clients.credential(), **azure_clients._arm_options())
    result = client.query.usage(f"subscriptions/{SUB}/resourceGroups/{group}", EXAMPLE)

    assert [c.name for c in result.columns] == [c["name"] for c in EXAMPLE_COLUMNS]
    assert result.rows == []  # an empty group costs nothing
    with pytest.raises(HttpResponseError) as caught:
        client.query.usage(f"subscriptions/{SUB}/resourceGroups/nothere", EXAMPLE)
    assert caught.value.status_code == 404 and error_code(caught.value) == "ResourceGroupNotFound"
    client.close()
