"""AzureML capacity of a location: VM sizes, usages and quotas (list, and ``updateQuotas``).

Clusters use quota by their current nodes (a new cluster starts at its minimum): dedicated nodes count
against the VM family's limit, the regional dedicated total and the workspace's quota when one is set;
low-priority nodes count against the regional low-priority total only, as in AzureML.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from provisioning.standin import catalog
from provisioning.standin.arm import SUB, Context, require, require_api_version
from provisioning.standin.arm_ml import COMPUTE, WORKSPACE
from provisioning.standin.state import State
from provisioning.standin.wire import Request, Response, Route, arm_error, route

LOCATION_PATH = SUB + r"/providers/Microsoft\.MachineLearningServices/locations/(?P<loc>[^/]+)"
QUOTA_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearningServices/"
    r"workspaces/[^/]+/quotas/(?P<quota>[^/]+)$",
    re.IGNORECASE,
)
DEDICATED_TOTAL = "Total Cluster Dedicated Regional vCPUs"
LOW_PRIORITY_TOTAL = "Total Cluster LowPriority Regional vCPUs"


@dataclass(frozen=True)
class Cluster:
    """An AmlCompute cluster as quota sees it."""

    id: str
    workspace_id: str  # lowercased
    family: catalog.VmFamily
    vcpus: int
    low_priority: bool


def clusters(state: State, sub: str, location: str) -> list[Cluster]:
    """The AmlCompute clusters of a subscription in a location that hold (or will hold) nodes."""
    found = []
    for res in state.resources.values():
        props = res.get("properties") or {}
        if (
            res["type"] != COMPUTE
            or res["location"] != location
            or props.get("computeType") != "AmlCompute"
            or not res["id"].lower().startswith(f"/subscriptions/{sub.lower()}/")
            or props.get("provisioningState") in ("Failed", "Deleting")
        ):
            continue
        inner = props.get("properties") or {}
        size = catalog.vm_size(location, str(inner.get("vmSize") or ""))
        if size is not None:
            nodes = int(inner.get("currentNodeCount") or 0)
            found.append(
                Cluster(
                    res["id"],
                    res["id"].lower().split("/computes/")[0],
                    catalog.FAMILIES[size["family"]],
                    nodes * int(size["vCPUs"]),
                    inner.get("vmPriority") == "LowPriority",
                )
            )
    return found


def usage(state: State, sub: str, location: str, exclude: str = "") -> Counter[Any]:
    """vCPUs in use: "lp", "dedicated", ("sub", family) and (workspace id, family).

    The subscription's figures include the region's ``outside_use``: cores of workloads outside any
    workspace the stand-in holds, which Azure counts all the same.
    """
    used: Counter[Any] = Counter()
    offer = catalog.region(location)
    if offer is not None:
        used["lp"] += offer.outside_low_priority
        for family, vcpus in offer.outside_use.items():
            used["dedicated"] += vcpus
            used[("sub", family)] += vcpus
    for cluster in clusters(state, sub, location):
        if cluster.id.lower() == exclude.lower():
            continue
        if cluster.low_priority:
            used["lp"] += cluster.vcpus
            continue
        used["dedicated"] += cluster.vcpus
        used[("sub", cluster.family.family)] += cluster.vcpus
        used[(cluster.workspace_id, cluster.family.family)] += cluster.vcpus
    return used


LOW_PRIORITY_KEY = "lowPriority"


def subscription_offer(state: State, sub: str, location: str) -> catalog.Region | None:
    """The location's offer with the subscription's limits raised through the Quota API applied.

    The Quota API and AzureML's usages answer the same limit for a family: a granted increase shows in
    both, and the compute checks enforce it.
    """
    offer = catalog.region(location)
    if offer is None:
        return None
    raised = {
        key: limit
        for (s, loc, key), limit in state.subscription_limits.items()
        if s == sub.lower() and loc == location
    }
    if not raised:
        return offer
    families = {f: raised.get(f, limit) for f, limit in offer.family_limits.items()}
    return dataclasses.replace(
        offer,
        family_limits=families,
        low_priority_total=raised.get(LOW_PRIORITY_KEY, offer.low_priority_total),
    )


def workspace_limit(state: State, ws_id: str, family: catalog.VmFamily, offer: catalog.Region) -> int:
    """The workspace's dedicated quota for a family: as set by updateQuotas, else the family's limit."""
    limit = state.quotas.get((ws_id.lower(), family.quota_key().lower()))
    return offer.family_limits.get(family.family, 0) if limit is None else limit


def _usage_row(rid: str, kind: str, name: str, current: int, limit: int, location: str) -> dict[str, Any]:
    return {
        "id": rid,
        "amlWorkspaceLocation": location,
        "type": f"Microsoft.MachineLearningServices/{kind}/usages",
        "currentValue": current,
        "limit": limit,
        "unit": "Count",
        "name": {"value": name, "localizedValue": name},
    }


def _quota_row(rid: str, rtype: str, family: catalog.VmFamily, limit: int) -> dict[str, Any]:
    name = family.quota_name()
    return {
        "id": rid,
        "type": rtype,
        "limit": limit,
        "unit": "Count",
        "name": {"value": name, "localizedValue": name},
    }


class QuotaApi:
    """VirtualMachineSizes_List, Usages_List, Quotas_List and Quotas_Update of a location."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        return [
            route("GET", LOCATION_PATH + r"/vmSizes", "vm_sizes.list", self.vm_sizes),
            route("GET", LOCATION_PATH + r"/usages", "usages.list", self.usages),
            route("GET", LOCATION_PATH + r"/quotas", "quotas.list", self.quotas),
            route("POST", LOCATION_PATH + r"/updateQuotas", "quotas.update", self.update_quotas),
        ]

    def _location(self, req: Request) -> tuple[str, catalog.Region]:
        require_api_version(req)
        location = catalog.normalize_location(req.params["loc"])
        offer = subscription_offer(self.state, req.params["sub"], location)
        if offer is None:
            raise arm_error(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{location}' is not available for resource type "
                "'Microsoft.MachineLearningServices/locations'. List of available regions for the "
                f"resource type is '{','.join(catalog.LOCATIONS)}'.",
            )
        return location, offer

    def vm_sizes(self, req: Request) -> Response:
        location, _offer = self._location(req)
        return Response(200, {"value": catalog.vm_sizes(location)})

    def usages(self, req: Request) -> Response:
        location, offer = self._location(req)
        sub = req.params["sub"]
        used = usage(self.state, sub, location)
        found = clusters(self.state, sub, location)
        base = f"/subscriptions/{sub}/usages"
        rows = [
            _usage_row(base, "totalCores", "Clusters", len(found), 200, location),
            _usage_row(
                base, "dedicatedCores", DEDICATED_TOTAL, used["dedicated"], offer.dedicated_total, location
            ),
            _usage_row(
                base, "lowPriorityCores", LOW_PRIORITY_TOTAL, used["lp"], offer.low_priority_total, location
            ),
        ]
        for family_id, limit in offer.family_limits.items():
            family = catalog.FAMILIES[family_id]
            rows.append(
                _usage_row(
                    f"{base}/{family.quota_key()}",
                    "vmFamily",
                    family.quota_name(),
                    used[("sub", family_id)],
                    limit,
                    location,
                )
            )
        rows += [row for cluster in found for row in self._cluster_rows(cluster, used, offer, location)]
        return Response(200, {"value": _unique(rows)})

    def _cluster_rows(
        self, cluster: Cluster, used: Counter[Any], offer: catalog.Region, location: str
    ) -> list[dict[str, Any]]:
        """A cluster's usage row, and its workspace's for the family (dedicated clusters only)."""
        family, low = cluster.family, cluster.low_priority
        limit = -1 if low else offer.family_limits.get(family.family, 0)
        rows = [
            _usage_row(
                f"{cluster.id}/usages/{family.quota_key(low)}",
                "workspaces/computes",
                family.quota_name(low),
                cluster.vcpus,
                limit,
                location,
            )
        ]
        if not low:
            ws_id = cluster.id.split("/computes/")[0]
            rows.append(
                _usage_row(
                    f"{ws_id}/usages/{family.quota_key()}",
                    "workspaces",
                    family.quota_name(),
                    used[(cluster.workspace_id, family.family)],
                    workspace_limit(self.state, ws_id, family, offer),
                    location,
                )
            )
        return rows

    def quotas(self, req: Request) -> Response:
        location, offer = self._location(req)
        sub = req.params["sub"]
        workspaces = [
            r
            for r in self.state.resources.values()
            if r["type"] == WORKSPACE
            and r["location"] == location
            and r["id"].lower().startswith(f"/subscriptions/{sub.lower()}/")
        ]
        rows: list[dict[str, Any]] = []
        for family_id, limit in offer.family_limits.items():
            family = catalog.FAMILIES[family_id]
            rows.append(
                _quota_row(
                    f"/subscriptions/{sub}/quotas/{family.quota_key()}",
                    "Microsoft.MachineLearningServices/vmFamily/quotas",
                    family,
                    limit,
                )
            )
            rows += [
                _quota_row(
                    f"{ws['id']}/quotas/{family.quota_key()}",
                    "Microsoft.MachineLearningServices/workspaces/quotas",
                    family,
                    workspace_limit(self.state, ws["id"], family, offer),
                )
                for ws in workspaces
            ]
        return Response(200, {"value": rows})

    def update_quotas(self, req: Request) -> Response:
        location, offer = self._location(req)
        body = req.json()
        require(body, "value")
        results = [self._update(req.params["sub"], location, offer, item) for item in body["value"]]
        return Response(200, {"value": results})

    def _update(self, sub: str, location: str, offer: catalog.Region, item: dict[str, Any]) -> dict[str, Any]:
        """One quota change, with the status AzureML reports for it."""
        quota_id, limit = str(item.get("id") or ""), int(item.get("limit") or 0)
        result = {
            "id": quota_id,
            "limit": limit,
            "unit": item.get("unit") or "Count",
            "type": item.get("type") or "Microsoft.MachineLearningServices/workspaces/quotas",
        }
        found = QUOTA_ID.search(quota_id)
        workspace = self.state.get(quota_id.split("/quotas/")[0])
        if found is None or workspace is None or workspace["location"] != location:
            return {**result, "status": "Failure"}
        family = next(
            (f for f in catalog.FAMILIES.values() if f.quota_key().lower() == found.group("quota").lower()),
            None,
        )
        if family is None or family.family not in offer.family_limits:
            return {**result, "status": "InvalidVMFamilyName"}
        if limit > offer.family_limits[family.family]:
            return {**result, "status": "InvalidQuotaExceedsSubscriptionLimit"}
        if limit < usage(self.state, sub, location)[(workspace["id"].lower(), family.family)]:
            return {**result, "status": "InvalidQuotaBelowClusterMinimum"}
        self.state.quotas[(workspace["id"].lower(), family.quota_key().lower())] = limit
        return {**result, "status": "Success"}


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop repeated rows (a workspace with several clusters of one family is listed once)."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for row in rows:
        key = (row["id"].lower(), row["name"]["value"])
        if key not in seen:
            seen.add(key)
            unique.append(row)
    return unique
