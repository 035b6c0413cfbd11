"""Cost Management's ``Query_Usage`` over a subscription or a resource group (api-version 2025-03-01).

The body is checked like the ``QueryDefinition`` of the spec (type, timeframe or a Custom timePeriod,
dataset with Daily granularity, at most two Sum aggregations of a cost column, at most two groupings by a
dimension or a tag) and the answer is a table shaped like Microsoft's examples: the aggregations as Number
columns, the grouping columns as String, ``UsageDate`` (yyyymmdd, a Number) when Daily, ``Currency``.

The figures are made up, deterministically: every priced resource under the scope costs something every
day of the period up to today, at a daily rate by type (a cluster by its nodes at the size's hourly price,
storage, registry by SKU, key vault, Application Insights) times a jitter hashed from the resource id and
the day. Ids, groups and types come back lowercased, as Cost Management returns them. No paging: every
page holds at most ``PAGE_SIZE`` rows; ``nextLink`` (POSTed again with the same body) carries a
``$skiptoken`` to the next, null on the last page.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from provisioning.standin import catalog
from provisioning.standin.arm import RG, SUB, Context, require_api_version, require_group
from provisioning.standin.arm_ml import COMPUTE
from provisioning.standin.resource_shapes import COMPONENT, REGISTRY, STORAGE, VAULT
from provisioning.standin.wire import Request, Response, Route, arm_error, route

QUERY = r"/providers/Microsoft\.CostManagement/query"
TYPES = ("usage", "actualcost", "amortizedcost")
TIMEFRAMES = (
    "monthtodate",
    "billingmonthtodate",
    "thelastmonth",
    "thelastbillingmonth",
    "weektodate",
    "custom",
)
COST_COLUMNS = ("pretaxcost", "cost", "costusd", "pretaxcostusd")
DIMENSIONS = {
    "resourcegroup": lambda r: r["group"],
    "resourcegroupname": lambda r: r["group"],
    "resourceid": lambda r: r["id"],
    "resourcetype": lambda r: r["type"],
    "resourcelocation": lambda r: r["location"],
    "subscriptionid": lambda r: r["sub"],
}
CURRENCY = "USD"
# Daily rates in USD of what is not a cluster (a month of each is roughly its list price).
DAILY_RATES = {STORAGE.lower(): 0.8, VAULT.lower(): 0.03, COMPONENT.lower(): 0.25}
REGISTRY_RATES = {"basic": 0.167, "standard": 0.667, "premium": 1.667}
LOW_PRIORITY_DISCOUNT = 0.2
PAGE_SIZE = 1000


def _bad(message: str) -> Exception:
    return arm_error(400, "BadRequest", f"Invalid query definition: {message}")


def _jitter(resource_id: str, day: date, spread: float = 0.2) -> float:
    """A factor in [1 - spread, 1 + spread], the same for the same resource and day."""
    digest = hashlib.sha256(f"{resource_id.lower()}|{day.isoformat()}".encode()).digest()
    return 1 - spread + 2 * spread * (int.from_bytes(digest[:4], "big") / 0xFFFFFFFF)


def _cluster_daily(res: dict[str, Any], day: date) -> float:
    """A cluster's day: its minimum nodes all day plus a made-up share of the rest, at the size's price."""
    inner = (res.get("properties") or {}).get("properties") or {}
    size = catalog.vm_size(res["location"], str(inner.get("vmSize") or ""))
    if size is None:
        return 0.0
    scale = inner.get("scaleSettings") or {}
    low, high = int(scale.get("minNodeCount") or 0), int(scale.get("maxNodeCount") or 0)
    busy = (_jitter(res["id"], day, 0.5) - 0.5) * 0.4  # 0 to 40 % of the optional nodes
    nodes = max(low, int(inner.get("currentNodeCount") or 0)) + busy * max(0, high - low)
    hourly = float(size["estimatedVMPrices"]["values"][0]["retailPrice"])
    if inner.get("vmPriority") == "LowPriority":
        hourly *= LOW_PRIORITY_DISCOUNT
    return nodes * hourly * 24


def daily_cost(res: dict[str, Any], day: date) -> float:
    """What a resource costs on a day (0 for what Cost Management would not list)."""
    rtype = str(res["type"]).lower()
    if rtype == COMPUTE.lower():
        return _cluster_daily(res, day)
    if rtype == REGISTRY.lower():
        rate = REGISTRY_RATES.get(str((res.get("sku") or {}).get("name", "")).lower(), 0.167)
    else:
        rate = DAILY_RATES.get(rtype, 0.0)
    return rate * _jitter(res["id"], day)


def period(body: dict[str, Any], today: date) -> tuple[date, date]:
    """The first and last day the query covers (both included, never past today)."""
    frame = str(body.get("timeframe") or "").lower()
    first = today.replace(day=1)
    if frame in ("monthtodate", "billingmonthtodate"):
        return first, today
    if frame == "weektodate":
        return today - timedelta(days=today.weekday()), today
    if frame in ("thelastmonth", "thelastbillingmonth"):
        last = first - timedelta(days=1)
        return last.replace(day=1), last
    window = body.get("timePeriod")
    if not isinstance(window, dict) or not window.get("from") or not window.get("to"):
        raise _bad("timeframe Custom needs timePeriod with 'from' and 'to'.")
    try:
        start = datetime.fromisoformat(str(window["from"]).replace("Z", "+00:00")).date()
        end = datetime.fromisoformat(str(window["to"]).replace("Z", "+00:00")).date()
    except ValueError as exc:
        raise _bad(f"timePeriod: {exc}.") from exc
    if end < start:
        raise _bad("timePeriod 'to' is before 'from'.")
    if (end - start).days > 366:
        raise _bad("timePeriod is longer than one year.")
    return start, min(end, today)


def _checked_dataset(body: dict[str, Any]) -> tuple[list[tuple[str, str]], list[tuple[str, str]], bool]:
    """The aggregations (alias, column), groupings (kind, name) and whether daily, or a 400."""
    if str(body.get("type") or "").lower() not in TYPES:
        raise _bad("'type' must be one of Usage, ActualCost, AmortizedCost.")
    if str(body.get("timeframe") or "").lower() not in TIMEFRAMES:
        raise _bad("'timeframe' is required (MonthToDate, TheLastMonth, WeekToDate, Custom, ...).")
    if body.get("timePeriod") is not None and str(body["timeframe"]).lower() != "custom":
        raise _bad("timePeriod is allowed only with timeframe Custom.")
    dataset = body.get("dataset")
    if not isinstance(dataset, dict):
        raise _bad("'dataset' is required.")
    granularity = str(dataset.get("granularity") or "None")
    if granularity.lower() not in ("daily", "none"):
        raise _bad(f"granularity '{granularity}' is not supported; use Daily.")
    aggregation = dataset.get("aggregation") or {}
    if not isinstance(aggregation, dict) or not aggregation or len(aggregation) > 2:
        raise _bad("dataset.aggregation needs one or two entries.")
    aggregations = []
    for alias, agg in aggregation.items():
        if not isinstance(agg, dict) or str(agg.get("function") or "").lower() != "sum":
            raise _bad(f"aggregation '{alias}' must have function Sum.")
        if str(agg.get("name") or "").lower() not in COST_COLUMNS:
            raise _bad(f"aggregation '{alias}' must sum PreTaxCost, Cost, CostUSD or PreTaxCostUSD.")
        aggregations.append((str(alias), str(agg["name"])))
    grouping = dataset.get("grouping") or []
    if not isinstance(grouping, list) or len(grouping) > 2:
        raise _bad("dataset.grouping takes at most two groupings.")
    groupings = []
    for group in grouping:
        kind = str((group or {}).get("type") or "") if isinstance(group, dict) else ""
        name = str(group.get("name") or "") if isinstance(group, dict) else ""
        if kind.lower() not in ("dimension", "tagkey") or not name:
            raise _bad("each grouping needs a type (Dimension or TagKey) and a name.")
        if kind.lower() == "dimension" and name.lower() not in DIMENSIONS:
            raise _bad(f"grouping by dimension '{name}' is not supported.")
        groupings.append((kind.lower(), name))
    return aggregations, groupings, granularity.lower() == "daily"


def _matches(row: dict[str, Any], condition: Any) -> bool:
    """A resource against a QueryFilter (and, or, dimensions In, tags In)."""
    if not condition:
        return True
    if not isinstance(condition, dict):
        raise _bad("filter must be an object.")
    if "and" in condition:
        return all(_matches(row, c) for c in condition["and"])
    if "or" in condition:
        return any(_matches(row, c) for c in condition["or"])
    for key, value_of in (("dimensions", _dimension), ("tags", _tag)):
        expr = condition.get(key)
        if isinstance(expr, dict):
            wanted = {str(v).lower() for v in expr.get("values") or []}
            return value_of(row, str(expr.get("name") or "")).lower() in wanted
    raise _bad("filter needs and, or, dimensions or tags.")


def _dimension(row: dict[str, Any], name: str) -> str:
    value_of: Callable[[dict[str, Any]], str] | None = DIMENSIONS.get(name.lower())
    if value_of is None:
        raise _bad(f"dimension '{name}' is not supported.")
    return value_of(row)


def _tag(row: dict[str, Any], name: str) -> str:
    return str(row["tags"].get(name, ""))


class CostApi:
    """Query_Usage at subscription and resource group scope."""

    def __init__(self, ctx: Context, today: Callable[[], date] | None = None) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.today = today or (lambda: datetime.now(UTC).date())

    def routes(self) -> list[Route]:
        return [
            route("POST", SUB + QUERY, "cost.query", self.query),
            route("POST", RG + QUERY, "cost.query", self.query),
        ]

    def query(self, req: Request) -> Response:
        require_api_version(req)
        sub, rg = req.params["sub"], req.params.get("rg")
        scope = f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else "")
        if rg:
            require_group(self.ctx, sub, rg)
        body = req.json()
        aggregations, groupings, daily = _checked_dataset(body)
        start, end = period(body, self.today())
        dataset = body["dataset"]
        table: dict[tuple[Any, ...], float] = defaultdict(float)
        for res in self._resources(scope):
            if not _matches(res, dataset.get("filter")):
                continue
            keys = tuple(_dimension(res, n) if k == "dimension" else _tag(res, n) for k, n in groupings)
            day = start
            while day <= end:
                amount = daily_cost(res["resource"], day)
                if amount > 0:
                    table[(*keys, int(day.strftime("%Y%m%d")) if daily else None)] += amount
                day += timedelta(days=1)
        answer = self._answer(scope, aggregations, groupings, daily, table)
        return Response(200, self._page(req, answer))

    def _page(self, req: Request, answer: dict[str, Any]) -> dict[str, Any]:
        """One page of the answer's rows, with the link to the next."""
        token = req.query.get("$skiptoken", "0")
        offset = int(token) if token.isdigit() else 0
        rows = answer["properties"]["rows"]
        answer["properties"]["rows"] = rows[offset : offset + PAGE_SIZE]
        if offset + PAGE_SIZE < len(rows):
            query = urlencode({"api-version": req.query["api-version"], "$skiptoken": offset + PAGE_SIZE})
            answer["properties"]["nextLink"] = f"{req.base_url}{req.path}?{query}"
        return answer

    def _resources(self, scope: str) -> list[dict[str, Any]]:
        """The resources under a scope, with the values Cost Management groups by (lowercased)."""
        prefix = scope.lower() + "/"
        found = []
        for res in self.state.resources.values():
            rid = str(res["id"]).lower()
            if not rid.startswith(prefix) or "/resourcegroups/" not in rid:
                continue
            parts = rid.split("/")
            found.append(
                {
                    "resource": res,
                    "id": rid,
                    "type": str(res["type"]).lower(),
                    "group": parts[4],
                    "sub": parts[2],
                    "location": str(res.get("location") or ""),
                    "tags": res.get("tags") or {},
                }
            )
        return found

    def _answer(
        self,
        scope: str,
        aggregations: list[tuple[str, str]],
        groupings: list[tuple[str, str]],
        daily: bool,
        table: dict[tuple[Any, ...], float],
    ) -> dict[str, Any]:
        columns = [{"name": column, "type": "Number"} for _alias, column in aggregations]
        columns += [{"name": name, "type": "String"} for _kind, name in groupings]
        if daily:
            columns.append({"name": "UsageDate", "type": "Number"})
        columns.append({"name": "Currency", "type": "String"})
        rows = []
        for key in sorted(table, key=lambda k: (k[-1] or 0, k[:-1])):
            amount = round(table[key], 6)
            row: list[Any] = [amount for _ in aggregations]
            row += list(key[:-1])
            if daily:
                row.append(key[-1])
            rows.append([*row, CURRENCY])
        name = str(uuid.uuid4())
        return {
            "id": f"{scope}/providers/Microsoft.CostManagement/query/{name}",
            "name": name,
            "type": "microsoft.costmanagement/Query",
            "location": None,
            "sku": None,
            "eTag": None,
            "properties": {"nextLink": None, "columns": columns, "rows": rows},
        }
