"""Microsoft.Authorization: role definitions (built-in and custom) and role assignments at any scope.

Behaviour follows the 2022-04-01 examples and Azure's documented errors: a custom role PUT answers 201
(create or update), role names are unique in the directory, a grant that already exists under another
assignment name is 409 RoleAssignmentExists, and a principal Entra ID does not know (or has not
replicated yet, see ``principal_not_found_for``) is 400 PrincipalNotFound.
"""

from __future__ import annotations

import re
import time
from typing import Any

from provisioning.standin import catalog
from provisioning.standin.arm import Context, require, require_api_version
from provisioning.standin.state import Principal
from provisioning.standin.wire import Request, Response, Route, arm_error, route, utc_now

AUTHZ = r"(?P<scope>(?:/.*?)?)/providers/Microsoft\.Authorization/"
DEFINITION_TYPE = "Microsoft.Authorization/roleDefinitions"
ASSIGNMENT_TYPE = "Microsoft.Authorization/roleAssignments"
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
PRINCIPAL_TYPES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}
BUILTINS = {str(r["id"]): r for r in catalog.BUILTIN_ROLES}


def _scope(req: Request) -> str:
    return req.params.get("scope", "").rstrip("/")


def _within(inner: str, outer: str) -> bool:
    """Whether scope ``inner`` is ``outer`` or below it (the root scope "" contains everything)."""
    inner, outer = inner.lower().rstrip("/"), outer.lower().rstrip("/")
    return outer == "" or inner == outer or inner.startswith(outer + "/")


def _permissions(items: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "actions": list(p.get("actions") or []),
            "notActions": list(p.get("notActions") or []),
            "dataActions": list(p.get("dataActions") or []),
            "notDataActions": list(p.get("notDataActions") or []),
        }
        for p in items or []
    ]


class AuthorizationApi:
    """Role definitions and role assignments."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        definition = AUTHZ + r"roleDefinitions/(?P<name>[^/]+)"
        assignment = AUTHZ + r"roleAssignments/(?P<name>[^/]+)"
        return [
            route("PUT", definition, "role_definition.create", self.definition_put),
            route("GET", definition, "role_definition.get", self.definition_get),
            route("DELETE", definition, "role_definition.delete", self.definition_delete),
            route("GET", AUTHZ + r"roleDefinitions", "role_definition.list", self.definition_list),
            route("PUT", assignment, "role_assignment.create", self.assignment_put),
            route("GET", assignment, "role_assignment.get", self.assignment_get),
            route("DELETE", assignment, "role_assignment.delete", self.assignment_delete),
            route("GET", AUTHZ + r"roleAssignments", "role_assignment.list", self.assignment_list),
        ]

    # --- role definitions ----

    def definition(self, scope: str, guid: str) -> dict[str, Any] | None:
        """A role definition rendered at a scope (ids of built-in roles follow the scope asked for)."""
        key = guid.lower()
        if key in BUILTINS:
            role = BUILTINS[key]
            props = {
                "roleName": role["roleName"],
                "type": "BuiltInRole",
                "description": role["description"],
                "assignableScopes": ["/"],
                "permissions": _permissions([role]),
                "createdOn": "2015-02-02T21:55:09.8806423Z",
                "updatedOn": "2024-01-01T00:00:00.0000000Z",
                "createdBy": None,
                "updatedBy": None,
            }
        elif key in self.state.role_definitions:
            props = self.state.role_definitions[key]["properties"]
        else:
            return None
        return {
            "id": f"{scope}/providers/{DEFINITION_TYPE}/{key}",
            "type": DEFINITION_TYPE,
            "name": key,
            "properties": props,
        }

    def _all_definitions(self, scope: str) -> list[dict[str, Any]]:
        guids = [*BUILTINS, *self.state.role_definitions]
        found = [self.definition(scope, g) for g in guids]
        return [
            d
            for d in found
            if d is not None
            and any(_within(scope, s) or _within(s, scope) for s in d["properties"]["assignableScopes"])
        ]

    def find_role(self, role: str) -> dict[str, Any] | None:
        """A role definition by GUID, full id or role name (case-insensitive), rendered at the root."""
        guid = role.rstrip("/").rsplit("/", 1)[-1].lower()
        if GUID.fullmatch(guid):
            return self.definition("", guid)
        return next(
            (d for d in self._all_definitions("") if d["properties"]["roleName"].lower() == role.lower()),
            None,
        )

    def definition_put(self, req: Request) -> Response:
        require_api_version(req)
        scope, guid = _scope(req), req.params["name"].lower()
        if not GUID.fullmatch(guid):
            raise arm_error(
                400,
                "InvalidRoleDefinitionId",
                f"The role definition ID '{guid}' is not valid. The role definition ID must be a GUID.",
            )
        if guid in BUILTINS:
            raise arm_error(
                400, "RoleDefinitionUpdateNotPermitted", "Built-in role definitions cannot be updated."
            )
        body = req.json()
        require(body, "properties.roleName", "properties.assignableScopes")
        props = body["properties"]
        name = str(props["roleName"])
        clash = next(
            (
                d
                for d in self._all_definitions("")
                if d["name"] != guid and d["properties"]["roleName"].lower() == name.lower()
            ),
            None,
        )
        if clash is not None:
            raise arm_error(
                409,
                "RoleDefinitionWithSameNameExists",
                "A custom role with the same name already exists in this directory. Use a different name.",
            )
        existing = self.state.role_definitions.get(guid)
        now = utc_now()
        caller = self._caller()
        self.state.role_definitions[guid] = {
            "properties": {
                "roleName": name,
                "type": "CustomRole",
                "description": props.get("description") or "",
                "assignableScopes": list(props["assignableScopes"]),
                "permissions": _permissions(props.get("permissions")),
                "createdOn": existing["properties"]["createdOn"] if existing else now,
                "updatedOn": now,
                "createdBy": existing["properties"]["createdBy"] if existing else caller,
                "updatedBy": caller,
            }
        }
        return Response(201, self.definition(scope, guid))

    def definition_get(self, req: Request) -> Response:
        require_api_version(req)
        found = self.definition(_scope(req), req.params["name"])
        if found is None:
            raise arm_error(
                404,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{req.params['name']}' does not exist.",
            )
        return Response(200, found)

    def definition_delete(self, req: Request) -> Response:
        require_api_version(req)
        found = self.definition(_scope(req), req.params["name"])
        if found is None:
            return Response(204)
        self.state.role_definitions.pop(req.params["name"].lower(), None)
        return Response(200, found)

    def definition_list(self, req: Request) -> Response:
        require_api_version(req)
        definitions = self._all_definitions(_scope(req))
        wanted = req.query.get("$filter", "")
        name = re.search(r"roleName\s+eq\s+'((?:[^']|'')*)'", wanted, re.IGNORECASE)
        if name:
            definitions = [
                d
                for d in definitions
                if d["properties"]["roleName"].lower() == name.group(1).replace("''", "'").lower()
            ]
        kind = re.search(r"type\s+eq\s+'(\w+)'", wanted, re.IGNORECASE)
        if kind:
            definitions = [d for d in definitions if d["properties"]["type"].lower() == kind.group(1).lower()]
        return Response(200, {"value": definitions})

    # --- role assignments ----

    def _caller(self) -> str:
        return next(iter(self.state.apps.values())).principal_id if self.state.apps else ""

    def check_scope(self, scope: str) -> None:
        """The scope must exist: a missing resource group or resource is ARM's 404."""
        parts = scope.strip("/").split("/")
        if len(parts) < 4 or parts[0].lower() != "subscriptions":
            return
        if len(parts) == 4 and self.state.get(scope) is None:
            raise arm_error(404, "ResourceGroupNotFound", f"Resource group '{parts[3]}' could not be found.")
        if len(parts) > 4 and self.state.get(scope) is None:
            raise arm_error(
                404,
                "ResourceNotFound",
                f"The Resource '{'/'.join(parts[5:])}' under resource group "
                f"'{parts[3]}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
            )

    def _check_principal(self, principal_id: str, principal_type: str | None) -> Principal | None:
        principal = self.state.principals.get(principal_id.lower())
        replicating = (
            principal is not None and time.monotonic() < principal.created + self.ctx.faults.principal_delay
        )
        if (principal is None and self.ctx.strict_principals) or replicating:
            raise arm_error(
                400,
                "PrincipalNotFound",
                f"Principal {principal_id.replace('-', '')} does not exist "
                f"in the directory {self.ctx.tenant_id}. Check that you have the correct principal ID. "
                "If you are creating this principal and then immediately assigning a role, this error "
                "might be related to a replication delay. In this case, set the role assignment "
                "principalType property to a value, such as ServicePrincipal, User, or Group.  See "
                "https://aka.ms/docs-principaltype",
            )
        actual = PRINCIPAL_TYPES.get(principal.kind) if principal else None
        if principal_type and actual and principal_type.lower() != actual.lower():
            raise arm_error(
                400,
                "UnmatchedPrincipalType",
                f"The PrincipalId '{principal_id.replace('-', '')}' has "
                f"type '{actual}', which is different from specified PrincipalType '{principal_type}'.",
            )
        return principal

    def assignment_put(self, req: Request) -> Response:
        require_api_version(req)
        scope, name = _scope(req), req.params["name"].lower()
        if not GUID.fullmatch(name):
            raise arm_error(
                400,
                "InvalidRoleAssignmentId",
                f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.",
            )
        body = req.json()
        require(body, "properties.roleDefinitionId", "properties.principalId")
        props = body["properties"]
        self.check_scope(scope)
        role_guid = str(props["roleDefinitionId"]).rstrip("/").rsplit("/", 1)[-1].lower()
        if self.definition("", role_guid) is None:
            raise arm_error(
                400,
                "RoleDefinitionDoesNotExist",
                f"The specified role definition with ID '{role_guid}' does not exist.",
            )
        principal_id = str(props["principalId"]).lower()
        principal = self._check_principal(principal_id, props.get("principalType"))
        rid = f"{scope}/providers/{ASSIGNMENT_TYPE}/{name}"
        same = self.same_grant(scope, role_guid, principal_id)
        existing = self.state.role_assignments.get(rid.lower())
        if existing is not None:
            if same is not existing:
                raise arm_error(
                    400,
                    "RoleAssignmentUpdateNotPermitted",
                    "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.",
                )
            return Response(200, existing)
        if same is not None:
            raise arm_error(409, "RoleAssignmentExists", "The role assignment already exists.")
        principal_type = (
            PRINCIPAL_TYPES.get(principal.kind, "User") if principal else props.get("principalType")
        )
        assignment = new_assignment(rid, name, scope, props, principal_id, principal_type, self._caller())
        self.state.role_assignments[rid.lower()] = assignment
        return Response(201, assignment)

    def same_grant(self, scope: str, role_guid: str, principal_id: str) -> dict[str, Any] | None:
        return next(
            (
                a
                for a in self.state.role_assignments.values()
                if a["properties"]["scope"].rstrip("/").lower() == scope.lower()
                and a["properties"]["principalId"].lower() == principal_id
                and a["properties"]["roleDefinitionId"].rstrip("/").rsplit("/", 1)[-1].lower() == role_guid
            ),
            None,
        )

    def assignment_get(self, req: Request) -> Response:
        require_api_version(req)
        rid = f"{_scope(req)}/providers/{ASSIGNMENT_TYPE}/{req.params['name']}"
        found = self.state.role_assignments.get(rid.lower())
        if found is None:
            raise arm_error(
                404, "RoleAssignmentNotFound", f"The role assignment '{req.params['name']}' is not found."
            )
        return Response(200, found)

    def assignment_delete(self, req: Request) -> Response:
        require_api_version(req)
        rid = f"{_scope(req)}/providers/{ASSIGNMENT_TYPE}/{req.params['name']}"
        found = self.state.role_assignments.pop(rid.lower(), None)
        return Response(200, found) if found is not None else Response(204)

    def assignment_list(self, req: Request) -> Response:
        """ListForScope: assignments above, at and below the scope; ``atScope()`` keeps above and at."""
        require_api_version(req)
        scope = _scope(req)
        wanted = req.query.get("$filter", "")
        at_scope = "atscope()" in wanted.lower().replace(" ", "")
        principal = re.search(r"(?:principalId\s+eq\s+|assignedTo\()'([^']+)'", wanted, re.IGNORECASE)
        found = [
            a
            for a in self.state.role_assignments.values()
            if _within(scope, a["properties"]["scope"])
            or (not at_scope and _within(a["properties"]["scope"], scope))
        ]
        if principal:
            found = [a for a in found if a["properties"]["principalId"].lower() == principal.group(1).lower()]
        return Response(200, {"value": found})


def new_assignment(
    rid: str,
    name: str,
    scope: str,
    props: dict[str, Any],
    principal_id: str,
    principal_type: str | None,
    caller: str,
) -> dict[str, Any]:
    now = utc_now()
    return {
        "id": rid,
        "type": ASSIGNMENT_TYPE,
        "name": name,
        "properties": {
            "roleDefinitionId": props["roleDefinitionId"],
            "principalId": principal_id,
            "principalType": principal_type or "User",
            "scope": scope or "/",
            "condition": props.get("condition"),
            "conditionVersion": props.get("conditionVersion"),
            "description": props.get("description"),
            "createdOn": now,
            "updatedOn": now,
            "createdBy": caller,
            "updatedBy": caller,
            "delegatedManagedIdentityResourceId": None,
        },
    }
