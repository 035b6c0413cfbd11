"""AzureML computes of a workspace (AmlCompute clusters), created with an Azure-AsyncOperation.

A cluster is validated as AzureML does: its VM size must be offered in the location, min <= max
nodes, VM size and priority cannot change in place, and its minimum nodes must fit the quota.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from provisioning.standin import catalog
from provisioning.standin.arm import (
    NAME,
    Context,
    async_operation_headers,
    child_id,
    not_found,
    require,
    require_api_version,
    require_group,
    start_operation,
)
from provisioning.standin.arm_ml import COMPUTE, WORKSPACE, WORKSPACE_PATH
from provisioning.standin.arm_quota import subscription_offer, usage
from provisioning.standin.removal import remove_resource
from provisioning.standin.wire import Request, Response, Route, arm_error, route, utc_now

CLUSTER_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9-]{1,15}")
PRIORITIES = {"dedicated": "Dedicated", "lowpriority": "LowPriority"}


def _user_error(message: str) -> Exception:
    return arm_error(400, "BadArgument", message)


class ComputeApi:
    """Computes of a workspace."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        compute = WORKSPACE_PATH + r"/computes/" + NAME
        return [
            route("PUT", compute, "compute.create", self.compute_put, lro=True),
            route("GET", compute, "compute.get", self.compute_get),
            route("PATCH", compute, "compute.update", self.compute_patch, lro=True),
            route("DELETE", compute, "compute.delete", self.compute_delete, lro=True),
            route("GET", WORKSPACE_PATH + r"/computes", "compute.list", self.compute_list),
        ]

    # --- computes ----

    def _workspace(self, req: Request) -> dict[str, Any]:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        found = self.state.get(child_id(group, WORKSPACE, req.params["ws"]))
        if found is None:
            raise not_found(WORKSPACE, req.params["ws"], req.params["rg"])
        return found

    def compute_put(self, req: Request) -> Response:
        workspace = self._workspace(req)
        name = req.params["name"]
        if not CLUSTER_NAME.fullmatch(name):
            raise _user_error(
                f"Compute name '{name}' is invalid: it must be 2 to 16 characters long, start with a "
                "letter and contain only letters, digits and hyphens."
            )
        body = req.json()
        require(body, "properties.computeType")
        cid = f"{workspace['id']}/computes/{name}"
        existing = self.state.get(cid)
        location = catalog.normalize_location(str(body.get("location") or workspace["location"]))
        compute = _compute(cid, name, location, body, existing)
        if compute["properties"]["computeType"] == "AmlCompute":
            self._validate_cluster(workspace, compute, existing)
        compute["properties"]["provisioningState"] = "Updating" if existing else "Creating"
        self.state.put(compute)

        def done() -> None:
            compute["properties"].update(provisioningState="Succeeded", provisioningErrors=None)

        def failed(error: dict[str, Any]) -> None:
            compute["properties"].update(provisioningState="Failed", provisioningErrors=[{"error": error}])

        op = start_operation(self.ctx, "compute.create", cid, on_success=done, on_failure=failed)
        status_path = (
            f"/subscriptions/{req.params['sub']}/providers/Microsoft.MachineLearningServices/"
            f"locations/{location}/computeOperationsStatus"
        )
        return Response(200 if existing else 201, compute, async_operation_headers(req, op, status_path))

    def _validate_cluster(
        self, workspace: dict[str, Any], compute: dict[str, Any], existing: dict[str, Any] | None
    ) -> None:
        inner = compute["properties"]["properties"]
        size = catalog.vm_size(compute["location"], str(inner.get("vmSize") or ""))
        if size is None:
            raise _user_error(
                f"The VM size '{inner.get('vmSize')}' is not supported for AmlCompute in location "
                f"'{compute['location']}'. List the supported sizes with the vmSizes API."
            )
        scale = inner.get("scaleSettings") or {}
        low, high = int(scale.get("minNodeCount") or 0), int(scale.get("maxNodeCount") or 0)
        if low < 0 or high < 1 or low > high:
            raise _user_error(
                f"Invalid scale settings: minNodeCount {low} and maxNodeCount {high} must satisfy "
                "0 <= minNodeCount <= maxNodeCount and maxNodeCount >= 1."
            )
        if existing is not None:
            before = existing["properties"].get("properties") or {}
            for prop in ("vmSize", "vmPriority"):
                if str(before.get(prop, "")).lower() != str(inner.get(prop, "")).lower():
                    raise _user_error(
                        f"Updating the property '{prop}' of an existing AmlCompute cluster is not "
                        f"supported (it is '{before.get(prop)}'). Create a cluster with another name."
                    )
        self._check_quota(workspace, compute, size, low, existing)

    def _check_quota(
        self,
        workspace: dict[str, Any],
        compute: dict[str, Any],
        size: dict[str, Any],
        nodes: int,
        existing: dict[str, Any] | None,
    ) -> None:
        sub = compute["id"].split("/")[2]
        location = compute["location"]
        offer = subscription_offer(self.state, sub, location) or catalog.DEFAULT_REGION
        family = catalog.FAMILIES[str(size["family"])]
        low_priority = compute["properties"]["properties"]["vmPriority"] == "LowPriority"
        wanted = nodes * int(size["vCPUs"])
        used = usage(self.state, sub, location, exclude=compute["id"] if existing else "")
        limits: list[tuple[str, int, int]] = []
        if low_priority:
            limits.append(("Total Cluster LowPriority Regional vCPUs", offer.low_priority_total, used["lp"]))
        else:
            limits.append(
                (family.quota_name(), offer.family_limits.get(family.family, 0), used[("sub", family.family)])
            )
            limits.append(
                ("Total Cluster Dedicated Regional vCPUs", offer.dedicated_total, used["dedicated"])
            )
            ws_limit = self.state.quotas.get((workspace["id"].lower(), family.quota_key().lower()))
            if ws_limit is not None:
                limits.append(
                    (
                        f"{family.quota_name()} of workspace {workspace['name']}",
                        ws_limit,
                        used[(workspace["id"].lower(), family.family)],
                    )
                )
        for quota, limit, in_use in limits:
            if wanted and in_use + wanted > limit:
                raise arm_error(
                    400,
                    "QuotaExceeded",
                    f"Operation results in exceeding quota limits of {quota}. Maximum allowed: {limit}, "
                    f"Current in use: {in_use}, Additional requested: {wanted}. Please see "
                    "https://aka.ms/azureml-quota for how to request more quota.",
                )

    def compute_get(self, req: Request) -> Response:
        workspace = self._workspace(req)
        found = self.state.get(f"{workspace['id']}/computes/{req.params['name']}")
        if found is None:
            raise not_found(COMPUTE, f"{req.params['ws']}/{req.params['name']}", req.params["rg"])
        return Response(200, found)

    def compute_list(self, req: Request) -> Response:
        workspace = self._workspace(req)
        prefix = f"{workspace['id']}/computes/".lower()
        return Response(200, {"value": [r for k, r in self.state.resources.items() if k.startswith(prefix)]})

    def compute_patch(self, req: Request) -> Response:
        """Compute_Update: new scale settings for a cluster (ClusterUpdateParameters), as the patch example."""
        workspace = self._workspace(req)
        cid = f"{workspace['id']}/computes/{req.params['name']}"
        found = self.state.get(cid)
        if found is None:
            raise not_found(COMPUTE, f"{req.params['ws']}/{req.params['name']}", req.params["rg"])
        body = req.json()
        scale = ((body.get("properties") or {}).get("properties") or {}).get("scaleSettings")
        if found["properties"].get("computeType") != "AmlCompute" or not isinstance(scale, dict):
            raise _user_error("Only the scale settings of an AmlCompute cluster can be updated.")
        require(body, "properties.properties.scaleSettings.maxNodeCount")
        wanted = copy.deepcopy(found)
        inner = wanted["properties"]["properties"]
        inner["scaleSettings"] = {**inner.get("scaleSettings", {}), **scale}
        self._validate_cluster(workspace, wanted, found)
        nodes = int(inner["scaleSettings"].get("minNodeCount") or 0)
        inner.update(currentNodeCount=nodes, targetNodeCount=nodes)
        inner.setdefault("nodeStateCounts", {})["idleNodeCount"] = nodes
        found["properties"].update(wanted["properties"], provisioningState="Updating", modifiedOn=utc_now())
        self.state.touch(cid)

        def done() -> None:
            found["properties"].update(provisioningState="Succeeded", provisioningErrors=None)

        def failed(error: dict[str, Any]) -> None:
            found["properties"].update(provisioningState="Failed", provisioningErrors=[{"error": error}])

        op = start_operation(self.ctx, "compute.update", cid, on_success=done, on_failure=failed)
        status_path = (
            f"/subscriptions/{req.params['sub']}/providers/Microsoft.MachineLearningServices/"
            f"locations/{found['location']}/computeOperationsStatus"
        )
        answer = copy.deepcopy(found)
        answer["properties"]["provisioningState"] = "Updating"  # the example's answer, even when done at once
        return Response(200, answer, async_operation_headers(req, op, status_path))

    def compute_delete(self, req: Request) -> Response:
        workspace = self._workspace(req)
        action = req.query.get("underlyingresourceaction", "")
        if action.lower() not in ("delete", "detach"):
            raise _user_error(
                f"The query parameter 'underlyingResourceAction' must be 'Delete' or 'Detach', not '{action}'."
            )
        cid = f"{workspace['id']}/computes/{req.params['name']}"
        found = self.state.get(cid)
        if found is None:
            return Response(204)
        found["properties"]["provisioningState"] = "Deleting"

        def deleted() -> None:
            remove_resource(self.state, cid)

        op = start_operation(self.ctx, "compute.delete", cid, on_success=deleted)
        status_path = (
            f"/subscriptions/{req.params['sub']}/providers/Microsoft.MachineLearningServices/"
            f"locations/{found['location']}/computeOperationsStatus"
        )
        headers = async_operation_headers(req, op, status_path)
        headers["Location"] = headers["Azure-AsyncOperation"].replace(
            "computeOperationsStatus", "operationResults"
        )
        return Response(202, None, headers)


def _compute(
    cid: str, name: str, location: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    props: dict[str, Any] = dict(body["properties"])
    inner: dict[str, Any] = dict(props.get("properties") or {})
    if props["computeType"] == "AmlCompute":
        priority = str(inner.get("vmPriority") or "Dedicated")
        inner["vmPriority"] = PRIORITIES.get(priority.lower(), priority)
        scale = dict(inner.get("scaleSettings") or {})
        scale.setdefault("minNodeCount", 0)
        scale.setdefault("nodeIdleTimeBeforeScaleDown", "PT2M")
        inner["scaleSettings"] = scale
        nodes = int(scale.get("minNodeCount") or 0)
        inner.pop("userAccountCredentials", None)  # Azure never returns node credentials
        inner.update(
            {
                "osType": inner.get("osType") or "Linux",
                "allocationState": "Steady",
                "allocationStateTransitionTime": utc_now(),
                "currentNodeCount": nodes,
                "targetNodeCount": nodes,
                "nodeStateCounts": {
                    "idleNodeCount": nodes,
                    "runningNodeCount": 0,
                    "preparingNodeCount": 0,
                    "unusableNodeCount": 0,
                    "leavingNodeCount": 0,
                    "preemptedNodeCount": 0,
                },
                "errors": None,
                "isolatedNetwork": False,
                "remoteLoginPortPublicAccess": inner.get("remoteLoginPortPublicAccess") or "NotSpecified",
                "enableNodePublicIp": inner.get("enableNodePublicIp", True),
            }
        )
    now = utc_now()
    props.update(
        {
            "properties": inner,
            "computeLocation": location,
            "isAttachedCompute": False,
            "createdOn": (existing or {}).get("properties", {}).get("createdOn", now),
            "modifiedOn": now,
            "provisioningErrors": None,
            "disableLocalAuth": props.get("disableLocalAuth", True),
        }
    )
    compute = {
        "id": cid,
        "name": name,
        "type": COMPUTE,
        "location": location,
        "tags": _tags(body, existing),
        "properties": props,
    }
    if body.get("identity"):
        compute["identity"] = body["identity"]
    return compute


def _tags(body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, str]:
    """The request's tags; an update without tags keeps the resource's."""
    tags = body.get("tags")
    return dict(tags if tags is not None else (existing or {}).get("tags") or {})
