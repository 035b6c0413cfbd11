"""ARM resource groups and the workspace's dependent resources: storage, key vault, registry, app insights.

Status codes are those each SDK accepts (storage: 200/202, key vault: 200/201, registry: 200/201 then
Azure-AsyncOperation, app insights: 200 only). Storage, vault and registry names are global: a name
held by another resource (or by ``take_name``) makes checkNameAvailability answer ``nameAvailable:
false`` and a PUT answer 409 with the service's own error code.
"""

from __future__ import annotations

import re
from typing import Any

from provisioning.standin.arm import (
    NAME,
    PROVIDERS,
    SUB,
    Context,
    async_operation_headers,
    child_id,
    group_id,
    location_headers,
    location_of,
    not_found,
    require,
    require_api_version,
    require_group,
    retry_headers,
    start_operation,
)
from provisioning.standin.resource_shapes import (
    COMPONENT,
    CONFLICTS,
    NAME_RULES,
    REGISTRY,
    SOFT_DELETED_VAULT,
    STORAGE,
    TAKEN_MESSAGES,
    VAULT,
    component_body,
    refuse_irreversible,
    registry_body,
    storage_account_body,
    vault_body,
)
from provisioning.standin.wire import Request, Response, Route, arm_error, route

GROUP_NAME = re.compile(r"[-\w._()]{1,90}(?<!\.)")


class ResourcesApi:
    """Resource groups, storage accounts, key vaults, container registries, Application Insights."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        rg = SUB + r"/resourcegroups/(?P<rg>[^/]+)"
        return [
            route("PUT", rg, "resource_group.create", self.group_put),
            route("GET", rg, "resource_group.get", self.group_get),
            route("HEAD", rg, "resource_group.exists", self.group_head),
            route("GET", SUB + r"/resourcegroups", "resource_group.list", self.group_list),
            route(
                "POST",
                SUB + r"/providers/Microsoft\.Storage/checkNameAvailability",
                "storage.check_name",
                lambda req: self.check_name(req, STORAGE),
            ),
            route(
                "PUT",
                PROVIDERS + r"Microsoft\.Storage/storageAccounts/" + NAME,
                "storage.create",
                self.storage_put,
                lro=True,
            ),
            route(
                "GET",
                PROVIDERS + r"Microsoft\.Storage/storageAccounts/" + NAME,
                "storage.get",
                lambda req: self.get(req, STORAGE),
            ),
            route(
                "PATCH",
                PROVIDERS + r"Microsoft\.Storage/storageAccounts/" + NAME,
                "storage.update",
                self.storage_patch,
            ),
            route(
                "POST",
                SUB + r"/providers/Microsoft\.KeyVault/checkNameAvailability",
                "key_vault.check_name",
                lambda req: self.check_name(req, VAULT),
            ),
            route(
                "PUT",
                PROVIDERS + r"Microsoft\.KeyVault/vaults/" + NAME,
                "key_vault.create",
                self.vault_put,
                lro=True,
            ),
            route(
                "GET",
                PROVIDERS + r"Microsoft\.KeyVault/vaults/" + NAME,
                "key_vault.get",
                lambda req: self.get(req, VAULT),
            ),
            route(
                "POST",
                SUB + r"/providers/Microsoft\.ContainerRegistry/checkNameAvailability",
                "registry.check_name",
                lambda req: self.check_name(req, REGISTRY),
            ),
            route(
                "PUT",
                PROVIDERS + r"Microsoft\.ContainerRegistry/registries/" + NAME,
                "registry.create",
                self.registry_put,
                lro=True,
            ),
            route(
                "GET",
                PROVIDERS + r"Microsoft\.ContainerRegistry/registries/" + NAME,
                "registry.get",
                lambda req: self.get(req, REGISTRY),
            ),
            route(
                "PUT",
                PROVIDERS + r"Microsoft\.Insights/components/" + NAME,
                "app_insights.create",
                self.component_put,
            ),
            route(
                "GET",
                PROVIDERS + r"Microsoft\.Insights/components/" + NAME,
                "app_insights.get",
                lambda req: self.get(req, COMPONENT),
            ),
        ]

    # --- resource groups ----

    def group_put(self, req: Request) -> Response:
        require_api_version(req)
        sub, name = req.params["sub"], req.params["rg"]
        if not GROUP_NAME.fullmatch(name):
            raise arm_error(
                400,
                "InvalidResourceGroupName",
                f"Resource group name '{name}' is invalid: use up to 90 letters, digits, underscores, "
                "periods, hyphens and parentheses, not ending in a period.",
            )
        body = req.json()
        location = location_of(body)
        existing = self.state.get(group_id(sub, name))
        if existing is not None and existing["location"] != location:
            raise arm_error(
                409,
                "InvalidResourceGroupLocation",
                f"Invalid resource group location '{location}'. The Resource group already exists in "
                f"location '{existing['location']}'.",
            )
        group = existing or {
            "id": group_id(sub, name),
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "properties": {"provisioningState": "Succeeded"},
        }
        group["tags"] = dict(body.get("tags") or {})
        if body.get("managedBy"):
            group["managedBy"] = body["managedBy"]
        self.state.put(group)
        return Response(200 if existing else 201, group)

    def group_get(self, req: Request) -> Response:
        require_api_version(req)
        return Response(200, require_group(self.ctx, req.params["sub"], req.params["rg"]))

    def group_head(self, req: Request) -> Response:
        found = self.state.get(group_id(req.params["sub"], req.params["rg"]))
        return Response(204 if found else 404)

    def group_list(self, req: Request) -> Response:
        require_api_version(req)
        prefix = f"/subscriptions/{req.params['sub']}/resourcegroups/".lower()
        groups = [
            r
            for k, r in self.state.resources.items()
            if k.startswith(prefix) and r["type"] == "Microsoft.Resources/resourceGroups"
        ]
        return Response(200, {"value": groups})

    # --- shared: GET, global names ----

    def get(self, req: Request, rtype: str) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        rid = child_id(group, rtype, req.params["name"])
        found = self.state.get(rid)
        if found is None:
            raise not_found(rtype, req.params["name"], req.params["rg"])
        pending = self._pending(rid)
        return Response(200, found, retry_headers(pending.remaining()) if pending else {})

    def _pending(self, rid: str) -> Any:
        return next(
            (
                op
                for op in self.state.operations.values()
                if not op.done and op.resource_id.lower() == rid.lower()
            ),
            None,
        )

    def _holder(self, rtype: str, name: str) -> dict[str, Any] | None:
        """Who holds a global name: a name taken elsewhere, or an existing resource."""
        taken = self.state.taken_names.get((rtype.lower(), name.lower()))
        if taken is not None:
            return taken
        deleted = self.state.deleted_vaults.get(name.lower()) if rtype == VAULT else None
        if deleted is not None:
            return {"id": deleted["deleted"]["properties"]["vaultId"], "soft_deleted": True}
        found = self.state.find_by_name(rtype, name)
        return {"id": found[0]["id"], "soft_deleted": False} if found else None

    def check_name(self, req: Request, rtype: str) -> Response:
        require_api_version(req)
        body = req.json()
        require(body, "name")
        name = str(body["name"])
        pattern, _code, message = NAME_RULES[rtype]
        if not pattern.fullmatch(name):
            invalid = "Invalid" if rtype == REGISTRY else "AccountNameInvalid"
            return Response(
                200, {"nameAvailable": False, "reason": invalid, "message": message.format(name=name)}
            )
        if self._holder(rtype, name) is not None:
            return Response(
                200,
                {
                    "nameAvailable": False,
                    "reason": "AlreadyExists",
                    "message": TAKEN_MESSAGES[rtype].format(name=name),
                },
            )
        return Response(200, {"nameAvailable": True})

    def _claim(self, rtype: str, name: str, rid: str) -> None:
        """Validate a global name for a PUT of ``rid``: invalid -> 400, held by someone else -> 409."""
        pattern, code, message = NAME_RULES[rtype]
        if not pattern.fullmatch(name):
            raise arm_error(400, code, message.format(name=name))
        holder = self._holder(rtype, name)
        if holder is not None and holder.get("soft_deleted"):
            raise arm_error(409, *SOFT_DELETED_VAULT)
        if holder is None or holder.get("id", "").lower() == rid.lower():
            return
        same_subscription = holder["id"].split("/")[2].lower() == rid.split("/")[2].lower()
        if rtype == STORAGE and same_subscription:
            raise arm_error(
                409,
                "StorageAccountAlreadyExists",
                f"The storage account named {name} already exists under the subscription.",
            )
        code, message = CONFLICTS[rtype]
        raise arm_error(409, code, message.format(name=name, lower=name.lower()))

    def _prepare(self, req: Request, rtype: str) -> tuple[dict[str, Any], str, dict[str, Any] | None]:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        rid = child_id(group, rtype, req.params["name"])
        return req.json(), rid, self.state.get(rid)

    # --- storage ----

    def storage_put(self, req: Request) -> Response:
        body, rid, existing = self._prepare(req, STORAGE)
        name = req.params["name"]
        self._claim(STORAGE, name, rid)
        require(body, "location", "sku.name", "kind")
        account = storage_account_body(rid, name, body, existing)
        self.state.put(account)
        if existing is not None:
            return Response(200, account)
        account["properties"]["provisioningState"] = "Creating"

        def done() -> None:
            account["properties"]["provisioningState"] = "Succeeded"

        def failed(_error: dict[str, Any]) -> None:
            self.state.delete(rid)  # a storage account that failed to provision does not remain

        op = start_operation(self.ctx, "storage.create", rid, on_success=done, on_failure=failed)
        status_path = (
            f"/subscriptions/{req.params['sub']}/providers/Microsoft.Storage/locations/"
            f"{account['location']}/asyncoperations"
        )
        return Response(202, None, location_headers(req, op, status_path))

    def storage_patch(self, req: Request) -> Response:
        """StorageAccounts_Update: ``200`` with the account. Tags given replace the account's tags (as ARM's
        PATCH does); of the properties only the updatable ones the portal may send are merged. Not in
        azure-specs' collected examples: shaped after the 2026-09-01 swagger's StorageAccountUpdateParameters."""
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        rid = child_id(group, STORAGE, req.params["name"])
        account = self.state.get(rid)
        if account is None:
            raise not_found(STORAGE, req.params["name"], req.params["rg"])
        body = req.json()
        if "tags" in body:
            account["tags"] = {str(k): str(v) for k, v in (body["tags"] or {}).items()}
        updatable = {"supportsHttpsTrafficOnly", "minimumTlsVersion", "allowBlobPublicAccess", "accessTier"}
        account["properties"].update(
            {k: v for k, v in (body.get("properties") or {}).items() if k in updatable}
        )
        return Response(200, account)

    # --- key vault ----

    def vault_put(self, req: Request) -> Response:
        body, rid, existing = self._prepare(req, VAULT)
        name = req.params["name"]
        existing = existing or self._recover(body, rid, name)
        self._claim(VAULT, name, rid)
        require(body, "location", "properties.tenantId", "properties.sku.name", "properties.sku.family")
        tenant = str(body["properties"]["tenantId"])
        if tenant.lower() != self.ctx.tenant_id.lower():
            raise arm_error(
                400,
                "BadRequest",
                f"The tenant ID '{tenant}' of the vault is not the tenant "
                f"'{self.ctx.tenant_id}' of the subscription.",
            )
        if existing is not None:
            refuse_irreversible(existing["properties"], body["properties"])
        vault = vault_body(rid, name, body, existing, self.ctx)
        self.state.put(vault)
        if existing is not None:
            return Response(200, vault)

        vault["properties"]["provisioningState"] = "RegisteringDns"

        def done() -> None:
            vault["properties"]["provisioningState"] = "Succeeded"

        def failed(error: dict[str, Any]) -> None:
            # Body polling has no status resource: the error rides on the resource so azure-core reports it.
            vault["properties"]["provisioningState"] = "Failed"
            vault["error"] = error

        op = start_operation(self.ctx, "key_vault.create", rid, on_success=done, on_failure=failed)
        return Response(201, vault, {} if op.done else retry_headers(op.remaining()))

    def _recover(self, body: dict[str, Any], rid: str, name: str) -> dict[str, Any] | None:
        """``createMode: recover`` brings a soft-deleted vault of this subscription back (Key Vault's rule)."""
        deleted = self.state.deleted_vaults.get(name.lower())
        if str((body.get("properties") or {}).get("createMode", "")).lower() != "recover" or deleted is None:
            return None
        if deleted["vault"]["id"].lower() != rid.lower():
            return None  # recovered where it was: another group or subscription still finds the name taken
        del self.state.deleted_vaults[name.lower()]
        vault: dict[str, Any] = deleted["vault"]
        vault["properties"]["provisioningState"] = "Succeeded"
        return vault

    # --- container registry ----

    def registry_put(self, req: Request) -> Response:
        body, rid, existing = self._prepare(req, REGISTRY)
        name = req.params["name"]
        self._claim(REGISTRY, name, rid)
        require(body, "location", "sku.name")
        registry = registry_body(rid, name, body, existing)
        self.state.put(registry)
        if existing is not None:
            return Response(200, registry)
        registry["properties"]["provisioningState"] = "Creating"

        def done() -> None:
            registry["properties"]["provisioningState"] = "Succeeded"

        op = start_operation(
            self.ctx,
            "registry.create",
            rid,
            on_success=done,
            on_failure=lambda _e: registry["properties"].update(provisioningState="Failed"),
        )
        return Response(201, registry, async_operation_headers(req, op, f"{rid}/operationStatuses"))

    # --- application insights ----

    def component_put(self, req: Request) -> Response:
        body, rid, existing = self._prepare(req, COMPONENT)
        require(body, "location", "kind", "properties.Application_Type")
        component = component_body(rid, req.params["name"], req.params["sub"], body, existing)
        self.state.put(component)
        return Response(200, component)
