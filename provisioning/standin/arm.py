"""What every ARM resource provider of the stand-in shares: ids, errors, validation, long-running operations.

Long-running operations come in ARM's three styles, each used where the real service uses it:
``Azure-AsyncOperation`` (registries, computes, template deployments: poll a status resource, then GET
the resource), ``Location`` (storage accounts: poll until 200 with the resource) and a body
``provisioningState`` (key vaults: GET the resource until its state is terminal). In-progress answers
carry ``Retry-After`` in whole seconds, the first moment the operation can have finished.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from provisioning.standin.catalog import normalize_location
from provisioning.standin.faults import Faults
from provisioning.standin.state import Operation, State
from provisioning.standin.wire import Request, Response, Route, arm_error, route, utc_now

SUB = r"/subscriptions/(?P<sub>[^/]+)"
RG = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
PROVIDERS = RG + r"/providers/"
NAME = r"(?P<name>[^/]+)"
# Operations whose latency is the duration of a long-running operation, not a delay before answering.
LRO_OPERATIONS = frozenset(
    {
        "storage.create",
        "key_vault.create",
        "registry.create",
        "workspace.deployment",
        "workspace.create",
        "compute.create",
        "compute.update",
        "compute.delete",
        "resource_group.delete",
        "registry.delete",
        "workspace.delete",
        "key_vault.purge",
    }
)


@dataclass
class Context:
    """What the APIs share: the state, the knobs, and who the stand-in is."""

    state: State
    faults: Faults
    tenant_id: str
    strict_principals: bool = True

    def latency(self, operation: str) -> float:
        return self.faults.latency(operation)


def require_api_version(req: Request) -> str:
    """ARM refuses a request without api-version (any value is accepted: the check is loose)."""
    version = req.query.get("api-version", "")
    if not version:
        raise arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    return version


def group_id(sub: str, rg: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}"


def require_group(ctx: Context, sub: str, rg: str) -> dict[str, Any]:
    """The resource group, or ARM's 404 ResourceGroupNotFound."""
    group = ctx.state.get(group_id(sub, rg))
    if group is None:
        raise arm_error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return group


def child_id(group: dict[str, Any], provider_type: str, name: str) -> str:
    """A resource id under a resource group, keeping the group's own casing."""
    return f"{group['id']}/providers/{provider_type}/{name}"


def not_found(provider_type: str, name: str, rg: str) -> Exception:
    return arm_error(
        404,
        "ResourceNotFound",
        f"The Resource '{provider_type}/{name}' under resource group '{rg}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def require(body: dict[str, Any], *paths: str) -> None:
    """ARM's 400 for a missing required property (dotted paths into the request body)."""
    for path in paths:
        node: Any = body
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node in (None, ""):
            raise arm_error(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: 'Required property "
                f"'{path}' not found in JSON.'",
            )


def location_of(body: dict[str, Any]) -> str:
    """The request's (required) location, normalized as ARM stores it."""
    require(body, "location")
    return normalize_location(str(body["location"]))


def system_data(principal_id: str) -> dict[str, Any]:
    now = utc_now()
    return {
        "createdBy": principal_id,
        "createdByType": "Application",
        "createdAt": now,
        "lastModifiedBy": principal_id,
        "lastModifiedByType": "Application",
        "lastModifiedAt": now,
    }


def retry_headers(remaining: float) -> dict[str, str]:
    """When to poll again, in whole seconds as Azure sends it (the SDKs deserialize it as an integer).

    Never 0: azure-core reads a Retry-After of 0 as absent and falls back to its 30 s interval. The
    first poll of an operation is immediate, so an operation without latency is never delayed by it.
    """
    return {"Retry-After": str(min(10, max(1, math.ceil(remaining))))}


def start_operation(
    ctx: Context,
    kind: str,
    resource_id: str,
    *,
    on_success: Callable[[], None],
    on_failure: Callable[[dict[str, Any]], None] | None = None,
    error: dict[str, Any] | None = None,
) -> Operation:
    """Register a long-running operation lasting the operation's latency; it may carry an injected failure.

    Set the resource's in-progress state before calling: an operation without latency or failure
    completes here, and one with an injected failure always waits for the first poll to fail.
    """
    op = Operation(
        id=str(uuid.uuid4()),
        kind=kind,
        resource_id=resource_id,
        ready_at=time.monotonic() + ctx.latency(kind),
        on_success=on_success,
        on_failure=on_failure or (lambda _error: None),
        error=error or ctx.faults.take_lro_failure(kind),
    )
    ctx.state.operations[op.id] = op
    if op.error is None and op.remaining() == 0:
        ctx.state.settle()
    return op


def async_operation_headers(req: Request, op: Operation, status_path: str) -> dict[str, str]:
    """Azure-AsyncOperation pointing at the operation's status resource, and when to poll it."""
    version = req.query.get("api-version", "")
    url = f"{req.base_url}{status_path}/{op.id}?api-version={version}"
    return {"Azure-AsyncOperation": url, **retry_headers(op.remaining())}


def location_headers(req: Request, op: Operation, status_path: str) -> dict[str, str]:
    """Location pointing at the operation's result (polled until 200 with the resource)."""
    version = req.query.get("api-version", "")
    url = f"{req.base_url}{status_path}/{op.id}?monitor=true&api-version={version}"
    return {"Location": url, **retry_headers(op.remaining())}


class OperationStatusApi:
    """The status resources of long-running operations, in both polling styles."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def routes(self) -> list[Route]:
        return [
            route(
                "GET",
                r"/.*/(?:operationStatuses|computeOperationsStatus)/(?P<op>[^/]+)",
                "operation.status",
                self.async_status,
            ),
            route(
                "GET",
                r"/.*/(?:asyncoperations|operationResults)/(?P<op>[^/]+)",
                "operation.result",
                self.location_result,
            ),
        ]

    def _operation(self, req: Request) -> Operation:
        op = self.ctx.state.operations.get(req.params["op"].lower())
        if op is None:
            raise arm_error(
                404, "OperationNotFound", f"The operation '{req.params['op']}' could not be found."
            )
        return op

    def async_status(self, req: Request) -> Response:
        op = self._operation(req)
        running = "Running" if op.kind == "workspace.deployment" else "InProgress"
        body: dict[str, Any] = {
            "id": req.path,
            "name": op.id,
            "status": running if not op.done else op.status,
            "startTime": op.started_at,
        }
        if op.done:
            body["endTime"] = op.ended_at
        if op.status == "Failed" and op.error:
            body["error"] = op.error
        return Response(200, body, {} if op.done else retry_headers(op.remaining()))

    def location_result(self, req: Request) -> Response:
        op = self._operation(req)
        if not op.done:
            return Response(
                202,
                None,
                {"Location": f"{req.base_url}{req.path}?{_query(req)}", **retry_headers(op.remaining())},
            )
        if op.status == "Failed":
            raise arm_error(
                int((op.error or {}).get("status", 400)),
                (op.error or {}).get("code", "Failed"),
                (op.error or {}).get("message", "The operation failed."),
            )
        if op.kind.endswith((".delete", ".purge")):
            return Response(200)  # the deletes' examples: 200 without a body once done
        resource = self.ctx.state.get(op.resource_id)
        return Response(200, resource) if resource is not None else Response(204)


def _query(req: Request) -> str:
    return urlencode(req.query)
