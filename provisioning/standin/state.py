"""The stand-in's in-memory Azure: resources, directory objects, role assignments, tokens, requests.

Handlers mutate the state while holding ``State.lock`` (one request at a time inside the lock, so
every handler is atomic). Long-running operations complete lazily: ``settle()`` runs at the start of
every request and finishes the operations whose time has come. The public query methods return
copies, safe to inspect from tests while the server runs.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioning.standin.wire import utc_now

KIND_ALIASES = {
    "storage": "Microsoft.Storage/storageAccounts",
    "storage_account": "Microsoft.Storage/storageAccounts",
    "key_vault": "Microsoft.KeyVault/vaults",
    "keyvault": "Microsoft.KeyVault/vaults",
    "registry": "Microsoft.ContainerRegistry/registries",
    "container_registry": "Microsoft.ContainerRegistry/registries",
    "app_insights": "Microsoft.Insights/components",
    "workspace": "Microsoft.MachineLearningServices/workspaces",
    "compute": "Microsoft.MachineLearningServices/workspaces/computes",
    "resource_group": "Microsoft.Resources/resourceGroups",
    "deployment": "Microsoft.Resources/deployments",
}


def resource_type(kind: str) -> str:
    """An ARM resource type from an alias ("storage") or the type itself."""
    return KIND_ALIASES.get(kind.lower(), kind)


@dataclass
class Principal:
    """A directory object: a user, a group or a service principal."""

    object_id: str
    kind: str  # "user" | "group" | "servicePrincipal"
    display_name: str
    upn: str = ""
    mail: str = ""
    app_id: str = ""
    created: float = field(default_factory=time.monotonic)
    # App roles assigned to a user; the stand-in puts them in the id tokens of every app it signs in to.
    roles: list[str] = field(default_factory=list)
    enabled: bool = True  # a user's accountEnabled
    guest: bool = False  # a user's userType: "Guest" (invited from another tenant) or "Member"
    security: bool = True  # a group's securityEnabled; False is a Microsoft 365 group


@dataclass
class App:
    """An app registration with a client secret, and the object id of its service principal."""

    client_id: str
    secret: str
    principal_id: str
    display_name: str
    redirect_uris: list[str] = field(default_factory=list)


@dataclass
class IssuedToken:
    client_id: str
    scope: str
    expires: float


@dataclass(frozen=True)
class AuthCode:
    """An authorization code the authorize endpoint issued, redeemable once at the token endpoint."""

    client_id: str
    redirect_uri: str
    object_id: str
    scope: str
    nonce: str
    code_challenge: str
    code_challenge_method: str
    expires: float


@dataclass
class Operation:
    """A long-running operation: in progress until ``ready_at``, then Succeeded or Failed."""

    id: str
    kind: str
    resource_id: str
    ready_at: float
    on_success: Callable[[], None]
    on_failure: Callable[[dict[str, Any]], None]
    error: dict[str, Any] | None = None
    status: str = "InProgress"
    started_at: str = field(default_factory=utc_now)
    ended_at: str | None = None

    @property
    def done(self) -> bool:
        return self.status != "InProgress"

    def remaining(self, now: float | None = None) -> float:
        return max(0.0, self.ready_at - (time.monotonic() if now is None else now))


@dataclass(frozen=True)
class RequestRecord:
    """One request as the stand-in saw it (never the Authorization header or a form body)."""

    at: float
    method: str
    path: str
    query: dict[str, str]
    operation: str
    status: int
    body: Any
    duration: float
    fault: bool = False

    @property
    def arrived(self) -> float:
        """When the request arrived (``at`` is when it was answered, after any latency)."""
        return self.at - self.duration


class State:
    """Everything the stand-in knows. Mutate only while holding ``lock``."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.apps: dict[str, App] = {}
        self.tokens: dict[str, IssuedToken] = {}
        self.clear()

    def clear(self) -> None:
        """Forget resources, directory objects (but the apps' service principals), grants and requests."""
        with self.lock:
            self.resources: dict[str, dict[str, Any]] = {}
            self.operations: dict[str, Operation] = {}
            self.role_definitions: dict[str, dict[str, Any]] = {}
            self.role_assignments: dict[str, dict[str, Any]] = {}
            self.taken_names: dict[tuple[str, str], dict[str, Any]] = {}
            self.quotas: dict[tuple[str, str], int] = {}
            # Subscription limits raised through the Quota API: (subscription, location, family or
            # "lowPriority") -> vCPUs; the AzureML usages and the compute checks read them too.
            self.subscription_limits: dict[tuple[str, str, str], int] = {}
            # Quota API requests by id (lowercase): what was asked; their Operation says how it ended.
            self.quota_requests: dict[str, dict[str, Any]] = {}
            self.deployment_operations: dict[str, list[dict[str, Any]]] = {}
            # When each resource was created and last changed (ARM's createdTime / changedTime).
            self.times: dict[str, tuple[str, str]] = {}
            # Soft-deleted key vaults by name (vault names are global): {"deleted": DeletedVault, "vault": ...}.
            self.deleted_vaults: dict[str, dict[str, Any]] = {}
            # Deleted AzureML workspaces by id, with the deletion's forceToPurge.
            self.deleted_workspaces: dict[str, dict[str, Any]] = {}
            self.request_log: list[RequestRecord] = []
            self.auth_codes: dict[str, AuthCode] = {}
            self.redeemed_codes: set[str] = set()
            keep = {app.principal_id for app in self.apps.values()}
            self.principals: dict[str, Principal] = {
                k: v for k, v in getattr(self, "principals", {}).items() if k in keep
            }

    # --- lazy completion of long-running operations -----------------------------------------------------

    def settle(self, now: float | None = None) -> None:
        """Finish every operation whose latency has elapsed (success or its injected failure)."""
        now = time.monotonic() if now is None else now
        with self.lock:
            for op in list(self.operations.values()):
                if not op.done and now >= op.ready_at:
                    op.ended_at = utc_now()
                    if op.error is None:
                        op.status = "Succeeded"
                        op.on_success()
                    else:
                        op.status = "Failed"
                        op.on_failure(op.error)

    # --- resources ----

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.resources.get(resource_id.lower().rstrip("/"))

    def put(self, body: dict[str, Any]) -> None:
        key = body["id"].lower()
        self.resources[key] = body
        self.touch(key)

    def touch(self, resource_id: str) -> None:
        """Record a change of the resource now (its creation, the first time)."""
        key, now = resource_id.lower().rstrip("/"), utc_now()
        self.times[key] = (self.times.get(key, (now, now))[0], now)

    def delete(self, resource_id: str) -> dict[str, Any] | None:
        self.times.pop(resource_id.lower().rstrip("/"), None)
        return self.resources.pop(resource_id.lower().rstrip("/"), None)

    def remove_tree(self, resource_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Remove a resource with everything under it; returns the resources and role assignments removed.

        Child resources (a workspace's computes, a group's resources and deployments) go with it, and so
        do role assignments at or below its scope, deployment operations, workspace quotas and the
        service principals of system-assigned identities, as in Azure.
        """
        key = resource_id.lower().rstrip("/")

        def under(other: str) -> bool:
            other = other.lower().rstrip("/")
            return other == key or other.startswith(key + "/")

        removed = [r for k, r in self.resources.items() if under(k)]
        for resource in removed:
            self.delete(resource["id"])
            self.deployment_operations.pop(resource["id"].lower(), None)
            identity = resource.get("identity") or {}
            if "systemassigned" in str(identity.get("type", "")).lower():
                self.principals.pop(str(identity.get("principalId", "")).lower(), None)
        assignments = [a for a in self.role_assignments.values() if under(a["properties"]["scope"])]
        for assignment in assignments:
            self.role_assignments.pop(assignment["id"].lower(), None)
        self.quotas = {k: v for k, v in self.quotas.items() if not under(k[0])}
        return removed, assignments

    def find_by_name(self, rtype: str, name: str) -> list[dict[str, Any]]:
        """Resources of a type with this name anywhere (global names: storage, vaults, registries)."""
        return [
            r
            for r in self.resources.values()
            if r["type"].lower() == rtype.lower() and r["name"].lower() == name.lower()
        ]

    # --- inspection API for tests (copies) ----

    def list_resources(
        self, kind: str | None = None, *, subscription: str | None = None
    ) -> list[dict[str, Any]]:
        """ARM resources (resource groups and deployments included), optionally of one kind."""
        with self.lock:
            self.settle()
            found = [
                r
                for r in self.resources.values()
                if (kind is None or r["type"].lower() == resource_type(kind).lower())
                and (
                    subscription is None
                    or r["id"].lower().startswith(f"/subscriptions/{subscription.lower()}/")
                )
            ]
            return copy.deepcopy(found)

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        """One resource by id (case-insensitive), or None."""
        with self.lock:
            self.settle()
            found = self.get(resource_id)
            return copy.deepcopy(found) if found is not None else None

    def list_role_assignments(
        self, *, scope: str | None = None, principal_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Role assignments, optionally only at one scope or for one principal."""
        with self.lock:
            return copy.deepcopy(
                [
                    a
                    for a in self.role_assignments.values()
                    if (scope is None or a["properties"]["scope"].lower() == scope.lower().rstrip("/"))
                    and (
                        principal_id is None or a["properties"]["principalId"].lower() == principal_id.lower()
                    )
                ]
            )

    def list_role_definitions(self) -> list[dict[str, Any]]:
        """The custom role definitions (built-in ones are in ``catalog.BUILTIN_ROLES``)."""
        with self.lock:
            return copy.deepcopy(list(self.role_definitions.values()))

    def principal(self, object_id: str) -> Principal | None:
        with self.lock:
            return self.principals.get(object_id.lower())

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request served since the last reset, oldest first."""
        with self.lock:
            return list(self.request_log)

    def count(self, operation: str) -> int:
        """How many requests an operation received (faulted ones included)."""
        return sum(1 for r in self.requests if r.operation == operation)

    def status_codes(self, operation: str) -> list[int]:
        """The status codes answered to an operation, in order."""
        return [r.status for r in self.requests if r.operation == operation]

    def operation_counts(self) -> dict[str, int]:
        """Operation name -> number of requests."""
        return dict(Counter(r.operation for r in self.requests))

    def clear_requests(self) -> None:
        with self.lock:
            self.request_log.clear()

    def record(self, entry: RequestRecord) -> None:
        with self.lock:
            self.request_log.append(entry)
