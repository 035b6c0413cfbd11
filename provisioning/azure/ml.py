"""Idempotent operations on the AzureML workspace and its compute clusters (azure-ai-ml, generic ARM)."""

from __future__ import annotations

from provisioning.arm import WORKSPACE_PROVIDER, arm_id
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, Outcome, azure_errors, provisioning_failed, settled

# Microsoft.MachineLearningServices/workspaces read through the generic resources API (a GA version).
WORKSPACE_API_VERSION = "2024-04-01"


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

    workspace_id = arm_id(subscription, resource_group, WORKSPACE_PROVIDER, name)
    arm = clients.resources(subscription)
    existing = settled(
        "workspace", name, lambda: arm.resources.get_by_id(workspace_id, api_version=WORKSPACE_API_VERSION)
    )
    if existing is not None and not provisioning_failed(existing):
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
    existing = settled("compute cluster", name, lambda: ml.compute.get(name))
    tier = "low_priority" if priority == "low_priority" else "dedicated"
    if existing is not None:
        if (existing.size or "").upper() != vm_size.upper() or (existing.tier or "").lower() != tier:
            raise AzureStepError(
                "ClusterChangeRefused",
                f"cluster '{name}' exists as {existing.size} ({existing.tier}); Azure cannot change it to "
                f"{vm_size} ({tier}) in place",
            )
        if not provisioning_failed(existing) and (
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
    action = "updated" if existing is not None and not provisioning_failed(existing) else "created"
    return Outcome(action, getattr(result, "id", "") or "")
