"""Actual cost from Cost Management (``Query_Usage``, azure-mgmt-costmanagement): month to date, per day and
resource, for the portal's resource groups of one subscription.

One query per subscription, at subscription scope, grouped by ResourceGroupName and ResourceId (the two
groupings the API allows) and filtered to the portal's resource groups: one call however many workspaces
the subscription holds, where a query per resource group would cost one call per workspace against Cost
Management's tight per-scope throttling. The kind of each row comes from its resource id's type.
Returns plain dataclasses; raises only ``AzureStepError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from azure.core.rest import HttpRequest

from provisioning.arm import resource_type_of
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, azure_errors

COST_COLUMNS = ("pretaxcost", "cost", "costusd", "pretaxcostusd")
MAX_PAGES = 100


@dataclass(frozen=True)
class CostRow:
    """One day's cost of one resource, as Cost Management reports it (ids and groups lowercased)."""

    resource_group: str
    resource_id: str
    resource_type: str
    day: date
    amount: Decimal
    currency: str


def month_to_date_definition(resource_groups: Iterable[str]) -> dict[str, Any]:
    """The QueryDefinition: actual cost, month to date, daily, by resource group and resource."""
    return {
        "type": "ActualCost",
        "timeframe": "MonthToDate",
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [
                {"type": "Dimension", "name": "ResourceGroupName"},
                {"type": "Dimension", "name": "ResourceId"},
            ],
            "filter": {
                "dimensions": {
                    "name": "ResourceGroupName",
                    "operator": "In",
                    "values": sorted({g.lower() for g in resource_groups}),
                }
            },
        },
    }


def _day(value: Any) -> date:
    text = str(int(value)) if isinstance(value, int | float) else str(value)[:10].replace("-", "")
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _rows(columns: list[str], rows: list[list[Any]]) -> list[CostRow]:
    """The table read by column name (Cost Management does not promise an order)."""
    at = {name.lower(): i for i, name in enumerate(columns)}
    cost = next((at[c] for c in COST_COLUMNS if c in at), None)
    needed = ("resourcegroupname", "resourceid", "usagedate", "currency")
    if cost is None or any(c not in at for c in needed):
        raise AzureStepError("UnexpectedCostTable", f"Cost Management answered with columns {columns}")
    found = []
    for row in rows:
        resource_id = str(row[at["resourceid"]]).lower()
        found.append(
            CostRow(
                resource_group=str(row[at["resourcegroupname"]]).lower(),
                resource_id=resource_id,
                resource_type=resource_type_of(resource_id),
                day=_day(row[at["usagedate"]]),
                amount=Decimal(str(row[cost])),
                currency=str(row[at["currency"]]),
            )
        )
    return found


def month_to_date_costs(
    clients: AzureClients, *, subscription: str, resource_groups: Iterable[str]
) -> list[CostRow]:
    """What each resource of these resource groups cost each day this month (UTC), per Cost Management."""
    groups = list(resource_groups)
    if not groups:
        return []
    client, definition = clients.cost_management(), month_to_date_definition(groups)
    with azure_errors():
        result = client.query.usage(f"subscriptions/{subscription}", definition)
        if result is None:  # 204: nothing to report
            return []
        columns = [str(c.name) for c in result.columns or []]
        rows, link = list(result.rows or []), result.next_link
        for _ in range(MAX_PAGES):
            if not link:
                return _rows(columns, rows)
            page = _next_page(client, link, definition)
            rows += page.get("rows") or []
            link = page.get("nextLink")
    raise AzureStepError("CostTableTooLong", f"Cost Management's answer has more than {MAX_PAGES} pages")


def _next_page(client: Any, link: str, definition: dict[str, Any]) -> dict[str, Any]:
    """The next page: the query's body POSTed to ``nextLink`` (the SDK's ``usage`` does not follow it), through
    the client's own pipeline (credential, retries, TLS trust)."""
    response = client.send_request(HttpRequest("POST", link, json=definition))
    response.raise_for_status()
    return dict(response.json().get("properties") or {})
