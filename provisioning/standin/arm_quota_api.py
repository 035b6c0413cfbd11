"""The Quota API (``Microsoft.Quota``, api-version 2025-09-01) at AzureML's scope: limits and increase requests.

Scope ``subscriptions/{s}/providers/Microsoft.MachineLearningServices/locations/{loc}``; resource names
are VM families (``standardDSv2Family``) or ``totalLowPriorityCores``, as in Microsoft's
``getMachineLearningServicesQuotaLimits.json``. The limits are the AzureML usages' limits of the same
subscription (``arm_quota.subscription_offer``), so a granted increase shows in both.

``Quota_CreateOrUpdate`` answers ``202`` with ``Location`` naming the quota request
(``…/providers/Microsoft.Quota/quotaRequests/{id}``, the URL Microsoft's example names in its 200), so the
SDK poller ends with the request. The request stays ``InProgress`` for the stand-in's ``quota_delay``
seconds, then ends ``Succeeded`` (the limit applied) or, above ``quota_max`` cores, ``Failed`` with the
``ContactSupport`` error of ``getQuotaRequestStatusFailed.json``. An unknown resource name answers
``400 InvalidResourceName`` (not from the specs).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from provisioning.standin import catalog
from provisioning.standin.arm import SUB, Context, require, require_api_version
from provisioning.standin.arm_quota import LOW_PRIORITY_KEY, subscription_offer
from provisioning.standin.state import Operation
from provisioning.standin.wire import Request, Response, Route, arm_error, route, utc_now

SCOPE = SUB + r"/providers/Microsoft\.MachineLearningServices/locations/(?P<loc>[^/]+)"
QUOTA = SCOPE + r"/providers/Microsoft\.Quota"
LOW_PRIORITY_NAME = "totalLowPriorityCores"
CONTACT_SUPPORT = {"code": "ContactSupport", "message": "Request failed, please contact support."}
RETRY_AFTER = "30"  # Microsoft's example; the portal's own poll schedule decides when it asks again


def _localized(name: str) -> str:
    if name == LOW_PRIORITY_NAME:
        return "Total Regional Low-priority vCPUs"
    return f"{catalog.FAMILIES[name].display} vCPUs"


class QuotaLimitsApi:
    """Quota_List, Quota_Get, Quota_CreateOrUpdate (and _Update) and QuotaRequestStatus_Get."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        name = r"/quotas/(?P<name>[^/]+)"
        return [
            route("GET", QUOTA + r"/quotas", "quota_api.list", self.list),
            route("GET", QUOTA + name, "quota_api.get", self.get),
            route("PUT", QUOTA + name, "quota_api.create", self.create),
            route("PATCH", QUOTA + name, "quota_api.update", self.create),
            route("GET", QUOTA + r"/quotaRequests/(?P<id>[^/]+)", "quota_api.request", self.request_status),
        ]

    # --- limits ----

    def _limits(self, req: Request) -> tuple[str, dict[str, int]]:
        """The location and its limits by the Quota API's resource names."""
        require_api_version(req)
        location = catalog.normalize_location(req.params["loc"])
        offer = subscription_offer(self.state, req.params["sub"], location)
        if offer is None:
            raise arm_error(
                400,
                "LocationNotAvailableForResourceType",
                f"The provided location '{location}' is not available.",
            )
        return location, {**offer.family_limits, LOW_PRIORITY_NAME: offer.low_priority_total}

    def _name(self, req: Request, limits: dict[str, int]) -> str:
        wanted = req.params["name"].lower()
        found = next((n for n in limits if n.lower() == wanted), None)
        if found is None:
            raise arm_error(
                400,
                "InvalidResourceName",
                f"The resource name '{req.params['name']}' is not valid for this resource provider and location.",
            )
        return found

    def _row(self, req: Request, name: str, limit: int) -> dict[str, Any]:
        scope = _scope(req)
        return {
            "id": f"{scope}/providers/Microsoft.Quota/Quotas/{name}",
            "type": "Microsoft.Quota/Quotas",
            "name": name,
            "properties": {
                "limit": {"limitObjectType": "LimitValue", "value": limit},
                "unit": "Count",
                "name": {"value": name, "localizedValue": _localized(name)},
                "resourceType": "lowPriority" if name == LOW_PRIORITY_NAME else "dedicated",
            },
        }

    def list(self, req: Request) -> Response:
        _location, limits = self._limits(req)
        return Response(200, {"value": [self._row(req, n, limit) for n, limit in limits.items()]})

    def get(self, req: Request) -> Response:
        _location, limits = self._limits(req)
        name = self._name(req, limits)
        return Response(200, self._row(req, name, limits[name]))

    # --- increase requests ----

    def create(self, req: Request) -> Response:
        location, limits = self._limits(req)
        name = self._name(req, limits)
        body = req.json()
        require(body, "properties.limit.value")
        wanted = int(body["properties"]["limit"]["value"])
        sub = req.params["sub"]
        key = LOW_PRIORITY_KEY if name == LOW_PRIORITY_NAME else name
        faults = self.ctx.faults

        def grant() -> None:
            self.state.subscription_limits[(sub.lower(), location, key)] = wanted

        op = Operation(
            id=str(uuid.uuid4()),
            kind="quota.request",
            resource_id=self._row(req, name, wanted)["id"],
            ready_at=time.monotonic() + faults.quota_delay,
            on_success=grant,
            on_failure=lambda _error: None,
            error=dict(CONTACT_SUPPORT) if wanted > faults.quota_max else None,
        )
        self.state.operations[op.id] = op
        self.state.quota_requests[op.id] = {
            "scope": _scope(req),
            "name": name,
            "limit": wanted,
            "submitted": utc_now(),
        }
        version = req.query.get("api-version", "")
        url = f"{req.base_url}{_scope(req)}/providers/Microsoft.Quota/quotaRequests/{op.id}?api-version={version}"
        return Response(202, None, {"Location": url, "Retry-After": RETRY_AFTER})

    def request_status(self, req: Request) -> Response:
        require_api_version(req)
        key = req.params["id"].lower()
        asked, op = self.state.quota_requests.get(key), self.state.operations.get(key)
        if asked is None or op is None:
            raise arm_error(404, "NotFound", f"The quota request '{req.params['id']}' was not found.")
        state = (
            "Succeeded" if op.status == "Succeeded" else "Failed" if op.status == "Failed" else "InProgress"
        )
        message = {
            "Succeeded": "Request completed",
            "Failed": CONTACT_SUPPORT["message"],
            "InProgress": "Request processing",
        }[state]
        item: dict[str, Any] = {
            "limit": {"limitObjectType": "LimitValue", "value": asked["limit"]},
            "unit": "Count",
            "name": {"value": asked["name"], "localizedValue": _localized(asked["name"])},
            "message": message,
            "provisioningState": state,
        }
        properties: dict[str, Any] = {
            "requestSubmitTime": asked["submitted"],
            "message": message,
            "provisioningState": state,
            "value": [item],
        }
        if state == "Failed":
            properties["error"] = dict(op.error or CONTACT_SUPPORT)
            item["subRequestId"] = str(uuid.uuid5(uuid.NAMESPACE_URL, op.id)).upper()
        body = {
            "id": f"{asked['scope']}/providers/Microsoft.Quota/quotaRequests/{op.id}",
            "type": "Microsoft.Quota/quotaRequests",
            "name": op.id,
            "properties": properties,
        }
        return Response(200, body)


def _scope(req: Request) -> str:
    """The request's scope (``/subscriptions/…/locations/{loc}``), in the casing the client sent."""
    return req.path.split("/providers/Microsoft.Quota", 1)[0]
