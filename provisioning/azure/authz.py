"""Identities and roles: Graph look-ups, the portal's custom roles, and role assignments under
deterministic names (azure-mgmt-authorization)."""

from __future__ import annotations

import threading
import time
import uuid

import requests

from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, Outcome, azure_errors, get_or_none
from provisioning.roles import CUSTOM_ROLE_PERMISSIONS

# Namespace of the portal's deterministic ids (role definitions and role assignments).
PORTAL_NAMESPACE = uuid.UUID("6f1c2f4e-8d3a-5b7e-9c1d-2a4b6c8d0e1f")


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


# Built-in roles' ids are the same in every subscription and never change: one lookup per process (and
# hour) serves every run, which spares a burst of runs five role lookups each against ARM's read limit.
BUILT_IN_ROLE = "BuiltInRole"
BUILT_IN_SECONDS = 3600.0
_built_in: dict[tuple[str, str, str], tuple[str, float]] = {}
_built_in_lock = threading.Lock()


class RoleCatalog:
    """Role definition ids by name, looked up once per run, built-in ones once per process (they are
    looked up by name, never hard-coded).

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
                self._ids[role_name] = self._known(role_name) or self._lookup(role_name)
            return self._ids[role_name]

    def _key(self, role_name: str) -> tuple[str, str, str]:
        return (self._clients.arm_endpoint, self._subscription.lower(), role_name)

    def _known(self, role_name: str) -> str | None:
        with _built_in_lock:
            found = _built_in.get(self._key(role_name))
        return found[0] if found and time.monotonic() - found[1] < BUILT_IN_SECONDS else None

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
        if found[0].role_type == BUILT_IN_ROLE:
            with _built_in_lock:
                _built_in[self._key(role_name)] = (str(found[0].id), time.monotonic())
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
    look_first: bool = True,
) -> Outcome:
    """Grant a role at a scope under the portal's deterministic name.

    Looked up first, unless ``look_first=False`` (a scope the run created: nothing is granted there yet).
    The PUT is idempotent either way: the same grant under the same name answers 200, a new one 201.
    """
    client = clients.authorization(subscription)
    name = assignment_name(scope, role_definition_id, principal_id)
    existing = get_or_none(client.role_assignments.get, scope, name) if look_first else None
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
            status, created = client.role_assignments.create(
                scope,
                name,
                params,
                cls=lambda response, body, _headers: (response.http_response.status_code, body),
            )
    except AzureStepError as exc:
        if exc.code == "RoleAssignmentExists":
            # Granted outside the portal under another name: leave it alone (and never revoke it).
            return Outcome("exists", "", "already granted outside the portal")
        raise
    return Outcome("unchanged" if status == 200 else "created", created.id)


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
