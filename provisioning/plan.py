"""What an approved request will create and grant: every name, cluster and role assignment.

The plan is computed from the request's spec (and, for changes to an existing workspace, from
that workspace's names). It is shown to the admin before approval, stored on the request at
approval, printed by ``manage.py show_request --json``, and executed by the provisioning engine.
"""

from __future__ import annotations

from typing import Any

from provisioning import naming
from provisioning.arm import CUSTOM_ROLES, OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.spec import MemberSpec, RequestSpec

# DESIGN section 5: least privilege per persona and scope. Built-in roles are looked up by name at
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


def role_assignments_for(member: MemberSpec, names: dict[str, str]) -> list[dict[str, str]]:
    """Every role assignment one member gets; groups get the Data Scientist column."""
    persona = "data_scientist" if member.principal_type == "group" else member.persona
    return [
        {
            "principal": member.principal,
            "principal_type": member.principal_type,
            "persona": member.persona,
            "role": ROLE_MATRIX[persona][column],
            "scope_type": scope_type,
            "scope_name": scope_name,
        }
        for scope_type, column, scope_name in _scopes(names)
    ]


def _resources(names: naming.ResourceNames, tags: dict[str, str], spec: RequestSpec) -> list[dict[str, Any]]:
    ws = spec.workspace
    assert ws is not None
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
    assert ws is not None
    inp = ws.naming_input()
    return {
        "dept": inp.department,
        "team": inp.team,
        "environment": inp.environment,
        "owner": owner,
        OWNERSHIP_TAG: OWNERSHIP_VALUE,
        "portal-request": str(request_id) if request_id is not None else "",
    }


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
) -> dict[str, Any]:
    """The full plan of a request. ``existing_names`` are the workspace's names when it exists.

    ``workspace_quotas`` are the team's dedicated budgets to set as the workspace's AzureML quota.
    """
    if spec.workspace is not None:
        resource_names = spec.workspace.names()
        names = resource_names.as_dict()
        resources = _resources(resource_names, tags_for(spec, request_id=request_id, owner=owner), spec)
        subscription_id = spec.workspace.subscription_id
    else:
        assert existing_names is not None, "changes to an existing workspace need its names"
        names = existing_names
        resources = []
    members = list(spec.all_members())
    return {
        "kind": kind,
        "subscription_id": subscription_id,
        "names": names,
        "resources": resources,
        "custom_roles": list(CUSTOM_ROLES) if members else [],
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
        "role_assignments": [ra for m in members for ra in role_assignments_for(m, names)],
        "revocations": [
            ra
            for r in (revoked or [])
            for ra in role_assignments_for(
                MemberSpec(
                    principal=r["principal"], persona=r["persona"], principal_type=r["principal_type"]
                ),
                names,
            )
        ],
    }
