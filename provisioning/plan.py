"""What an approved request will create and grant: every name, cluster and role assignment.

The plan is computed from the request's spec (and, for changes to an existing workspace, from
that workspace's names). It is shown to the admin before approval, stored on the request at
approval, printed by ``manage.py show_request --json``, and executed by the provisioning engine.
"""

from __future__ import annotations

from typing import Any

from provisioning import naming
from provisioning.arm import CUSTOM_ROLES, OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec

# The role matrix (README "Roles granted"): least privilege per persona and scope. Built-in roles are looked up by name at
# run time; "Team Lead" and "Data Scientist" are the portal's custom roles.
ROLE_MATRIX: dict[str, dict[str, str]] = {
    "team_lead": {
        "resource_group": "Reader",
        "workspace": "Team Lead",
        "storage": "Storage Blob Data Contributor",
        "key_vault": "Key Vault Secrets Officer",
        "registry": "AcrPush",
        "app_insights": "Reader",
    },
    "data_scientist": {
        "resource_group": "Reader",
        "workspace": "Data Scientist",
        "storage": "Storage Blob Data Contributor",
        "key_vault": "Key Vault Secrets User",
        "registry": "AcrPull",
        "app_insights": "Reader",
    },
}
# The data scientists' role on the workspace: the portal's custom role (the default) or Azure's built-in one,
# as the environment's policy chooses (docs/roles.md compares them line by line).
DATA_SCIENTIST_ROLES = ("Data Scientist", "AzureML Data Scientist")


def _scopes(names: dict[str, str]) -> list[tuple[str, str, str]]:
    """(scope kind, role-matrix column, resource name) for every scope a member is granted on."""
    scopes = [
        ("resource_group", "resource_group", names["resource_group"]),
        ("workspace", "workspace", names["workspace"]),
        ("storage_account", "storage", names["storage_work"]),
        ("storage_account", "storage", names["storage_data"]),
    ]
    if names.get("data_lake"):
        scopes.append(("storage_account", "storage", names["data_lake"]))
    scopes += [
        ("key_vault", "key_vault", names["key_vault"]),
        ("registry", "registry", names["registry"]),
        ("app_insights", "app_insights", names["app_insights"]),
    ]
    return scopes


def role_assignments_for(
    member: MemberSpec, names: dict[str, str], *, scientist_role: str = DATA_SCIENTIST_ROLES[0]
) -> list[dict[str, str]]:
    """Every role assignment one member gets; groups get the Data Scientist column. ``scientist_role``: the
    data scientists' role on the workspace, the portal's custom one or Azure's built-in (the workspace's
    environment policy chose it when the workspace was approved)."""
    persona = "data_scientist" if member.principal_type == "group" else member.persona

    def role(column: str) -> str:
        if persona == "data_scientist" and column == "workspace" and scientist_role in DATA_SCIENTIST_ROLES:
            return scientist_role
        return ROLE_MATRIX[persona][column]

    return [
        {
            "principal": member.principal,
            "principal_type": member.principal_type,
            "persona": member.persona,
            "role": role(column),
            "scope_type": scope_type,
            "scope_name": scope_name,
        }
        for scope_type, column, scope_name in _scopes(names)
    ]


def _resources(names: naming.ResourceNames, tags: dict[str, str], spec: RequestSpec) -> list[dict[str, Any]]:
    ws = spec.workspace
    assert ws is not None  # nosec B101 # a plan is made only for a request with a workspace (mypy narrowing)
    resources: list[dict[str, Any]] = [
        {"type": "resource_group", "name": names.resource_group, "location": ws.region, "tags": tags},
        {
            "type": "storage_account",
            "name": names.storage_work,
            "purpose": "workspace artifacts",
            "settings": {
                "kind": "StorageV2",
                "https_only": True,
                "minimum_tls": "TLS1_2",
                "allow_blob_public_access": False,
                "hierarchical_namespace": False,
            },
        },
        {
            "type": "storage_account",
            "name": names.storage_data,
            "purpose": "team data",
            "settings": {
                "kind": "StorageV2",
                "https_only": True,
                "minimum_tls": "TLS1_2",
                "allow_blob_public_access": False,
                "hierarchical_namespace": False,
            },
        },
    ]
    if ws.data_lake:
        resources.append(
            {
                "type": "storage_account",
                "name": names.data_lake,
                "purpose": "data lake (ADLS Gen2)",
                "settings": {
                    "kind": "StorageV2",
                    "https_only": True,
                    "minimum_tls": "TLS1_2",
                    "allow_blob_public_access": False,
                    "hierarchical_namespace": True,
                },
            }
        )
    resources += [
        {
            "type": "key_vault",
            "name": names.key_vault,
            "settings": {"permission_model": "RBAC", "soft_delete": True, "purge_protection": True},
        },
        {
            "type": "container_registry",
            "name": names.registry,
            "settings": {"sku": "Basic", "admin_user_enabled": False},
        },
        {"type": "app_insights", "name": names.app_insights, "settings": {"kind": "web"}},
        {"type": "workspace", "name": names.workspace, "location": ws.region},
    ]
    return resources


def tags_for(spec: RequestSpec, *, request_id: int | None, owner: str) -> dict[str, str]:
    """The tags every resource of a new workspace carries, including the portal's ownership tag."""
    ws = spec.workspace
    assert ws is not None  # nosec B101 # a plan is made only for a request with a workspace (mypy narrowing)
    inp = ws.naming_input()
    return {
        "dept": inp.department,
        "team": inp.team,
        "environment": inp.environment,
        "owner": owner,
        OWNERSHIP_TAG: OWNERSHIP_VALUE,
        "portal-request": str(request_id) if request_id is not None else "",
    }


# Day-2 cluster changes. AmlCompute changes its scale settings in place (Compute_Update, a PATCH of
# ClusterUpdateParameters); its VM size and priority are fixed once created: a change to either replaces it.
CLUSTER_FIELDS = ("vm_size", "priority", "min_nodes", "max_nodes", "idle_seconds")
IN_PLACE_FIELDS = ("min_nodes", "max_nodes", "idle_seconds")
REPLACE_WHY = (
    "Azure cannot change the VM size or priority of an existing AmlCompute cluster: it is deleted and created "
    "again with the new settings; refused while the cluster has running nodes"
)


def cluster_settings(c: ClusterSpec) -> dict[str, Any]:
    """A cluster's settings as a plan (and the diff) holds them."""
    return {
        "name": c.name,
        "vm_size": c.vm_size.upper(),
        "priority": c.priority,
        "min_nodes": c.min_nodes,
        "max_nodes": c.max_nodes,
        "idle_seconds": c.idle_seconds,
        **({"justification": c.justification} if c.justification else {}),
    }


def cluster_diff(current: dict[str, Any], wanted: ClusterSpec) -> dict[str, list[Any]]:
    """The fields of a cluster a change moves, old -> new."""
    new = cluster_settings(wanted)
    return {f: [current[f], new[f]] for f in CLUSTER_FIELDS if current[f] != new[f]}


def cluster_change_mode(fields: dict[str, list[Any]]) -> str:
    """``update`` (in place) or ``replace`` (delete, then create) for the fields a change moves."""
    return "replace" if set(fields) - set(IN_PLACE_FIELDS) else "update"


def member_name(principal: str, principal_type: str) -> str:
    """How a member is named in a plan: users by UPN (lower case), groups by display name."""
    return principal.lower() if principal_type == "user" else principal


def _change_lines(
    spec: RequestSpec,
    current_clusters: dict[str, dict[str, Any]],
    current_members: dict[str, dict[str, Any]],
    revoked: list[dict[str, str]],
    resources: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The plan as a diff, one line per object: create, update (in place), replace, delete."""
    lines: list[dict[str, Any]] = [
        {"action": "create", "object": r["type"], "name": r["name"], "fields": {}} for r in resources
    ]
    for c in spec.clusters:
        new = cluster_settings(c)
        lines.append(
            {
                "action": "create",
                "object": "cluster",
                "name": c.name,
                "fields": {f: [None, new[f]] for f in CLUSTER_FIELDS},
            }
        )
    for c in spec.cluster_updates:
        fields = cluster_diff(current_clusters[c.name.lower()], c)
        mode = cluster_change_mode(fields)
        line = {"action": mode, "object": "cluster", "name": c.name, "fields": fields}
        lines.append({**line, "why": REPLACE_WHY} if mode == "replace" else line)
    for name in spec.cluster_deletes:
        was = current_clusters[name.lower()]
        lines.append(
            {
                "action": "delete",
                "object": "cluster",
                "name": was["name"],
                "fields": {f: [was[f], None] for f in CLUSTER_FIELDS},
            }
        )
    for m in spec.all_members():
        lines.append(
            {
                "action": "create",
                "object": "member" if m.principal_type == "user" else "group",
                "name": member_name(m.principal, m.principal_type),
                "fields": {"persona": [None, m.persona]},
            }
        )
    for m in spec.persona_changes:
        was = current_members[m.principal.lower()]
        lines.append(
            {
                "action": "update",
                "object": "member" if was["principal_type"] == "user" else "group",
                "name": member_name(was["principal"], was["principal_type"]),
                "fields": {"persona": [was["persona"], m.persona]},
            }
        )
    for r in revoked:
        lines.append(
            {
                "action": "delete",
                "object": "member" if r["principal_type"] == "user" else "group",
                "name": member_name(r["principal"], r["principal_type"]),
                "fields": {"persona": [r["persona"], None]},
            }
        )
    return lines


def _persona_change_grants(
    spec: RequestSpec, current_members: dict[str, dict[str, Any]], names: dict[str, str], scientist_role: str
) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """A member whose persona changes gets the new persona's roles it lacks and loses the old ones it no
    longer has; roles both personas share (Reader, storage) stay untouched."""
    grants: list[dict[str, str]] = []
    revokes: list[dict[str, str]] = []
    for m in spec.persona_changes:
        was = current_members[m.principal.lower()]
        member = MemberSpec(was["principal"], was["persona"], principal_type=was["principal_type"])
        old = role_assignments_for(member, names, scientist_role=scientist_role)
        new = role_assignments_for(
            MemberSpec(was["principal"], m.persona, was["principal_type"]),
            names,
            scientist_role=scientist_role,
        )
        key = lambda ra: (ra["role"], ra["scope_type"], ra["scope_name"])  # noqa: E731
        old_keys, new_keys = {key(ra) for ra in old}, {key(ra) for ra in new}
        grants += [ra for ra in new if key(ra) not in old_keys]
        revokes += [ra for ra in old if key(ra) not in new_keys]
    return grants, revokes


def build_plan(
    spec: RequestSpec,
    *,
    kind: str,
    request_id: int | None,
    owner: str,
    existing_names: dict[str, str] | None = None,
    subscription_id: str = "",
    revoked: list[dict[str, str]] | None = None,
    workspace_quotas: list[dict[str, Any]] | None = None,
    current_clusters: dict[str, dict[str, Any]] | None = None,
    current_members: dict[str, dict[str, Any]] | None = None,
    scientist_role: str = DATA_SCIENTIST_ROLES[0],
) -> dict[str, Any]:
    """The full plan of a request. ``existing_names`` are the workspace's names when it exists.

    ``workspace_quotas`` are the team's dedicated budgets to set as the workspace's AzureML quota.
    ``current_clusters`` (by lower-case name: ``cluster_settings`` plus ``azure_id``) and ``current_members``
    (by lower-case principal: ``principal``, ``principal_type``, ``persona``) are the workspace's approved
    state, which a day-2 change's updates, deletes and persona changes are planned against.
    """
    current_clusters = current_clusters or {}
    current_members = current_members or {}
    if spec.workspace is not None:
        resource_names = spec.workspace.names()
        names = resource_names.as_dict()
        resources = _resources(resource_names, tags_for(spec, request_id=request_id, owner=owner), spec)
        subscription_id = spec.workspace.subscription_id
    else:
        assert existing_names is not None, "changes to an existing workspace need its names"  # nosec B101 # callers pass the names for an existing workspace (mypy narrowing)
        names = existing_names
        resources = []
    members = list(spec.all_members())
    grants, role_revocations = _persona_change_grants(spec, current_members, names, scientist_role)
    updates, deletes = [], []
    for c in spec.cluster_updates:
        was = current_clusters[c.name.lower()]
        mode = cluster_change_mode(cluster_diff(was, c))
        updates.append(
            {**cluster_settings(c), "name": was["name"], "mode": mode, "azure_id": was["azure_id"]}
        )
    for name in spec.cluster_deletes:
        was = current_clusters[name.lower()]
        deletes.append({"name": was["name"], "azure_id": was["azure_id"]})
    return {
        "kind": kind,
        "subscription_id": subscription_id,
        "names": names,
        "resources": resources,
        # Every custom role a grant needs (a persona change grants Team Lead or Data Scientist alone).
        "custom_roles": list(CUSTOM_ROLES)
        if members
        else sorted({ra["role"] for ra in grants} & set(CUSTOM_ROLES)),
        "clusters": [
            {
                "name": c.name,
                "vm_size": c.vm_size,
                "priority": c.priority,
                "min_nodes": c.min_nodes,
                "max_nodes": c.max_nodes,
                "idle_seconds": c.idle_seconds,
                **({"justification": c.justification} if c.justification else {}),
            }
            for c in spec.clusters
        ],
        "workspace_quotas": list(workspace_quotas or []),
        "cluster_updates": updates,
        "cluster_deletes": deletes,
        "scientist_role": scientist_role,
        "role_assignments": [
            ra for m in members for ra in role_assignments_for(m, names, scientist_role=scientist_role)
        ]
        + grants,
        "revocations": [
            ra
            for r in (revoked or [])
            for ra in role_assignments_for(
                MemberSpec(
                    principal=r["principal"], persona=r["persona"], principal_type=r["principal_type"]
                ),
                names,
                scientist_role=scientist_role,
            )
        ]
        + role_revocations,
        "changes": _change_lines(spec, current_clusters, current_members, revoked or [], resources),
    }
