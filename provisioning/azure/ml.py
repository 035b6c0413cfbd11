"""Idempotent operations on the AzureML workspace and its compute clusters (azure-ai-ml, generic ARM)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from provisioning.arm import WORKSPACE_PROVIDER, arm_id, idle_duration
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import (
    AzureStepError,
    Outcome,
    azure_errors,
    get_or_none,
    provisioning_failed,
    settled,
)

if TYPE_CHECKING:
    from azure.ai.ml.entities import Workspace as MlWorkspace
    from azure.core.polling import LROPoller

    from provisioning.azure.rate_limit import WriteBudget

# Microsoft.MachineLearningServices/workspaces read through the generic resources API (a GA version).
WORKSPACE_API_VERSION = "2024-04-01"
# Microsoft.Resources/deployments, the template deployments azure-ai-ml creates a workspace with.
DEPLOYMENTS_API_VERSION = "2020-06-01"


def deployment_in_flight(
    clients: AzureClients, *, subscription: str, resource_group: str, name: str
) -> str | None:
    """The id of a template deployment of workspace ``name`` still running in the group, if any.

    azure-ai-ml names them ``{workspace}-{random number}`` (``get_deployment_name``). One is left running
    when an earlier attempt of the step stopped waiting for it: its worker died, or azure-ai-ml's progress
    polls were throttled more often than azure-core retries. Deployments_ListByResourceGroup with its
    ``provisioningState`` filter, sent through the portal's client (its budgets and retries).
    """
    from azure.core.rest import HttpRequest

    arm = clients.resources(subscription)
    url = f"/subscriptions/{subscription}/resourcegroups/{resource_group}/providers/Microsoft.Resources/deployments/"
    params = {"$filter": "provisioningState eq 'Running'", "api-version": DEPLOYMENTS_API_VERSION}

    def running() -> Any:
        response = arm.send_request(HttpRequest("GET", url, params=params))
        response.raise_for_status()
        return response.json()

    found = get_or_none(running)
    pattern = re.compile(rf"{re.escape(name)}-\d+", re.IGNORECASE)
    for deployment in (found or {}).get("value", []):
        if pattern.fullmatch(str(deployment.get("name", ""))):
            return str(deployment["id"])
    return None


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
    look_first: bool = True,
) -> Outcome:
    """The AzureML workspace, wired to the resources created before it.

    Read as a generic ARM resource: azure-ai-ml's Workspace has no provisioning state, and a workspace
    an interrupted attempt left Creating (or Failed) must not be taken as done. ``look_first=False``
    (nothing can be there yet) skips that reading and the search for an earlier attempt's deployment.
    """
    from azure.ai.ml.entities import Workspace as MlWorkspace

    workspace_id = arm_id(subscription, resource_group, WORKSPACE_PROVIDER, name)
    arm = clients.resources(subscription)
    existing = (
        settled(
            "workspace",
            name,
            lambda: arm.resources.get_by_id(workspace_id, api_version=WORKSPACE_API_VERSION),
        )
        if look_first
        else None
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
    in_flight = (
        deployment_in_flight(clients, subscription=subscription, resource_group=resource_group, name=name)
        if look_first
        else None
    )
    if in_flight is not None:
        # Wait for the earlier attempt's deployment rather than deploy the workspace a second time alongside.
        settled(
            "deployment",
            in_flight,
            lambda: arm.resources.get_by_id(in_flight, api_version=DEPLOYMENTS_API_VERSION),
            owned_only=False,
        )
        existing = settled(
            "workspace",
            name,
            lambda: arm.resources.get_by_id(workspace_id, api_version=WORKSPACE_API_VERSION),
        )
        if existing is not None and not provisioning_failed(existing):
            return Outcome("created", existing.id)
        # It failed: deploy again, and let that attempt report Azure's error.
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
    # azure-ai-ml sends the deployment's PUT and its reads through clients of its own, which the portal's
    # budget policies do not reach: the tokens for what it is known to send (a workspace GET, the PUT, one
    # listing of the deployment's operations, a workspace GET) are taken here.
    _budget_for_sdk(clients.write_budget, subscription, 1)
    _budget_for_sdk(clients.read_budget, subscription, 3)
    with azure_errors():
        created = _deployed(ml.workspaces.begin_create(workspace))
    return Outcome("created", created.id or workspace_id)


def _deployed(poller: LROPoller[MlWorkspace]) -> MlWorkspace:
    """The workspace of ``begin_create``'s poller, waited for without listing its deployment's progress.

    The poller's ``result()`` lists the template deployment's operations every 5 s for as long as it runs,
    to print progress: 12 reads of a minute-long deployment, which ARM's read limit counts and the portal's
    budget cannot reach (a third of a new workspace's reads). The deployment itself is polled by azure-core,
    in its own poller's thread at the ``Retry-After`` ARM sends, whether anyone lists its operations or not.
    So wait for that poller (azure-ai-ml keeps it as its polling method's ``poller``); ``result()`` then
    lists once, reads the deployment's result and the workspace, and raises a failed deployment's error.
    """
    from azure.core.polling import LROPoller

    deployment = getattr(poller.polling_method(), "poller", None)
    if isinstance(deployment, LROPoller):  # (otherwise, as azure-ai-ml does: tests count the listings)
        deployment.wait()
    return poller.result()


def _budget_for_sdk(budget: WriteBudget | None, subscription: str, tokens: int) -> None:
    if budget is None:
        return
    for _ in range(tokens):
        budget.acquire(subscription)


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


def _cluster_rest(ml: Any, resource_group: str, workspace: str, name: str) -> Any:
    """The cluster as Compute_Get answers it (ComputeResource; its node state counts, which the
    azure-ai-ml entity does not carry)."""
    return ml.compute._operation.get(resource_group, workspace, name)


def _inner(resource: Any) -> dict[str, Any]:
    return dict(((resource.get("properties") or {}).get("properties")) or {})


def running_nodes(resource: Any) -> int:
    """Nodes running or preparing jobs (idle nodes kept by min nodes do not count)."""
    counts = _inner(resource).get("nodeStateCounts") or {}
    return int(counts.get("runningNodeCount") or 0) + int(counts.get("preparingNodeCount") or 0)


def update_cluster(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    workspace: str,
    name: str,
    min_nodes: int,
    max_nodes: int,
    idle_seconds: int,
) -> Outcome:
    """A cluster's scale settings changed in place: one Compute_Update (PATCH of ClusterUpdateParameters).

    ``MLClient.compute.begin_update`` would PUT the whole cluster (Compute_CreateOrUpdate); the PATCH is
    the generated client's. Unchanged settings send nothing; a cluster without the portal's tag is refused.
    """
    ml = clients.ml(subscription, resource_group, workspace)
    existing = settled("compute cluster", name, lambda: _cluster_rest(ml, resource_group, workspace, name))
    if existing is None:
        raise AzureStepError(
            "ClusterNotFound",
            f"cluster '{name}' is not in workspace '{workspace}': it was deleted outside the portal; "
            "reconcile the workspace, then ask for the cluster again",
        )
    scale = _inner(existing).get("scaleSettings") or {}
    now = (
        scale.get("minNodeCount"),
        scale.get("maxNodeCount"),
        _seconds(scale.get("nodeIdleTimeBeforeScaleDown")),
    )
    if now == (min_nodes, max_nodes, idle_seconds) and not provisioning_failed(existing):
        return Outcome("unchanged", str(existing.get("id", "")))
    # ClusterUpdateParameters as the Compute_Update example sends it (the generated model classes of this
    # client recurse on their flattened "properties"; the operation takes the JSON body as well).
    parameters = {
        "properties": {
            "properties": {
                "scaleSettings": {
                    "maxNodeCount": max_nodes,
                    "minNodeCount": min_nodes,
                    "nodeIdleTimeBeforeScaleDown": idle_duration(idle_seconds),
                }
            }
        }
    }
    with azure_errors():
        updated = ml.compute._operation.begin_update(resource_group, workspace, name, parameters).result()
    return Outcome("updated", str(updated.get("id", "") or existing.get("id", "")))


def _seconds(duration: Any) -> int | None:
    """An ISO 8601 duration (``PT2M``) as seconds; None when absent or unreadable."""
    if duration is None:
        return None
    if isinstance(duration, timedelta):
        return int(duration.total_seconds())
    from django.utils.dateparse import parse_duration  # ISO 8601 durations too

    parsed = parse_duration(str(duration))
    return int(parsed.total_seconds()) if parsed is not None else None


def delete_cluster(
    clients: AzureClients,
    *,
    subscription: str,
    resource_group: str,
    workspace: str,
    name: str,
    replaced: bool,
) -> Outcome:
    """Delete a cluster (Compute_Delete, underlyingResourceAction=Delete); absent when already gone.

    Refused while the cluster has nodes running or preparing jobs: deleting it would kill them. Nothing
    is sent then; the step fails with the reason and the request is retried once the jobs have finished.
    """
    ml = clients.ml(subscription, resource_group, workspace)
    existing = settled("compute cluster", name, lambda: _cluster_rest(ml, resource_group, workspace, name))
    if existing is None:
        return Outcome("absent")
    busy = running_nodes(existing)
    if busy:
        what = "replaced (its VM size or priority changes)" if replaced else "deleted"
        raise AzureStepError(
            "ClusterHasRunningNodes",
            f"cluster '{name}' has {busy} node{'s' if busy != 1 else ''} running jobs; it is {what} only "
            "once they have finished, so nothing was sent to Azure",
        )
    with azure_errors():
        ml.compute.begin_delete(name).result()
    return Outcome("removed", str(existing.get("id", "")))
