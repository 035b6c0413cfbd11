"""ARM delete operations the portal needs for rollback and clean-up, and Key Vault's deleted vaults.

Each answers as its example in azure-specs (see MANIFEST.md): ResourceGroups_Delete ``202`` +
``Location`` (the group shows ``Deleting`` until the operation ends; a missing group is 404
ResourceGroupNotFound); StorageAccounts_Delete, Vaults_Delete and Components_Delete ``200``, or ``204``
when there is nothing to delete; Registries_Delete and Workspaces_Delete ``202`` + ``Location``, ``204``
when absent; Vaults_PurgeDeleted ``202`` + ``Location``. A Location answers ``202`` while the operation
runs (its latency, 0 by default), then ``200`` without a body. Everything under a deleted resource goes
with it (see ``removal``); key vaults are soft-deleted.

Not from the specs: the 404 of Vaults_GetDeleted / Vaults_PurgeDeleted for an unknown deleted vault and
the ``409 VaultPurgeProtected`` of a purge-protected one (codes as seen from Azure), and the Log
Analytics workspace delete (``Microsoft.OperationalInsights/workspaces``, 2015-03-20) that azure-ai-ml
sends when app insights names one: the stand-in holds no such workspaces and answers ``204``.
"""

from __future__ import annotations

from typing import Any

from provisioning.standin.arm import (
    NAME,
    PROVIDERS,
    SUB,
    Context,
    child_id,
    group_id,
    location_headers,
    require_api_version,
    require_group,
    start_operation,
)
from provisioning.standin.arm_ml import WORKSPACE, WORKSPACE_PATH
from provisioning.standin.catalog import normalize_location
from provisioning.standin.removal import deleted_vault_id, remove_resource
from provisioning.standin.resource_shapes import COMPONENT, REGISTRY, STORAGE, VAULT
from provisioning.standin.wire import Request, Response, Route, arm_error, route, utc_now

LOG_ANALYTICS = "Microsoft.OperationalInsights/workspaces"
KEY_VAULT_LOCATION = SUB + r"/providers/Microsoft\.KeyVault/locations/(?P<loc>[^/]+)"


class DeletesApi:
    """Deletes of resource groups and of the resources the portal makes; deleted key vaults."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        def now(rtype: str) -> Any:
            return lambda req: self.delete_now(req, rtype)

        return [
            route(
                "DELETE",
                SUB + r"/resourcegroups/(?P<rg>[^/]+)",
                "resource_group.delete",
                self.group_delete,
                lro=True,
            ),
            route(
                "DELETE",
                PROVIDERS + r"Microsoft\.Storage/storageAccounts/" + NAME,
                "storage.delete",
                now(STORAGE),
            ),
            route(
                "DELETE", PROVIDERS + r"Microsoft\.KeyVault/vaults/" + NAME, "key_vault.delete", now(VAULT)
            ),
            route(
                "GET",
                KEY_VAULT_LOCATION + r"/deletedVaults/" + NAME,
                "key_vault.get_deleted",
                self.deleted_vault_get,
            ),
            route(
                "GET",
                SUB + r"/providers/Microsoft\.KeyVault/deletedVaults",
                "key_vault.list_deleted",
                self.deleted_vault_list,
            ),
            route(
                "POST",
                KEY_VAULT_LOCATION + r"/deletedVaults/" + NAME + r"/purge",
                "key_vault.purge",
                self.purge,
                lro=True,
            ),
            route(
                "DELETE",
                PROVIDERS + r"Microsoft\.ContainerRegistry/registries/" + NAME,
                "registry.delete",
                self.registry_delete,
                lro=True,
            ),
            route(
                "DELETE",
                PROVIDERS + r"Microsoft\.Insights/components/" + NAME,
                "app_insights.delete",
                now(COMPONENT),
            ),
            route(
                "DELETE",
                PROVIDERS + r"Microsoft\.OperationalInsights/workspaces/" + NAME,
                "log_analytics.delete",
                now(LOG_ANALYTICS),
            ),
            route("DELETE", WORKSPACE_PATH, "workspace.delete", self.workspace_delete, lro=True),
        ]

    # --- resource groups ----

    def group_delete(self, req: Request) -> Response:
        require_api_version(req)
        sub = req.params["sub"]
        group = self.state.get(group_id(sub, req.params["rg"]))
        if group is None:
            raise arm_error(
                404, "ResourceGroupNotFound", f"Resource group '{req.params['rg']}' could not be found."
            )
        group["properties"]["provisioningState"] = "Deleting"
        rid = group["id"]
        op = start_operation(
            self.ctx,
            "resource_group.delete",
            rid,
            on_success=lambda: self._remove(rid),
            on_failure=self._undelete(group),
        )
        return Response(202, None, location_headers(req, op, f"/subscriptions/{sub}/operationresults"))

    @staticmethod
    def _undelete(resource: dict[str, Any]) -> Any:
        def failed(_error: dict[str, Any]) -> None:
            resource["properties"]["provisioningState"] = "Succeeded"

        return failed

    def _remove(self, resource_id: str) -> None:
        remove_resource(self.state, resource_id)

    # --- resources deleted at once (200, or 204 when absent) ----

    def delete_now(self, req: Request, rtype: str) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        rid = child_id(group, rtype, req.params["name"])
        if self.state.get(rid) is None:
            return Response(204)
        self._remove(rid)
        return Response(200)

    # --- resources deleted by a long-running operation (202 + Location, 204 when absent) ----

    def _delete_later(self, req: Request, kind: str, rid: str, status_path: str) -> Response:
        found = self.state.get(rid)
        if found is None:
            return Response(204)
        found.setdefault("properties", {})["provisioningState"] = "Deleting"
        op = start_operation(
            self.ctx, kind, rid, on_success=lambda: self._remove(rid), on_failure=self._undelete(found)
        )
        return Response(202, None, location_headers(req, op, status_path))

    def registry_delete(self, req: Request) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        rid = child_id(group, REGISTRY, req.params["name"])
        return self._delete_later(req, "registry.delete", rid, f"{rid}/operationResults")

    def workspace_delete(self, req: Request) -> Response:
        """Workspaces_Delete: computes and role assignments under the workspace go with it."""
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        rid = child_id(group, WORKSPACE, req.params["ws"])
        found = self.state.get(rid)
        if found is not None:
            self.state.deleted_workspaces[rid.lower()] = {
                "id": rid,
                "name": found["name"],
                "forceToPurge": req.query.get("forcetopurge", "false").lower() == "true",
                "deletedAt": utc_now(),
            }
        status_path = (
            f"/subscriptions/{req.params['sub']}/providers/Microsoft.MachineLearningServices/locations/"
            f"{(found or {}).get('location', 'unknown')}/operationResults"
        )
        return self._delete_later(req, "workspace.delete", rid, status_path)

    # --- deleted key vaults ----

    def _deleted_vault(self, req: Request) -> dict[str, Any]:
        require_api_version(req)
        name, location = req.params["name"], normalize_location(req.params["loc"])
        entry = self.state.deleted_vaults.get(name.lower())
        deleted = (entry or {}).get("deleted") or {}
        if (
            not deleted
            or deleted["id"].lower() != deleted_vault_id(req.params["sub"], location, name).lower()
        ):
            raise arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.KeyVault/locations/{location}/deletedVaults/{name}' was not found.",
            )
        return deleted

    def deleted_vault_get(self, req: Request) -> Response:
        return Response(200, self._deleted_vault(req))

    def deleted_vault_list(self, req: Request) -> Response:
        require_api_version(req)
        prefix = f"/subscriptions/{req.params['sub']}/".lower()
        found = [
            e["deleted"]
            for e in self.state.deleted_vaults.values()
            if e["deleted"]["id"].lower().startswith(prefix)
        ]
        return Response(200, {"value": found})

    def purge(self, req: Request) -> Response:
        deleted = self._deleted_vault(req)
        name = deleted["name"]
        if deleted["properties"].get("purgeProtectionEnabled"):
            raise arm_error(
                409,
                "VaultPurgeProtected",
                f"The vault '{name}' has purge protection enabled: it cannot be purged before its scheduled "
                f"purge date {deleted['properties']['scheduledPurgeDate']}.",
            )

        def purged() -> None:
            self.state.deleted_vaults.pop(name.lower(), None)

        op = start_operation(self.ctx, "key_vault.purge", deleted["id"], on_success=purged)
        status_path = (
            f"/subscriptions/{req.params['sub']}/providers/Microsoft.KeyVault/locations/"
            f"{deleted['properties']['location']}/operationResults"
        )
        return Response(202, None, location_headers(req, op, status_path))
