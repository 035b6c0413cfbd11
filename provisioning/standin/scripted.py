"""Workspaces "made by the tutorial's scripts": what the portal finds in Azure before it manages anything.

``newamllabworkspace.sh``, ``newamllabcompute.sh`` and ``assignamlworkspaceroles.sh`` made, with the Azure
CLI and no ``managed-by`` tag: a resource group, storage accounts, a key vault, a container registry,
application insights, the workspace naming them, AmlCompute clusters, the tutorial's custom "Data
Scientist" role and role assignments. ``scripted_workspace`` puts the same into the stand-in's state at
once, with the bodies its own create handlers store (so reads, listings, reconciles and tag updates see
them exactly like resources made through the API). Names are given whole: the caller decides whether they
follow the tutorial's convention. Used by ``manage.py demo`` (so discovery shows something) and tests.
"""

from __future__ import annotations

import uuid
from typing import Any

from provisioning.standin.arm import Context, group_id
from provisioning.standin.arm_compute import _compute
from provisioning.standin.arm_ml import WORKSPACE, WorkspacesApi
from provisioning.standin.outside import Outside, idle_duration
from provisioning.standin.resource_shapes import (
    COMPONENT,
    REGISTRY,
    STORAGE,
    VAULT,
    component_body,
    registry_body,
    storage_account_body,
    vault_body,
)
from provisioning.standin.wire import utc_now

# The tutorial's custom role, as its description has it: everything in a workspace but deleting it, writing or
# deleting computes and writing authorization (an approximation: the role file itself is not in seed/).
TUTORIAL_ROLE = "Data Scientist"
TUTORIAL_ROLE_ACTIONS = ["*"]
TUTORIAL_ROLE_NOT_ACTIONS = [
    "Microsoft.MachineLearningServices/workspaces/*/delete",
    "Microsoft.MachineLearningServices/workspaces/computes/*/write",
    "Microsoft.MachineLearningServices/workspaces/computes/*/delete",
    "Microsoft.Authorization/*/write",
]


def _tutorial_role(ctx: Context, subscription: str) -> None:
    """The tutorial's custom "Data Scientist" role, made once per directory like ``az role definition create``."""
    known = {d["properties"]["roleName"].lower() for d in ctx.state.role_definitions.values()}
    if TUTORIAL_ROLE.lower() in known:
        return
    now = utc_now()
    ctx.state.role_definitions[str(uuid.uuid4())] = {
        "properties": {
            "roleName": TUTORIAL_ROLE,
            "type": "CustomRole",
            "description": "Can perform all actions within an Azure Machine Learning workspace, except for "
            "creating or deleting compute resources and modifying the workspace itself.",
            "assignableScopes": [f"/subscriptions/{subscription}"],
            "permissions": [
                {
                    "actions": TUTORIAL_ROLE_ACTIONS,
                    "notActions": TUTORIAL_ROLE_NOT_ACTIONS,
                    "dataActions": [],
                    "notDataActions": [],
                }
            ],
            "createdOn": now,
            "updatedOn": now,
            "createdBy": None,
            "updatedBy": None,
        }
    }


def scripted_workspace(
    ctx: Context,
    *,
    subscription: str,
    resource_group: str,
    location: str,
    workspace: str,
    storage: str,
    key_vault: str,
    app_insights: str,
    registry: str = "",
    data_storage: str = "",
    clusters: list[dict[str, Any]] | tuple[dict[str, Any], ...] = (),
    grants: list[dict[str, str]] | tuple[dict[str, str], ...] = (),
) -> dict[str, Any]:
    """A workspace and its resources as the scripts left them (no tags); returns the ids made.

    ``clusters``: ``{"name", "vm_size", "priority", "min_nodes", "max_nodes", "idle_seconds"}``.
    ``grants``: ``{"scope": "resource_group" | "workspace" | "storage" | "key_vault" | ..., "role": name,
    "principal_id": object id}``, granted like ``az role assignment create``.
    """
    state = ctx.state
    with state.lock:
        gid = group_id(subscription, resource_group)
        state.put(
            {
                "id": gid,
                "name": resource_group,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location,
                "properties": {"provisioningState": "Succeeded"},
            }
        )
        ids = {"resource_group": gid}
        made = [
            ("storage", STORAGE, storage),
            ("data_storage", STORAGE, data_storage),
            ("key_vault", VAULT, key_vault),
            ("registry", REGISTRY, registry),
            ("app_insights", COMPONENT, app_insights),
        ]
        for key, rtype, name in made:
            if name:
                ids[key] = f"{gid}/providers/{rtype}/{name}"
                state.put(_body(ctx, subscription, ids[key], rtype, name, location))
        ids["workspace"] = f"{gid}/providers/{WORKSPACE}/{workspace}"
        props = {
            "friendlyName": workspace,
            "storageAccount": ids["storage"],
            "keyVault": ids["key_vault"],
            "applicationInsights": ids["app_insights"],
        }
        if registry:
            props["containerRegistry"] = ids["registry"]
        body = {"location": location, "identity": {"type": "SystemAssigned"}, "properties": props}
        state.put(WorkspacesApi(ctx)._workspace(ids["workspace"], workspace, body, None))
        for cluster in clusters:
            cid = f"{ids['workspace']}/computes/{cluster['name']}"
            state.put(_compute(cid, cluster["name"], location, _cluster_body(cluster), None))
            ids[f"cluster:{cluster['name']}"] = cid
        if grants:
            _tutorial_role(ctx, subscription)
        outside = Outside(ctx)
        for grant in grants:
            scope = ids[grant["scope"]]
            outside.add_role_assignment(scope, grant["role"], grant["principal_id"])
        return ids


def _body(ctx: Context, subscription: str, rid: str, rtype: str, name: str, location: str) -> dict[str, Any]:
    if rtype == STORAGE:
        return storage_account_body(
            rid, name, {"location": location, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}, None
        )
    if rtype == VAULT:
        vault = {
            "location": location,
            "properties": {"tenantId": ctx.tenant_id, "sku": {"family": "A", "name": "standard"}},
        }
        return vault_body(rid, name, vault, None, ctx)
    if rtype == REGISTRY:
        # The scripts enabled the admin user (a defect the portal does not repeat).
        return registry_body(
            rid,
            name,
            {"location": location, "sku": {"name": "Standard"}, "properties": {"adminUserEnabled": True}},
            None,
        )
    return component_body(
        rid,
        name,
        subscription,
        {"location": location, "kind": "web", "properties": {"Application_Type": "web"}},
        None,
    )


def _cluster_body(cluster: dict[str, Any]) -> dict[str, Any]:
    priority = "LowPriority" if cluster.get("priority", "dedicated") == "low_priority" else "Dedicated"
    scale = {
        "minNodeCount": int(cluster.get("min_nodes", 0)),
        "maxNodeCount": int(cluster.get("max_nodes", 1)),
        # The scripts hard-coded 1800 s before scaling down.
        "nodeIdleTimeBeforeScaleDown": idle_duration(int(cluster.get("idle_seconds", 1800))),
    }
    inner = {"vmSize": cluster["vm_size"], "vmPriority": priority, "scaleSettings": scale}
    return {"properties": {"computeType": "AmlCompute", "properties": inner}}
