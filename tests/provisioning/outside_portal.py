"""Resources someone with access to the subscription made by hand, outside the portal.

Created directly with the real SDK clients (azure-ai-ml's MLClient for the workspace and its clusters)
against the local Azure stand-in.
"""

from __future__ import annotations

from typing import Any

from azure.ai.ml.entities import AmlCompute
from azure.ai.ml.entities import Workspace as MlWorkspace

from tests.factories import TUTORIAL_SUBSCRIPTION

SUB = TUTORIAL_SUBSCRIPTION


def _outside_workspace(clients: Any, name: str, *, tags: dict[str, str] | None = None) -> str:
    """A workspace someone made by hand (no portal tag) in eastus2; returns its resource group."""
    group, location, tags = f"rg-{name}", "eastus2", dict(tags or {})
    clients.resources(SUB).resource_groups.create_or_update(group, {"location": location, "tags": tags})
    storage = (
        clients.storage(SUB)
        .storage_accounts.begin_create(
            group, f"{name}st", {"location": location, "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}
        )
        .result()
    )
    vault = (
        clients.keyvault(SUB)
        .vaults.begin_create_or_update(
            group,
            f"{name}-kv",
            {
                "location": location,
                "properties": {"tenantId": clients.tenant_id, "sku": {"family": "A", "name": "standard"}},
            },
        )
        .result()
    )
    registry = (
        clients.registry(SUB)
        .registries.begin_create(group, f"{name}cr", {"location": location, "sku": {"name": "Basic"}})
        .result()
    )
    insights = clients.app_insights(SUB).components.create_or_update(
        group, f"{name}-ai", {"location": location, "kind": "web", "properties": {"Application_Type": "web"}}
    )
    clients.ml(SUB, group, name).workspaces.begin_create(
        MlWorkspace(
            name=name,
            location=location,
            tags=tags,
            storage_account=storage.id,
            key_vault=vault.id,
            container_registry=registry.id,
            application_insights=insights.id,
        )
    ).result()
    return group


def _outside_cluster(clients: Any, group: str, workspace: str, name: str, **settings: Any) -> Any:
    values: dict[str, Any] = {
        "size": "STANDARD_DS3_V2",
        "tier": "dedicated",
        "min_instances": 0,
        "max_instances": 2,
        "idle_time_before_scale_down": 120,
    }
    values.update(settings)
    return (
        clients.ml(SUB, group, workspace)
        .compute.begin_create_or_update(AmlCompute(name=name, **values))
        .result()
    )
