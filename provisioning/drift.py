"""What differs between the approved state of a workspace and what Azure holds (pure: no Django, no SDK).

``compare`` takes the approved state (``Approved``: the workspace's names, active clusters and members) and
what a reconcile read from Azure (``Observation``) and returns one ``Difference`` per drift item:

- ``missing``: an approved resource group, resource or cluster Azure does not hold;
- ``changed``: one per changed setting of a cluster, or the portal's ``managed-by`` tag gone from
  something the portal made;
- ``access_removed``: a role assignment an active membership should have, absent;
- ``access_added``: an assignment at the resource group, or on a resource of the workspace, that no
  membership explains (the system-assigned identities of the workspace's own resources aside);
- ``unmanaged``: a resource in the group, or a cluster in the workspace, the portal did not make.

A difference's ``key`` is its identity across reconciles (kind, Azure id, field), so a later reconcile
finds the same item again instead of adding another.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from provisioning.arm import (
    ADMIN_ROLES,
    APP_INSIGHTS_PROVIDER,
    KEY_VAULT_PROVIDER,
    OWNERSHIP_TAG,
    OWNERSHIP_VALUE,
    REGISTRY_PROVIDER,
    STORAGE_PROVIDER,
    WORKSPACE_PROVIDER,
    arm_id,
)
from provisioning.plan import role_assignments_for
from provisioning.spec import MemberSpec
from provisioning.steps import scope_id

MISSING, CHANGED, ACCESS_REMOVED, ACCESS_ADDED, UNMANAGED = (
    "missing",
    "changed",
    "access_removed",
    "access_added",
    "unmanaged",
)
CLUSTER_FIELDS = ("vm_size", "priority", "min_nodes", "max_nodes", "idle_seconds")
TAG_FIELD = f"tags.{OWNERSHIP_TAG}"
ASSIGNMENT_FIELD = "role_assignment"


def _managed(tags: dict[str, str] | None) -> bool:
    return (tags or {}).get(OWNERSHIP_TAG) == OWNERSHIP_VALUE


# --- what a reconcile read ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeenResource:
    """A resource group, or a top-level resource in it, as Azure lists it."""

    azure_id: str
    name: str
    type: str
    location: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    identity_principal_id: str = ""  # its system-assigned identity, if it has one

    @property
    def managed(self) -> bool:
        return _managed(self.tags)


@dataclass(frozen=True)
class SeenCluster:
    """An AmlCompute cluster of the workspace, as Azure lists it."""

    azure_id: str
    name: str
    vm_size: str
    priority: str  # "dedicated" or "low_priority"
    min_nodes: int
    max_nodes: int
    idle_seconds: int
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def managed(self) -> bool:
        return _managed(self.tags)

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CLUSTER_FIELDS}


@dataclass(frozen=True)
class SeenAssignment:
    """A role assignment at the resource group or below it."""

    azure_id: str
    scope: str
    role_definition_id: str
    role_name: str  # "" when the subscription lists no definition with this id
    principal_id: str
    principal_type: str  # as Azure writes it: User, Group, ServicePrincipal
    principal_name: str = ""  # UPN or display name, when Entra ID said


@dataclass(frozen=True)
class Observation:
    """What one reconcile read of a workspace: its group (None: gone), resources, clusters and access."""

    group: SeenResource | None
    resources: tuple[SeenResource, ...] = ()
    clusters: tuple[SeenCluster, ...] = ()
    assignments: tuple[SeenAssignment, ...] = ()
    reads: int = 0  # ARM requests made for this workspace


# --- what the portal approved ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApprovedCluster:
    """An active cluster's approved settings."""

    name: str
    vm_size: str
    priority: str
    min_nodes: int
    max_nodes: int
    idle_seconds: int

    def settings(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in CLUSTER_FIELDS}


@dataclass(frozen=True)
class ApprovedMember:
    """An active membership: who (name and Entra object id) and as what."""

    principal: str
    principal_type: str  # "user" or "group"
    persona: str
    object_id: str


@dataclass(frozen=True)
class Approved:
    """The approved state of one workspace.

    ``names`` are a plan's names (resource_group, workspace, storage_work, ...). ``in_flight_clusters`` and
    ``in_flight_principals`` are clusters and members a request is still making or revoking: neither
    expected nor reported as added.
    """

    subscription_id: str
    names: dict[str, str]
    clusters: tuple[ApprovedCluster, ...] = ()
    members: tuple[ApprovedMember, ...] = ()
    in_flight_clusters: frozenset[str] = frozenset()
    in_flight_principals: frozenset[str] = frozenset()
    # The subscription's workspace-admin group: its administration role on the resource group is the portal's.
    admin_principals: frozenset[str] = frozenset()
    scientist_role: str = "Data Scientist"  # the data scientists' workspace role it was approved with
    # Adopted and not taken over: nothing of it carries the portal's tag, and that is not drift.
    observed: bool = False

    @property
    def group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.names['resource_group']}"

    def resource_id(self, provider: str, name: str) -> str:
        return arm_id(self.subscription_id, self.names["resource_group"], provider, name)

    def cluster_id(self, name: str) -> str:
        return f"{self.resource_id(WORKSPACE_PROVIDER, self.names['workspace'])}/computes/{name}"

    def resources(self) -> list[tuple[str, str, str]]:
        """(plan resource type, ARM provider type, name) of every resource the workspace is made of."""
        n = self.names
        found = [
            ("storage_account", STORAGE_PROVIDER, n["storage_work"]),
            ("storage_account", STORAGE_PROVIDER, n["storage_data"]),
            ("storage_account", STORAGE_PROVIDER, n.get("data_lake", "")),
            ("key_vault", KEY_VAULT_PROVIDER, n["key_vault"]),
            ("container_registry", REGISTRY_PROVIDER, n["registry"]),
            ("app_insights", APP_INSIGHTS_PROVIDER, n["app_insights"]),
            ("workspace", WORKSPACE_PROVIDER, n["workspace"]),
        ]
        return [r for r in found if r[2]]  # an adopted workspace may lack some (no data storage, say)


@dataclass(frozen=True)
class Difference:
    """One drift item as a reconcile finds it."""

    kind: str
    key: str
    resource_id: str
    field: str = ""
    expected: Any = None
    actual: Any = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


def _key(kind: str, resource_id: str, name: str = "") -> str:
    return f"{kind}|{resource_id.lower()}|{name}"


def _difference(kind: str, resource_id: str, name: str = "", **values: Any) -> Difference:
    return Difference(kind, _key(kind, resource_id, name), resource_id, name, **values)


def _tag_removed(resource_id: str, tags: dict[str, str], details: dict[str, Any]) -> Difference:
    return _difference(
        CHANGED,
        resource_id,
        TAG_FIELD,
        expected=OWNERSHIP_VALUE,
        actual=tags.get(OWNERSHIP_TAG),
        details=details,
    )


# --- the comparison ----------------------------------------------------------------------------------------


def compare(approved: Approved, seen: Observation) -> list[Difference]:
    """Every difference between the approved state and what Azure holds, in a stable order."""
    found = _group(approved, seen) + _resources(approved, seen) + _clusters(approved, seen)
    return found + _access(approved, seen)


def _group(approved: Approved, seen: Observation) -> list[Difference]:
    details = {"type": "resource_group", "name": approved.names["resource_group"]}
    if seen.group is None:
        return [_difference(MISSING, approved.group_id, expected=details, details=details)]
    if not seen.group.managed and not approved.observed:
        return [_tag_removed(seen.group.azure_id, seen.group.tags, details)]
    return []


def _by_type_and_name(resources: tuple[SeenResource, ...]) -> dict[tuple[str, str], SeenResource]:
    return {(r.type.lower(), r.name.lower()): r for r in resources}


def _resources(approved: Approved, seen: Observation) -> list[Difference]:
    held = _by_type_and_name(seen.resources)
    found: list[Difference] = []
    expected = set()
    for kind, provider, name in approved.resources():
        expected.add((provider.lower(), name.lower()))
        details = {"type": kind, "provider": provider, "name": name}
        resource = held.get((provider.lower(), name.lower()))
        if resource is None:
            rid = approved.resource_id(provider, name)
            found.append(_difference(MISSING, rid, expected=details, details=details))
        elif not resource.managed and not approved.observed:
            found.append(_tag_removed(resource.azure_id, resource.tags, details))
    for key, resource in sorted(held.items()):
        if key not in expected:
            what = {"type": resource.type, "name": resource.name, "tags": resource.tags}
            found.append(_difference(UNMANAGED, resource.azure_id, actual=what, details=what))
    return found


def _clusters(approved: Approved, seen: Observation) -> list[Difference]:
    held = {c.name.lower(): c for c in seen.clusters}
    found: list[Difference] = []
    for cluster in approved.clusters:
        details = {"type": "cluster", "name": cluster.name}
        there = held.get(cluster.name.lower())
        if there is None:
            rid = approved.cluster_id(cluster.name)
            found.append(_difference(MISSING, rid, expected=cluster.settings(), details=details))
            continue
        if not there.managed and not approved.observed:
            found.append(_tag_removed(there.azure_id, there.tags, details))
        wanted, actual = cluster.settings(), there.settings()
        for name in CLUSTER_FIELDS:
            if _normal(wanted[name]) != _normal(actual[name]):
                found.append(
                    _difference(
                        CHANGED,
                        there.azure_id,
                        name,
                        expected=wanted[name],
                        actual=actual[name],
                        details=details,
                    )
                )
    known = {c.name.lower() for c in approved.clusters} | {n.lower() for n in approved.in_flight_clusters}
    for name, there in sorted(held.items()):
        if name not in known:
            what = {"type": "cluster", "name": there.name, **there.settings(), "tags": there.tags}
            found.append(_difference(UNMANAGED, there.azure_id, actual=what, details=what))
    return found


def _normal(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


# --- access ----


@dataclass(frozen=True)
class _Expected:
    scope: str
    role: str
    member: ApprovedMember
    scope_type: str
    scope_name: str

    @property
    def triple(self) -> tuple[str, str, str]:
        return (self.scope.lower(), self.role, self.member.object_id.lower())


def expected_assignments(approved: Approved) -> list[_Expected]:
    """The role assignments every active member with a known object id should hold (the role matrix, `provisioning.plan.ROLE_MATRIX`)."""
    plan = {"subscription_id": approved.subscription_id, "names": approved.names}
    found = []
    for member in approved.members:
        if not member.object_id:
            continue  # never resolved: nothing in Azure can be matched to it
        spec = MemberSpec(member.principal, member.persona, member.principal_type)
        for ra in role_assignments_for(spec, approved.names, scientist_role=approved.scientist_role):
            if ra["scope_type"] != "resource_group" and not ra["scope_name"]:
                continue  # a resource an adopted workspace does not have
            scope = scope_id(plan, ra["scope_type"], ra["scope_name"])
            found.append(_Expected(scope, ra["role"], member, ra["scope_type"], ra["scope_name"]))
    return found


def _watched_scopes(approved: Approved, seen: Observation) -> dict[str, bool]:
    """Scopes whose access is compared (lower-case id -> carries the portal's tag): the group and the
    workspace's own resources. Access on a resource the portal did not make is that resource's owner's."""
    held = _by_type_and_name(seen.resources)
    scopes = {approved.group_id.lower(): seen.group is not None and seen.group.managed}
    for _kind, provider, name in approved.resources():
        resource = held.get((provider.lower(), name.lower()))
        scopes[approved.resource_id(provider, name).lower()] = resource is not None and resource.managed
    return scopes


def _top_scope(scope: str) -> str:
    """The resource a scope is on or under: the group, or the top-level resource (8 id segments)."""
    parts = scope.strip("/").split("/")
    return "/" + "/".join(parts[:8] if len(parts) >= 8 else parts[:4])


def _access(approved: Approved, seen: Observation) -> list[Difference]:
    expected = expected_assignments(approved)
    held = {(a.scope.lower(), a.role_name, a.principal_id.lower()): a for a in seen.assignments}
    found = [_removed(e) for e in expected if e.triple not in held]
    explained = {e.triple for e in expected}
    identities = {
        r.identity_principal_id.lower() for r in seen.resources if r.managed and r.identity_principal_id
    }
    tolerated = identities | {p.lower() for p in approved.in_flight_principals}
    admins = {p.lower() for p in approved.admin_principals}
    scopes = _watched_scopes(approved, seen)
    for triple, assignment in sorted(held.items()):
        top = _top_scope(assignment.scope).lower()
        if triple in explained or triple[2] in tolerated or top not in scopes:
            continue
        if assignment.role_name in ADMIN_ROLES and triple[2] in admins:
            continue
        found.append(_added(assignment, scope_managed=scopes[top]))
    return found


def _removed(e: _Expected) -> Difference:
    wanted = {
        "role": e.role,
        "principal": e.member.principal,
        "principal_id": e.member.object_id,
        "principal_type": e.member.principal_type,
    }
    details = {
        **wanted,
        "persona": e.member.persona,
        "scope": e.scope,
        "scope_type": e.scope_type,
        "scope_name": e.scope_name,
    }
    return Difference(
        ACCESS_REMOVED,
        _key(ACCESS_REMOVED, e.scope, f"{e.role}|{e.member.object_id.lower()}"),
        e.scope,
        ASSIGNMENT_FIELD,
        expected=wanted,
        details=details,
    )


def _added(a: SeenAssignment, *, scope_managed: bool) -> Difference:
    actual = {
        "role": a.role_name or a.role_definition_id,
        "principal": a.principal_name or a.principal_id,
        "principal_id": a.principal_id,
        "principal_type": a.principal_type,
        "scope": a.scope,
    }
    details = {
        **actual,
        "assignment_id": a.azure_id,
        "role_name": a.role_name,
        "role_definition_id": a.role_definition_id,
        "principal_name": a.principal_name,
        "scope_managed": scope_managed,
    }
    return _difference(ACCESS_ADDED, a.azure_id, ASSIGNMENT_FIELD, actual=actual, details=details)


# --- in words ----------------------------------------------------------------------------------------------


def in_words(value: Any) -> str:
    """An expected or actual value as a person reads it ("absent" for nothing)."""
    if value is None or value == "":
        return "absent"
    if isinstance(value, dict):
        if "role" in value:
            return f"{value['role']} for {value.get('principal') or value.get('principal_id')}"
        if "vm_size" in value:
            return (
                f"{value['vm_size']} {str(value['priority']).replace('_', ' ')}, "
                f"{value['min_nodes']}-{value['max_nodes']} nodes, {value['idle_seconds']} s idle"
            )
        if "name" in value:
            return f"{str(value.get('type', '')).replace('_', ' ')} {value['name']}".strip()
    return str(value)
