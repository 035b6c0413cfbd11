"""Idempotent Azure operations, one function per step kind (the only place steps touch the SDKs).

Each function gets what exists first and creates or updates only what the portal owns. A resource
that exists without the portal's ownership tag is never modified: the step fails with
"exists, not managed by the portal". Every function returns an ``Outcome`` and raises only
``AzureStepError``, which says whether retrying can help.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.exceptions import HttpResponseError

from provisioning.azure.clients import AzureClients

OWNERSHIP_TAG = "managed-by"
OWNERSHIP_VALUE = "azureml-portal"
# Microsoft.MachineLearningServices/workspaces read through the generic resources API (a GA version).
WORKSPACE_API_VERSION = "2024-04-01"
# Namespace of the portal's deterministic ids (role definitions and role assignments).
PORTAL_NAMESPACE = uuid.UUID("6f1c2f4e-8d3a-5b7e-9c1d-2a4b6c8d0e1f")

TRANSIENT_CODES = frozenset(
    {
        "PrincipalNotFound",
        "TooManyRequests",
        "RetryableError",
        "ServiceUnavailable",
        "InternalServerError",
        "Conflict",
        "AnotherOperationInProgress",
    }
)
HINTS = {
    "AuthorizationFailed": "The worker's identity lacks permission: grant it Owner (or Contributor and User "
    "Access Administrator) on the subscription, then retry the run.",
    "LinkedAuthorizationFailed": "The worker's identity lacks permission on a linked resource: "
    "check its roles, "
    "then retry the run.",
    "StorageAccountAlreadyTaken": "The name is taken elsewhere in Azure: reject the request and ask the team "
    "lead for a custom name.",
    "VaultAlreadyExists": "The key vault name is taken (possibly by a soft-deleted vault): purge it or ask "
    "for a custom name.",
    "AlreadyInUse": "The registry name is taken elsewhere in Azure: ask the team lead for a custom name.",
    "NotManagedByPortal": "A resource with this name exists but the portal did not create it. Remove it, or "
    "reject the request and ask for a custom name.",
    "PrincipalNotFound": "Entra ID has not replicated the user or group yet: retry the run in a few minutes.",
    "GraphLookupFailed": "Check the user's UPN or the group's exact display name in Entra ID, then retry.",
    "QuotaExceeded": "The subscription's quota is exhausted in this region: request more quota, then retry.",
    "StillInProgress": "An earlier attempt's operation is still running in Azure: retry the run once it "
    "has finished (the Azure portal's activity log shows it).",
    "ClusterChangeRefused": "Azure cannot change a cluster's VM size or priority in place: request a cluster "
    "with another name instead.",
    "InvalidQuotaExceedsSubscriptionLimit": "The team's budget asks more than the subscription's quota in this "
    "region: get more quota from Azure support and retry the run, or lower the team's budget and apply it to "
    "the workspace from the capacity page.",
    "InvalidQuotaBelowClusterMinimum": "The workspace's clusters already hold more cores than the budget "
    "(their minimum nodes): lower those clusters' minimum nodes or raise the team's budget, then retry.",
    "InvalidVMFamilyName": "Azure does not offer this VM family for AzureML in the region: remove the team's "
    "budget for it, then apply the budget again.",
}
DEFAULT_HINT = "Retry the run. If it fails again, Azure's message above says what to fix."


@dataclass(frozen=True)
class Outcome:
    """What a step did: created, updated, unchanged, removed, absent; and the resource id."""

    action: str
    azure_id: str = ""
    detail: str = ""


class AzureStepError(Exception):
    """An Azure operation failed. ``transient`` says whether the same call may succeed later."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        correlation_id: str = "",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient
        self.status = status
        self.correlation_id = correlation_id

    @property
    def hint(self) -> str:
        return HINTS.get(self.code, DEFAULT_HINT)


@contextmanager
def azure_errors() -> Iterator[None]:
    """Translate azure-core errors into AzureStepError with Azure's code, message and correlation id."""
    try:
        yield
    except HttpResponseError as exc:
        status = exc.status_code
        error = exc.error
        # A failed deployment says "DeploymentFailed"; the reason Azure gives is in its first detail.
        while error is not None and error.code == "DeploymentFailed" and error.details:
            error = error.details[0]
        code = (error.code if error and error.code else "") or f"HTTP{status}"
        message = (error.message if error and error.message else "") or exc.reason or str(exc)
        headers = getattr(exc.response, "headers", None) or {}
        correlation = headers.get("x-ms-correlation-request-id") or headers.get("x-ms-request-id") or ""
        transient = code in TRANSIENT_CODES or status in (408, 429) or (status or 0) >= 500
        raise AzureStepError(
            code, message, transient=transient, status=status, correlation_id=correlation
        ) from exc


def not_managed(kind: str, name: str) -> AzureStepError:
    return AzureStepError(
        "NotManagedByPortal",
        f"{kind} '{name}' exists, not managed by the portal "
        f"(it lacks the tag {OWNERSHIP_TAG}={OWNERSHIP_VALUE})",
    )


def _owned(resource: Any) -> bool:
    tags = getattr(resource, "tags", None) or {}
    return tags.get(OWNERSHIP_TAG) == OWNERSHIP_VALUE


def _provisioning_state(resource: Any) -> str:
    """The resource's provisioning state in lower case ("" when its model has none)."""
    properties = getattr(resource, "properties", None)
    state = getattr(resource, "provisioning_state", None) or (
        properties.get("provisioningState")  # a generic resource's properties are a plain dict
        if isinstance(properties, dict)
        else getattr(properties, "provisioning_state", None)
    )
    return str(getattr(state, "value", state) or "").lower()  # SDK enums or plain strings


def _provisioning_failed(resource: Any) -> bool:
    """Azure may keep a resource whose creation failed (state Failed); only a new PUT repairs it."""
    return _provisioning_state(resource) == "failed"


# States in which Azure has finished with a resource; anything else (Creating, Updating, Deleting,
# RegisteringDns, ResolvingDNS, Accepted...) is an operation still running.
SETTLED_STATES = frozenset({"", "unknown", "succeeded", "failed", "canceled", "cancelled"})
SETTLE_SECONDS = 900.0
SETTLE_MAX_PAUSE = 10.0


def _settled(kind: str, name: str, get: Callable[[], Any], *, seconds: float = SETTLE_SECONDS) -> Any:
    """What exists once Azure has finished what it is doing to it (None when it is gone).

    A worker killed after sending a PUT leaves Azure's operation running; on resume the resource is
    still Creating. Taking that as done would miss a creation that fails later, so wait for the state
    to settle (polling at 0.5 s, doubling up to 10 s), then decide as usual.
    """
    existing = _get_or_none(get)
    if existing is not None and not _owned(existing):
        raise not_managed(kind, name)
    deadline, pause = time.monotonic() + seconds, 0.5
    while existing is not None and (state := _provisioning_state(existing)) not in SETTLED_STATES:
        if time.monotonic() >= deadline:
            raise AzureStepError(
                "StillInProgress",
                f"{kind} '{name}' is still {state} in Azure after {seconds / 60:.0f} minutes",
            )
        time.sleep(pause)
        pause = min(pause * 2, SETTLE_MAX_PAUSE)
        existing = _get_or_none(get)
    return existing


def _get_or_none(getter: Any, *args: Any) -> Any:
    try:
        with azure_errors():
            return getter(*args)
    except AzureStepError as exc:
        if exc.status == 404:
            return None
        raise


def _ensure(kind: str, name: str, get: Callable[[], Any], create: Callable[[], Any]) -> Outcome:
    """Get first; never touch what the portal does not own; create what is missing (or failed)."""
    existing = _settled(kind, name, get)
    if existing is not None and not _provisioning_failed(existing):
        return Outcome("unchanged", existing.id)
    with azure_errors():
        created = create()
    return Outcome("created", created.id)


def arm_id(subscription: str, resource_group: str, provider: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{provider}/{name}"


# --- resource group and dependent resources -------------------------------------------------------------


def ensure_resource_group(
    clients: AzureClients, *, subscription: str, name: str, location: str, tags: dict[str, str]
) -> Outcome:
    """Create the resource group with its tags; an existing one must carry the portal's tag."""
    client = clients.resources(subscription)
    existing = _settled("resource group", name, lambda: client.resource_groups.get(name))
    if existing is not None and all((existing.tags or {}).get(k) == v for k, v in tags.items()):
        return Outcome("unchanged", existing.id)
    with azure_errors():
        group = client.resource_groups.create_or_update(name, {"location": location, "tags": tags})
    return Outcome("updated" if existing is not None else "created", group.id)


def ensure_storage_account(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    hierarchical_namespace: bool,
) -> Outcome:
    """StorageV2, HTTPS only, TLS 1.2, no public blob access; a data lake has the hierarchical namespace."""
    client = clients.storage(subscription)
    body = {
        "location": location,
        "kind": "StorageV2",
        "sku": {"name": "Standard_LRS"},
        "tags": tags,
        "properties": {
            "supportsHttpsTrafficOnly": True,
            "minimumTlsVersion": "TLS1_2",
            "allowBlobPublicAccess": False,
            "isHnsEnabled": hierarchical_namespace,
        },
    }
    return _ensure(
        "storage account",
        name,
        lambda: client.storage_accounts.get_properties(resource_group, name),
        lambda: client.storage_accounts.begin_create(resource_group, name, body).result(),
    )


def ensure_key_vault(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    tenant_id: str,
) -> Outcome:
    """RBAC permission model (no access policies), soft delete and purge protection."""
    client = clients.keyvault(subscription)
    body = {
        "location": location,
        "tags": tags,
        "properties": {
            "tenantId": tenant_id,
            "sku": {"family": "A", "name": "standard"},
            "enableRbacAuthorization": True,
            "enableSoftDelete": True,
            "softDeleteRetentionInDays": 90,
            "enablePurgeProtection": True,
        },
    }
    return _ensure(
        "key vault",
        name,
        lambda: client.vaults.get(resource_group, name),
        lambda: client.vaults.begin_create_or_update(resource_group, name, body).result(),
    )


def ensure_container_registry(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
) -> Outcome:
    """Basic SKU with the admin user disabled (people and workspaces use Entra roles, not shared keys)."""
    client = clients.registry(subscription)
    body = {
        "location": location,
        "tags": tags,
        "sku": {"name": "Basic"},
        "properties": {"adminUserEnabled": False},
    }
    return _ensure(
        "container registry",
        name,
        lambda: client.registries.get(resource_group, name),
        lambda: client.registries.begin_create(resource_group, name, body).result(),
    )


def ensure_app_insights(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
) -> Outcome:
    """An Application Insights component for the workspace."""
    client = clients.app_insights(subscription)
    body = {"location": location, "tags": tags, "kind": "web", "properties": {"Application_Type": "web"}}
    return _ensure(
        "application insights",
        name,
        lambda: client.components.get(resource_group, name),
        lambda: client.components.create_or_update(resource_group, name, body),
    )


# --- the workspace and its clusters ---------------------------------------------------------------------


def ensure_workspace(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    name: str,
    location: str,
    tags: dict[str, str],
    storage_id: str,
    key_vault_id: str,
    registry_id: str,
    app_insights_id: str,
) -> Outcome:
    """The AzureML workspace, wired to the resources created before it.

    Read as a generic ARM resource: azure-ai-ml's Workspace has no provisioning state, and a workspace
    an interrupted attempt left Creating (or Failed) must not be taken as done.
    """
    from azure.ai.ml.entities import Workspace as MlWorkspace

    workspace_id = arm_id(subscription, resource_group, "Microsoft.MachineLearningServices/workspaces", name)
    arm = clients.resources(subscription)
    existing = _settled(
        "workspace", name, lambda: arm.resources.get_by_id(workspace_id, api_version=WORKSPACE_API_VERSION)
    )
    if existing is not None and not _provisioning_failed(existing):
        return Outcome("unchanged", existing.id)
    if existing is not None:
        # azure-ai-ml would PATCH an existing workspace, which leaves a failed one failed: only a PUT
        # (Workspaces_CreateOrUpdate) provisions it again.
        body = {
            "location": location,
            "tags": tags,
            "identity": {"type": "SystemAssigned"},
            "properties": {
                "friendlyName": name,
                "storageAccount": storage_id,
                "keyVault": key_vault_id,
                "containerRegistry": registry_id,
                "applicationInsights": app_insights_id,
            },
        }
        with azure_errors():
            repaired = arm.resources.begin_create_or_update_by_id(
                workspace_id, body, api_version=WORKSPACE_API_VERSION
            ).result()
        return Outcome("created", repaired.id)
    ml = clients.ml(subscription, resource_group, name)
    workspace = MlWorkspace(
        name=name,
        location=location,
        tags=tags,
        storage_account=storage_id,
        key_vault=key_vault_id,
        container_registry=registry_id,
        application_insights=app_insights_id,
    )
    with azure_errors():
        created = ml.workspaces.begin_create(workspace).result()
    return Outcome("created", created.id)


def ensure_cluster(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    workspace: str,
    name: str,
    location: str,
    vm_size: str,
    priority: str,
    min_nodes: int,
    max_nodes: int,
    idle_seconds: int,
    tags: dict[str, str],
) -> Outcome:
    """An autoscaling AmlCompute cluster. Scale settings change in place; size and priority cannot."""
    from azure.ai.ml.entities import AmlCompute

    ml = clients.ml(subscription, resource_group, workspace)
    existing = _settled("compute cluster", name, lambda: ml.compute.get(name))
    tier = "low_priority" if priority == "low_priority" else "dedicated"
    if existing is not None:
        if (existing.size or "").upper() != vm_size.upper() or (existing.tier or "").lower() != tier:
            raise AzureStepError(
                "ClusterChangeRefused",
                f"cluster '{name}' exists as {existing.size} ({existing.tier}); Azure cannot change it to "
                f"{vm_size} ({tier}) in place",
            )
        if not _provisioning_failed(existing) and (
            existing.min_instances,
            existing.max_instances,
            existing.idle_time_before_scale_down,
        ) == (min_nodes, max_nodes, idle_seconds):
            return Outcome("unchanged", existing.id)
    compute = AmlCompute(
        name=name,
        size=vm_size,
        location=location,
        tier=tier,
        min_instances=min_nodes,
        max_instances=max_nodes,
        idle_time_before_scale_down=idle_seconds,
        tags=tags,
    )
    with azure_errors():
        result = ml.compute.begin_create_or_update(compute).result()
    action = "updated" if existing is not None and not _provisioning_failed(existing) else "created"
    return Outcome(action, getattr(result, "id", "") or "")


# --- identities and roles -------------------------------------------------------------------------------


def resolve_principal(clients: AzureClients, *, principal: str, principal_type: str) -> Outcome:
    """The Entra object id of a user (by UPN or mail) or a group (by exact display name)."""
    graph = clients.graph()
    try:
        if principal_type == "group":
            object_id = graph.group_object_id(principal)
        else:
            object_id = graph.user_object_id(principal)
    except LookupError as exc:
        raise AzureStepError("GraphLookupFailed", str(exc)) from exc
    except requests.RequestException as exc:  # Graph throttled or unavailable beyond its retries
        raise AzureStepError("GraphUnavailable", str(exc), transient=True) from exc
    return Outcome("resolved", object_id)


def _role_definition_id(subscription: str, role_name: str) -> str:
    return str(uuid.uuid5(PORTAL_NAMESPACE, f"role-definition/{subscription.lower()}/{role_name}"))


CUSTOM_ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    # Run experiments; cannot delete or reconfigure the workspace, manage computes, or write authorization.
    "Data Scientist": {
        "actions": [
            "Microsoft.MachineLearningServices/workspaces/*/read",
            "Microsoft.MachineLearningServices/workspaces/*/action",
            "Microsoft.MachineLearningServices/workspaces/*/write",
            "Microsoft.MachineLearningServices/workspaces/*/delete",
        ],
        "not_actions": [
            "Microsoft.MachineLearningServices/workspaces/delete",
            "Microsoft.MachineLearningServices/workspaces/write",
            "Microsoft.MachineLearningServices/workspaces/computes/*/write",
            "Microsoft.MachineLearningServices/workspaces/computes/*/delete",
            "Microsoft.MachineLearningServices/workspaces/computes/listKeys/action",
            "Microsoft.MachineLearningServices/workspaces/listKeys/action",
            "Microsoft.MachineLearningServices/quotas/write",
            "Microsoft.Authorization/*/write",
            "Microsoft.Support/*/write",
        ],
    },
    # A data scientist who also manages the workspace's clusters (within the quota admins give the team).
    "Team Lead": {
        "actions": [
            "Microsoft.MachineLearningServices/workspaces/*/read",
            "Microsoft.MachineLearningServices/workspaces/*/action",
            "Microsoft.MachineLearningServices/workspaces/*/write",
            "Microsoft.MachineLearningServices/workspaces/*/delete",
            "Microsoft.MachineLearningServices/workspaces/computes/*/write",
            "Microsoft.MachineLearningServices/workspaces/computes/*/delete",
        ],
        "not_actions": [
            "Microsoft.MachineLearningServices/workspaces/delete",
            "Microsoft.MachineLearningServices/workspaces/write",
            "Microsoft.MachineLearningServices/quotas/write",
            "Microsoft.Authorization/*/write",
            "Microsoft.Support/*/write",
        ],
    },
}
CUSTOM_ROLE_MARK = "(managed by the AzureML portal)"


def ensure_custom_role(clients: AzureClients, *, subscription: str, role_name: str) -> Outcome:
    """The portal's custom role, looked up by name first; created with a deterministic id if missing."""
    client = clients.authorization(subscription)
    scope = f"/subscriptions/{subscription}"
    with azure_errors():
        found = list(client.role_definitions.list(scope, filter=f"roleName eq '{role_name}'"))
    permissions = CUSTOM_ROLE_PERMISSIONS[role_name]
    wanted_id = _role_definition_id(subscription, role_name)
    if found:
        role = found[0]
        if role.name != wanted_id and CUSTOM_ROLE_MARK not in (role.description or ""):
            raise AzureStepError(
                "NotManagedByPortal",
                f"a role named '{role_name}' exists in the subscription that the portal did not create "
                f"({role.id})",
            )
        current = role.permissions[0] if role.permissions else None
        if (
            current
            and sorted(current.actions or []) == sorted(permissions["actions"])
            and sorted(current.not_actions or []) == sorted(permissions["not_actions"])
        ):
            return Outcome("unchanged", role.id)
        wanted_id = role.name
    from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleDefinition

    definition = RoleDefinition(
        role_name=role_name,
        description=f"AzureML {role_name} {CUSTOM_ROLE_MARK}",
        role_type="CustomRole",
        permissions=[Permission(actions=permissions["actions"], not_actions=permissions["not_actions"])],
        assignable_scopes=[scope],
    )
    with azure_errors():
        created = client.role_definitions.create_or_update(scope, wanted_id, definition)
    return Outcome("updated" if found else "created", created.id)


class RoleCatalog:
    """Role definition ids by name, looked up once per run (built-in roles are never hard-coded).

    Steps run in threads; the lock makes concurrent grants of the same role share one lookup.
    """

    def __init__(self, clients: AzureClients, subscription: str) -> None:
        self._clients = clients
        self._subscription = subscription
        self._ids: dict[str, str] = {}
        self._lock = threading.Lock()

    def role_id(self, role_name: str) -> str:
        with self._lock:
            if role_name not in self._ids:
                self._ids[role_name] = self._lookup(role_name)
            return self._ids[role_name]

    def _lookup(self, role_name: str) -> str:
        client = self._clients.authorization(self._subscription)
        with azure_errors():
            found = list(
                client.role_definitions.list(
                    f"/subscriptions/{self._subscription}", filter=f"roleName eq '{role_name}'"
                )
            )
        if not found:
            raise AzureStepError("RoleDefinitionNotFound", f"no role named '{role_name}' in the subscription")
        return str(found[0].id)


def assignment_name(scope: str, role_definition_id: str, principal_id: str) -> str:
    """Deterministic assignment name: the same grant always has the same name."""
    key = f"{scope.lower()}|{role_definition_id.rsplit('/', 1)[-1].lower()}|{principal_id.lower()}"
    return str(uuid.uuid5(PORTAL_NAMESPACE, key))


def ensure_role_assignment(
    clients: AzureClients,
    *,
    subscription: str,
    scope: str,
    role_definition_id: str,
    principal_id: str,
    principal_type: str,
) -> Outcome:
    """Grant a role at a scope under the portal's deterministic name."""
    client = clients.authorization(subscription)
    name = assignment_name(scope, role_definition_id, principal_id)
    existing = _get_or_none(client.role_assignments.get, scope, name)
    if existing is not None:
        return Outcome("unchanged", existing.id)
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

    params = RoleAssignmentCreateParameters(
        role_definition_id=role_definition_id,
        principal_id=principal_id,
        principal_type="Group" if principal_type == "group" else "User",
    )
    try:
        with azure_errors():
            created = client.role_assignments.create(scope, name, params)
    except AzureStepError as exc:
        if exc.code == "RoleAssignmentExists":
            # Granted outside the portal under another name: leave it alone (and never revoke it).
            return Outcome("exists", "", "already granted outside the portal")
        raise
    return Outcome("created", created.id)


def remove_role_assignment(
    clients: AzureClients, *, subscription: str, scope: str, role_definition_id: str, principal_id: str
) -> Outcome:
    """Remove exactly the assignment the portal made (its deterministic name), nothing else."""
    client = clients.authorization(subscription)
    name = assignment_name(scope, role_definition_id, principal_id)
    try:
        with azure_errors():
            client.role_assignments.delete(scope, name)
    except AzureStepError as exc:
        if exc.status == 404:
            return Outcome("absent")
        raise
    return Outcome("removed")


NAME_CHECK_TYPES = {
    "storage": "Microsoft.Storage/storageAccounts",
    "key_vault": "Microsoft.KeyVault/vaults",
    "registry": "Microsoft.ContainerRegistry/registries",
}


def name_available(clients: AzureClients, *, subscription: str, kind: str, name: str) -> dict[str, Any]:
    """Ask Azure whether a globally unique name is free: {kind, name, available, reason, message}."""
    body = {"name": name, "type": NAME_CHECK_TYPES[kind]}
    with azure_errors():
        if kind == "storage":
            answer = clients.storage(subscription).storage_accounts.check_name_availability(body)
        elif kind == "key_vault":
            answer = clients.keyvault(subscription).vaults.check_name_availability(body)
        else:
            answer = clients.registry(subscription).registries.check_name_availability(body)
    return {
        "kind": kind,
        "name": name,
        "available": bool(answer.name_available),
        "reason": str(answer.reason or ""),
        "message": str(answer.message or ""),
    }
