"""AzureML workspaces, and the ARM template deployment azure-ai-ml creates them with.

``MLClient.workspaces.begin_create`` PUTs a template deployment (2020-06-01) whose parameters name the
existing storage account, key vault, registry and app insights. The stand-in evaluates the template
(``arm_template``), and when the deployment completes creates the workspace it describes. Without
latency or failure the deployment answers terminal at once, so azure-ai-ml's 5-second status loop
never sleeps; otherwise it runs for its latency behind an Azure-AsyncOperation status resource.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from typing import Any

from provisioning.standin.arm import (
    NAME,
    PROVIDERS,
    RG,
    SUB,
    Context,
    async_operation_headers,
    child_id,
    location_of,
    not_found,
    require,
    require_api_version,
    require_group,
    start_operation,
    system_data,
)
from provisioning.standin.arm_template import DeployableResource, Scope, TemplateError, deployable_resources
from provisioning.standin.catalog import normalize_location
from provisioning.standin.state import Principal
from provisioning.standin.wire import Request, Response, Route, arm_error, route, utc_now

WORKSPACE = "Microsoft.MachineLearningServices/workspaces"
COMPUTE = WORKSPACE + "/computes"
DEPLOYMENT = "Microsoft.Resources/deployments"
WORKSPACE_PATH = PROVIDERS + r"Microsoft\.MachineLearningServices/workspaces/(?P<ws>[^/]+)"
DEPLOYMENT_PATH = RG + r"(?:/providers/Microsoft\.Resources)?/deployments/" + NAME
DEPLOYMENTS_PATH = RG + r"/providers/Microsoft\.Resources/deployments/?"
# Deployments_ListByResourceGroup's one filter (resources.json 2020-06-01): provisioningState eq '{state}'.
STATE_FILTER = re.compile(r"\s*provisioningState\s+eq\s+'(?P<state>[A-Za-z]+)'\s*", re.IGNORECASE)
DEPENDENCIES = ("storageAccount", "keyVault", "applicationInsights", "containerRegistry")
BOOLEAN_PROPERTIES = (
    "hbiWorkspace",
    "softDeleteEnabled",
    "allowRecoverSoftDeletedWorkspace",
    "allowRoleAssignmentOnRG",
    "provisionNetworkNow",
    "enableDataIsolation",
)
DEPLOYMENT_FAILED = (
    "At least one resource deployment operation failed. Please list deployment operations for "
    "details. Please see https://aka.ms/arm-deployment-operations for usage details."
)


class WorkspacesApi:
    """Template deployments (as azure-ai-ml sends them) and AzureML workspaces."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        return [
            route("PUT", DEPLOYMENT_PATH, "workspace.deployment", self.deployment_put, lro=True),
            route("GET", DEPLOYMENT_PATH, "deployment.get", self.deployment_get),
            route("GET", DEPLOYMENTS_PATH, "deployment.list", self.deployment_list),
            route(
                "GET", DEPLOYMENT_PATH + r"/operations", "deployment.operations", self.deployment_operations
            ),
            route("GET", WORKSPACE_PATH, "workspace.get", self.workspace_get),
            route("PUT", WORKSPACE_PATH, "workspace.create", self.workspace_put, lro=True),
            route("PATCH", WORKSPACE_PATH, "workspace.update", self.workspace_patch),
            route(
                "GET",
                PROVIDERS + r"Microsoft\.MachineLearningServices/workspaces",
                "workspace.list",
                self.workspace_list,
            ),
            route(
                "GET",
                SUB + r"/providers/Microsoft\.MachineLearningServices/workspaces",
                "workspace.list_by_subscription",
                self.workspace_list_by_subscription,
            ),
        ]

    # --- deployments ----

    def deployment_put(self, req: Request) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        body = req.json()
        require(body, "properties", "properties.mode")
        props = body["properties"]
        if str(props["mode"]).lower() not in ("incremental", "complete"):
            raise arm_error(
                400,
                "InvalidDeploymentMode",
                f"The deployment mode '{props['mode']}' is not valid: use 'Incremental' or 'Complete'.",
            )
        workspaces = self._evaluate(group, props)
        dep_id = child_id(group, DEPLOYMENT, req.params["name"])
        existed = self.state.get(dep_id) is not None
        deployment = _deployment(dep_id, req.params["name"], props, workspaces)
        self.state.put(deployment)
        self.state.deployment_operations[dep_id.lower()] = [
            _deployment_operation(dep_id, w) for w in workspaces
        ]
        missing = self._missing_dependencies(workspaces)
        error = (
            {"code": "ResourceNotFound", "message": f"The Resource '{missing}' was not found."}
            if missing
            else None
        )
        op = start_operation(
            self.ctx,
            "workspace.deployment",
            dep_id,
            error=error,
            on_success=lambda: self._deployed(dep_id, group, workspaces),
            on_failure=lambda e: self._deployment_failed(dep_id, e),
        )
        if op.error is not None:
            # ARM reports the resource's error inside DeploymentFailed, on the status resource too.
            op.error = {"code": "DeploymentFailed", "message": DEPLOYMENT_FAILED, "details": [op.error]}
        status = 200 if existed else 201
        if op.done:
            return Response(status, deployment)
        accepted = copy.deepcopy(deployment)  # ARM answers Accepted, then the deployment runs
        deployment["properties"]["provisioningState"] = "Running"
        return Response(status, accepted, async_operation_headers(req, op, f"{dep_id}/operationStatuses"))

    def _evaluate(self, group: dict[str, Any], props: dict[str, Any]) -> list[DeployableResource]:
        template = props.get("template")
        if not isinstance(template, dict):
            raise arm_error(
                400,
                "InvalidTemplate",
                "The Azure stand-in deploys inline templates only "
                "('properties.template'); templateLink is not supported.",
            )
        scope = Scope(group["id"].split("/")[2], group["name"], group["location"], self.ctx.tenant_id)
        try:
            resources = deployable_resources(template, props.get("parameters") or {}, scope)
        except (TemplateError, KeyError, IndexError, TypeError, ValueError) as exc:
            raise arm_error(
                400, "InvalidTemplate", f"Deployment template validation failed: '{exc}'."
            ) from exc
        others = sorted({r.type for r in resources if r.type.lower() != WORKSPACE.lower()})
        if others:
            raise arm_error(
                400,
                "InvalidTemplate",
                "The Azure stand-in deploys AzureML workspaces only; this "
                f"template would also create {', '.join(others)}. Create those first and pass "
                "their resource ids to the workspace.",
            )
        return resources

    def _missing_dependencies(self, workspaces: list[DeployableResource]) -> str:
        for ws in workspaces:
            for key in DEPENDENCIES:
                ref = (ws.body.get("properties") or {}).get(key)
                if ref and self.state.get(str(ref)) is None:
                    return str(ref)
        return ""

    def _deployed(self, dep_id: str, group: dict[str, Any], workspaces: list[DeployableResource]) -> None:
        deployment = self.state.get(dep_id)
        outputs = [self._create_workspace(group, ws) for ws in workspaces]
        if deployment is not None:
            deployment["properties"].update(
                provisioningState="Succeeded",
                outputResources=[{"id": i} for i in outputs],
                duration="PT1.5S",
                timestamp=utc_now(),
            )
        for entry in self.state.deployment_operations.get(dep_id.lower(), []):
            entry["properties"].update(
                provisioningState="Succeeded", statusCode="Created", timestamp=utc_now()
            )

    def _deployment_failed(self, dep_id: str, error: dict[str, Any]) -> None:
        deployment = self.state.get(dep_id)
        if deployment is not None:
            deployment["properties"].update(provisioningState="Failed", error=error, timestamp=utc_now())
        inner = (error.get("details") or [error])[0]
        for entry in self.state.deployment_operations.get(dep_id.lower(), []):
            entry["properties"].update(
                provisioningState="Failed",
                statusCode="BadRequest",
                timestamp=utc_now(),
                statusMessage={"status": "Failed", "error": inner},
            )

    def deployment_get(self, req: Request) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        found = self.state.get(child_id(group, DEPLOYMENT, req.params["name"]))
        if found is None:
            raise arm_error(
                404, "DeploymentNotFound", f"Deployment '{req.params['name']}' could not be found."
            )
        return Response(200, found)

    def deployment_list(self, req: Request) -> Response:
        """Deployments_ListByResourceGroup: the group's deployments, optionally of one provisioning state."""
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        wanted = None
        if req.query.get("$filter"):
            match = STATE_FILTER.fullmatch(req.query["$filter"])
            if match is None:
                raise arm_error(
                    400,
                    "InvalidFilter",
                    "Deployments can be filtered by provisioningState eq '{state}' only.",
                )
            wanted = match["state"].lower()
        prefix = f"{group['id']}/providers/{DEPLOYMENT}/".lower()
        found = [
            r
            for key, r in self.state.resources.items()
            if key.startswith(prefix)
            and (wanted is None or str(r["properties"].get("provisioningState", "")).lower() == wanted)
        ]
        top = req.query.get("$top")
        if top is not None:
            if not top.isdigit():
                raise arm_error(400, "InvalidParameter", "$top must be a whole number.")
            found = found[: int(top)]
        return Response(200, {"value": found})

    def deployment_operations(self, req: Request) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        dep_id = child_id(group, DEPLOYMENT, req.params["name"])
        if self.state.get(dep_id) is None:
            raise arm_error(
                404, "DeploymentNotFound", f"Deployment '{req.params['name']}' could not be found."
            )
        return Response(200, {"value": self.state.deployment_operations.get(dep_id.lower(), [])})

    # --- workspaces ----

    def _create_workspace(self, group: dict[str, Any], ws: DeployableResource) -> str:
        rid = child_id(group, WORKSPACE, ws.name)
        existing = self.state.get(rid)
        props = {k: v for k, v in (ws.body.get("properties") or {}).items() if v not in ("", None, {})}
        for key in BOOLEAN_PROPERTIES:
            if isinstance(props.get(key), str):
                props[key] = props[key].lower() == "true"
        if (props.get("encryption") or {}).get("status", "").lower() == "disabled":
            props.pop("encryption")
        if not ((props.get("featureStoreSettings") or {}).get("computeruntime") or {}).get(
            "SparkRuntimeVersion"
        ):
            props.pop("featureStoreSettings", None)
        body = {
            "location": ws.body.get("location"),
            "tags": ws.body.get("tags") or {},
            "kind": ws.body.get("kind") or "Default",
            "identity": ws.body.get("identity") or None,
            "properties": props,
        }
        self.state.put(self._workspace(rid, ws.name, body, existing))
        return rid

    def _workspace(
        self, rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
    ) -> dict[str, Any]:
        location = normalize_location(str(body.get("location") or (existing or {}).get("location") or ""))
        props: dict[str, Any] = dict((existing or {}).get("properties") or {})
        props.update(body.get("properties") or {})
        props.setdefault("friendlyName", name)
        props.setdefault("workspaceId", str(uuid.uuid4()))
        props.setdefault("creationTime", utc_now())
        props.setdefault("hbiWorkspace", False)
        props.setdefault("publicNetworkAccess", "Enabled")
        props.setdefault("v1LegacyMode", False)
        props.setdefault("managedNetwork", {"isolationMode": "Disabled"})
        props.update(
            {
                "provisioningState": "Succeeded",
                "tenantId": self.ctx.tenant_id,
                "discoveryUrl": f"https://{location}.api.azureml.ms/discovery",
                "mlFlowTrackingUri": f"azureml://{location}.api.azureml.ms/mlflow/v1.0{rid}",
                "storageHnsEnabled": False,
                "privateLinkCount": 0,
            }
        )
        workspace = {
            "id": rid,
            "name": name,
            "type": WORKSPACE,
            "location": location,
            "kind": body.get("kind") or (existing or {}).get("kind") or "Default",
            "tags": _tags(body, existing),
            "sku": {"name": "Basic", "tier": "Basic"},
            "identity": (existing or {}).get("identity") or self._identity(body.get("identity"), name),
            "systemData": (existing or {}).get("systemData") or system_data(self._caller()),
            "properties": props,
        }
        return workspace

    def _identity(self, identity: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        """A system-assigned identity is a new service principal in the directory."""
        if not identity or "systemassigned" not in str(identity.get("type", "")).replace("_", "").lower():
            return identity or None
        principal = Principal(str(uuid.uuid4()), "servicePrincipal", name, app_id=str(uuid.uuid4()))
        self.state.principals[principal.object_id] = principal
        return {
            **identity,
            "type": "SystemAssigned",
            "principalId": principal.object_id,
            "tenantId": self.ctx.tenant_id,
        }

    def _caller(self) -> str:
        return next(iter(self.state.apps.values())).principal_id if self.state.apps else ""

    def _workspace_or_404(self, req: Request) -> dict[str, Any]:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        found = self.state.get(child_id(group, WORKSPACE, req.params["ws"]))
        if found is None:
            raise not_found(WORKSPACE, req.params["ws"], req.params["rg"])
        return found

    def workspace_get(self, req: Request) -> Response:
        return Response(200, self._workspace_or_404(req))

    def workspace_list(self, req: Request) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        prefix = f"{group['id']}/providers/{WORKSPACE}/".lower()
        return Response(
            200,
            {
                "value": [
                    r
                    for k, r in self.state.resources.items()
                    if k.startswith(prefix) and r["type"] == WORKSPACE
                ]
            },
        )

    def workspace_list_by_subscription(self, req: Request) -> Response:
        """Workspaces_ListBySubscription: every workspace of the subscription, whoever made it."""
        require_api_version(req)
        prefix = f"/subscriptions/{req.params['sub']}/".lower()
        return Response(
            200,
            {
                "value": [
                    r
                    for k, r in self.state.resources.items()
                    if k.startswith(prefix) and r["type"] == WORKSPACE
                ]
            },
        )

    def workspace_patch(self, req: Request) -> Response:
        found = self._workspace_or_404(req)
        body = req.json()
        if body.get("tags") is not None:
            found["tags"] = dict(body["tags"])
        found["properties"].update({k: v for k, v in (body.get("properties") or {}).items() if v is not None})
        return Response(200, found)

    def workspace_put(self, req: Request) -> Response:
        """Workspaces_CreateOrUpdate sent directly (not through a template)."""
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        body = req.json()
        location_of(body)
        rid = child_id(group, WORKSPACE, req.params["ws"])
        existing = self.state.get(rid)
        missing = self._missing_dependencies([DeployableResource(WORKSPACE, req.params["ws"], body)])
        if missing:
            raise arm_error(
                400, "BadRequest", f"The resource '{missing}' referenced by the workspace does not exist."
            )
        workspace = self._workspace(rid, req.params["ws"], body, existing)
        workspace["properties"]["provisioningState"] = "Creating" if existing is None else "Updating"
        self.state.put(workspace)

        def done() -> None:
            workspace["properties"]["provisioningState"] = "Succeeded"

        op = start_operation(
            self.ctx,
            "workspace.create",
            rid,
            on_success=done,
            on_failure=lambda _e: workspace["properties"].update(provisioningState="Failed"),
        )
        headers = {} if op.done else async_operation_headers(req, op, f"{rid}/operationStatuses")
        return Response(200 if existing else 201, workspace, headers)


def _deployment(
    dep_id: str, name: str, props: dict[str, Any], workspaces: list[DeployableResource]
) -> dict[str, Any]:
    declared = {
        k.lower(): v.get("type", "string") for k, v in (props["template"].get("parameters") or {}).items()
    }
    parameters = {
        k: {
            "type": str(declared.get(k.lower(), "string")).capitalize(),
            "value": v.get("value") if isinstance(v, dict) else v,
        }
        for k, v in (props.get("parameters") or {}).items()
    }
    locations = sorted({normalize_location(str(w.body.get("location") or "")) for w in workspaces})
    template_hash = str(int(hashlib.sha256(repr(props["template"]).encode()).hexdigest()[:15], 16))
    return {
        "id": dep_id,
        "name": name,
        "type": DEPLOYMENT,
        "properties": {
            "templateHash": template_hash,
            "parameters": parameters,
            "mode": "Incremental",
            "provisioningState": "Accepted",
            "timestamp": utc_now(),
            "duration": "PT0S",
            "correlationId": str(uuid.uuid4()),
            "providers": [
                {
                    "namespace": "Microsoft.MachineLearningServices",
                    "resourceTypes": [{"resourceType": "workspaces", "locations": locations}],
                }
            ],
            "dependencies": [],
            "outputResources": [],
        },
    }


def _deployment_operation(dep_id: str, ws: DeployableResource) -> dict[str, Any]:
    op_id = uuid.uuid4().hex[:16].upper()
    target = f"{dep_id.split('/providers/')[0]}/providers/{WORKSPACE}/{ws.name}"
    return {
        "id": f"{dep_id}/operations/{op_id}",
        "operationId": op_id,
        "properties": {
            "provisioningOperation": "Create",
            "provisioningState": "Running",
            "timestamp": utc_now(),
            "duration": "PT1.5S",
            "trackingId": str(uuid.uuid4()),
            "serviceRequestId": str(uuid.uuid4()),
            "statusCode": "Accepted",
            "targetResource": {"id": target, "resourceType": WORKSPACE, "resourceName": ws.name},
        },
    }


def _tags(body: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, str]:
    """The request's tags; an update without tags keeps the resource's."""
    tags = body.get("tags")
    return dict(tags if tags is not None else (existing or {}).get("tags") or {})
