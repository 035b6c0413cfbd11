"""Changes made to Azure by hand (the Azure portal, the CLI): drift for the portal to find, in demos and tests.

``Outside`` changes the stand-in's state directly, as somebody with access to the subscription would:
resize a cluster in place, add or delete a role assignment, delete a resource (with what is under it)
or add an untagged storage account. Tests call it as ``standin.outside.resize_cluster(...)``; other
processes post the same actions to ``POST /_standin/outside`` (``OutsideApi``; any bearer token the
stand-in issued, else 401), which ``manage.py azure_standin outside`` does. Each action answers a dict:
``action``, ``id`` (what it changed), ``changes`` (lines for people) and the action's details. Bad input
raises ``OutsideError`` (the route answers it as an ARM error with its status). The route and its body are
the stand-in's own, not Azure's.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any

from provisioning.arm import idle_duration
from provisioning.standin import catalog
from provisioning.standin.arm import Context, child_id, group_id
from provisioning.standin.arm_authz import (
    ASSIGNMENT_TYPE,
    DEFINITION_TYPE,
    PRINCIPAL_TYPES,
    AuthorizationApi,
    new_assignment,
)
from provisioning.standin.arm_compute import PRIORITIES
from provisioning.standin.arm_ml import COMPUTE, WORKSPACE
from provisioning.standin.removal import remove_resource
from provisioning.standin.resource_shapes import NAME_RULES, STORAGE, storage_account_body
from provisioning.standin.wire import HttpError, Request, Response, Route, arm_error, route, utc_now

ACTIONS = (
    "resize_cluster",
    "run_jobs",
    "delete_role_assignment",
    "add_role_assignment",
    "delete_resource",
    "add_resource",
)


class OutsideError(Exception):
    """An outside change that cannot be made, with the HTTP status and code the route answers."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class Outside:
    """Somebody changing Azure by hand; every method holds the state's lock and answers what changed."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.authz = AuthorizationApi(ctx)

    def apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """Run ``{"action": name, **arguments}`` (the route's body)."""
        arguments = dict(request)
        action = str(arguments.pop("action", ""))
        if action not in ACTIONS:
            raise OutsideError(
                400, "InvalidAction", f"Unknown action '{action}'; one of {', '.join(ACTIONS)}."
            )
        method = getattr(self, action)
        try:
            inspect.signature(method).bind(**arguments)
        except TypeError as exc:
            raise OutsideError(400, "InvalidArguments", f"{action}: {exc}") from exc
        result: dict[str, Any] = method(**arguments)
        return result

    # --- clusters ----

    def _compute(
        self, subscription: str, resource_group: str, workspace: str, cluster: str
    ) -> dict[str, Any]:
        """A cluster of the state, settled (the caller holds the lock); 404 when there is none."""
        cid = f"{group_id(subscription, resource_group)}/providers/{WORKSPACE}/{workspace}/computes/{cluster}"
        self.state.settle()
        compute = self.state.get(cid)
        if compute is None or compute["type"] != COMPUTE:
            raise OutsideError(404, "ResourceNotFound", f"No compute {cid}.")
        return compute

    def resize_cluster(
        self,
        subscription: str,
        resource_group: str,
        workspace: str,
        cluster: str,
        *,
        vm_size: str | None = None,
        priority: str | None = None,
        min_nodes: int | None = None,
        max_nodes: int | None = None,
        idle_seconds: int | None = None,
    ) -> dict[str, Any]:
        """Change a cluster's VM size, priority, node counts or idle time in place."""
        with self.state.lock:
            compute = self._compute(subscription, resource_group, workspace, cluster)
            inner = compute["properties"].setdefault("properties", {})
            scale = dict(inner.get("scaleSettings") or {})
            wanted: dict[str, Any] = {}
            if vm_size is not None:
                size = catalog.vm_size(compute["location"], vm_size)
                if size is None:
                    raise OutsideError(400, "BadArgument", f"No VM size {vm_size} in {compute['location']}.")
                wanted["vmSize"] = vm_size  # as given, like a PUT (the service keeps the casing sent)
            if priority is not None:
                wanted["vmPriority"] = PRIORITIES.get(priority.lower(), priority)
            if min_nodes is not None:
                scale["minNodeCount"] = int(min_nodes)
            if max_nodes is not None:
                scale["maxNodeCount"] = int(max_nodes)
            if idle_seconds is not None:
                scale["nodeIdleTimeBeforeScaleDown"] = idle_duration(int(idle_seconds))
            low, high = int(scale.get("minNodeCount") or 0), int(scale.get("maxNodeCount") or 0)
            if low < 0 or high < 1 or low > high:
                raise OutsideError(400, "BadArgument", f"Invalid node counts: min {low}, max {high}.")
            changes = [
                f"{key} {inner.get(key)} -> {value}"
                for key, value in wanted.items()
                if inner.get(key) != value
            ]
            before = inner.get("scaleSettings") or {}
            changes += [
                f"{key} {before.get(key)} -> {scale[key]}" for key in scale if before.get(key) != scale[key]
            ]
            inner.update(wanted, scaleSettings=scale, currentNodeCount=low, targetNodeCount=low)
            inner.setdefault("nodeStateCounts", {})["idleNodeCount"] = low
            compute["properties"]["modifiedOn"] = utc_now()
            self.state.touch(compute["id"])
            return {
                "action": "resize_cluster",
                "id": compute["id"],
                "changes": changes,
                "properties": dict(inner),
            }

    def run_jobs(
        self, subscription: str, resource_group: str, workspace: str, cluster: str, *, nodes: int
    ) -> dict[str, Any]:
        """Somebody's jobs keep ``nodes`` nodes of a cluster running (0: the jobs finished), as AmlCompute
        reports them in ``nodeStateCounts.runningNodeCount``; up to the cluster's max nodes."""
        with self.state.lock:
            compute = self._compute(subscription, resource_group, workspace, cluster)
            inner = compute["properties"].setdefault("properties", {})
            scale = inner.get("scaleSettings") or {}
            low, high = int(scale.get("minNodeCount") or 0), int(scale.get("maxNodeCount") or 0)
            nodes = int(nodes)
            if not 0 <= nodes <= high:
                raise OutsideError(400, "BadArgument", f"Nodes must be between 0 and max nodes {high}.")
            counts = inner.setdefault("nodeStateCounts", {})
            before = int(counts.get("runningNodeCount") or 0)
            total = max(nodes, low)
            counts.update(runningNodeCount=nodes, idleNodeCount=total - nodes)
            inner.update(currentNodeCount=total, targetNodeCount=total)
            self.state.touch(compute["id"])
            return {
                "action": "run_jobs",
                "id": compute["id"],
                "changes": [f"running nodes {before} -> {nodes}"],
                "properties": dict(inner),
            }

    # --- role assignments ----

    def delete_role_assignment(self, assignment_id: str) -> dict[str, Any]:
        """Delete a role assignment by its id."""
        with self.state.lock:
            found = self.state.role_assignments.pop(assignment_id.lower().rstrip("/"), None)
            if found is None:
                raise OutsideError(404, "RoleAssignmentNotFound", f"No role assignment {assignment_id}.")
            line = f"deleted role assignment {found['id']} (principal {found['properties']['principalId']})"
            return {
                "action": "delete_role_assignment",
                "id": found["id"],
                "changes": [line],
                "roleAssignment": found,
            }

    def add_role_assignment(
        self, scope: str, role: str, principal_id: str, principal_type: str | None = None
    ) -> dict[str, Any]:
        """Grant a role (by name, GUID or role definition id) at a scope, under a random assignment name."""
        scope = "/" + scope.strip("/") if scope.strip("/") else ""
        with self.state.lock:
            try:
                self.authz.check_scope(scope)
            except HttpError as exc:
                raise _outside(exc) from exc
            definition = self.authz.find_role(role)
            if definition is None:
                raise OutsideError(400, "RoleDefinitionDoesNotExist", f"No role definition '{role}'.")
            principal = self.state.principals.get(principal_id.lower())
            if principal is None and not principal_type:
                raise OutsideError(
                    400, "PrincipalNotFound", f"Principal {principal_id} is not in the directory."
                )
            kind = PRINCIPAL_TYPES.get(principal.kind) if principal else principal_type
            if self.authz.same_grant(scope, definition["name"], principal_id.lower()) is not None:
                raise OutsideError(409, "RoleAssignmentExists", "The role assignment already exists.")
            # Azure names the definition at the assignment's subscription (the root for a root scope).
            parts = scope.split("/")
            at = (
                f"/subscriptions/{parts[2]}" if len(parts) > 2 and parts[1].lower() == "subscriptions" else ""
            )
            role_id = f"{at}/providers/{DEFINITION_TYPE}/{definition['name']}"
            name = str(uuid.uuid4())
            rid = f"{scope}/providers/{ASSIGNMENT_TYPE}/{name}"
            assignment = new_assignment(
                rid, name, scope, {"roleDefinitionId": role_id}, principal_id.lower(), kind, str(uuid.uuid4())
            )
            self.state.role_assignments[rid.lower()] = assignment
            line = (
                f"added role assignment {rid}: {definition['properties']['roleName']} for {kind} "
                f"{principal_id} at {scope or '/'}"
            )
            return {
                "action": "add_role_assignment",
                "id": rid,
                "changes": [line],
                "roleAssignment": assignment,
            }

    # --- resources ----

    def delete_resource(self, resource_id: str) -> dict[str, Any]:
        """Delete a resource (or resource group) and everything under it; key vaults are soft-deleted."""
        with self.state.lock:
            self.state.settle()
            if self.state.get(resource_id) is None:
                raise OutsideError(404, "ResourceNotFound", f"No resource {resource_id}.")
            removal = remove_resource(self.state, resource_id)
            return {
                "action": "delete_resource",
                "id": removal.resources[0]["id"],
                "changes": removal.summary(),
                "deleted": [r["id"] for r in removal.resources],
                "roleAssignmentsDeleted": [a["id"] for a in removal.role_assignments],
            }

    def add_resource(
        self, subscription: str, resource_group: str, name: str, location: str | None = None
    ) -> dict[str, Any]:
        """An untagged StorageV2 account (Standard_LRS) in a resource group, as made by hand."""
        with self.state.lock:
            group = self.state.get(group_id(subscription, resource_group))
            if group is None:
                raise OutsideError(
                    404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found."
                )
            pattern, code, message = NAME_RULES[STORAGE]
            if not pattern.fullmatch(name):
                raise OutsideError(400, code, message.format(name=name))
            taken = self.state.find_by_name(STORAGE, name) or self.state.taken_names.get(
                (STORAGE.lower(), name.lower())
            )
            if taken:
                raise OutsideError(
                    409, "StorageAccountAlreadyTaken", f"The storage account named {name} is already taken."
                )
            rid = child_id(group, STORAGE, name)
            body = {
                "location": location or group["location"],
                "kind": "StorageV2",
                "sku": {"name": "Standard_LRS"},
            }
            account = storage_account_body(rid, name, body, None)
            self.state.put(account)
            return {
                "action": "add_resource",
                "id": rid,
                "changes": [f"added untagged storage account {rid}"],
                "resource": account,
            }


def _outside(exc: HttpError) -> OutsideError:
    error = (exc.response.body or {}).get("error", {})
    return OutsideError(exc.response.status, error.get("code", "BadRequest"), error.get("message", str(exc)))


class OutsideApi:
    """``POST /_standin/outside``: the outside changes, for processes other than the stand-in's own."""

    def __init__(self, outside: Outside) -> None:
        self.outside = outside

    def routes(self) -> list[Route]:
        return [route("POST", r"/_standin/outside", "standin.outside", self.post)]

    def post(self, req: Request) -> Response:
        try:
            return Response(200, self.outside.apply(req.json()))
        except OutsideError as exc:
            raise arm_error(exc.status, exc.code, exc.message) from exc
