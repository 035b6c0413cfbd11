"""Workspaces made by the tutorial's scripts (no portal tag), put into the stand-in for adoption tests."""

from __future__ import annotations

from typing import Any

from provisioning.naming import NamingInput, resource_names
from provisioning.standin.scripted import scripted_workspace
from tests.factories import TUTORIAL_SUBSCRIPTION

SUB = TUTORIAL_SUBSCRIPTION
CHURN = NamingInput(department="mktg", team="churn", region="eastus2", region_abbv="e2", environment="dev")
CLUSTER = {"name": "cpu-cluster", "vm_size": "STANDARD_DS3_V2", "max_nodes": 4, "idle_seconds": 1800}


def by_the_scripts(standin: Any, naming: NamingInput = CHURN) -> dict[str, str]:
    """The tutorial's workspace for ``naming`` with a cluster; lead1 holds the tutorial's Data Scientist role
    on the workspace and (the scripts' mistake) Owner on the key vault; ds1 the Data Scientist role."""
    names = resource_names(naming, data_lake=False)
    lead = standin.add_user("lead1@contoso.com")
    scientist = standin.add_user("ds1@contoso.com")
    return scripted_workspace(
        standin.ctx,
        subscription=SUB,
        resource_group=names.resource_group,
        location=naming.region,
        workspace=names.workspace,
        storage=names.storage_work,
        data_storage=names.storage_data,
        key_vault=names.key_vault,
        registry=names.registry,
        app_insights=names.app_insights,
        clusters=[CLUSTER],
        grants=[
            {"scope": "workspace", "role": "Data Scientist", "principal_id": scientist},
            {"scope": "key_vault", "role": "Owner", "principal_id": lead},
            {"scope": "resource_group", "role": "Reader", "principal_id": lead},
        ],
    )


def by_hand(standin: Any) -> dict[str, str]:
    """A workspace somebody named freely (no convention, no registry, no cluster)."""
    return scripted_workspace(
        standin.ctx,
        subscription=SUB,
        resource_group="rg-ml-sandbox",
        location="westeurope",
        workspace="sandbox-ml",
        storage="sandboxmlstore",
        key_vault="sandbox-ml-kv",
        app_insights="sandbox-ml-ai",
    )
