"""Shared fixtures of the stand-in tests: no network beyond 127.0.0.1, a resource group, its resources."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from provisioning.standin import StandIn
from tests.factories import TUTORIAL_SUBSCRIPTION

SUB = TUTORIAL_SUBSCRIPTION
TAGS = {"managed-by": "azureml-portal", "team": "bluegranit"}


@pytest.fixture(autouse=True)
def _nothing_leaves_the_machine(loopback_only: list[str]) -> Iterator[None]:
    yield
    assert loopback_only == [], f"requests beyond 127.0.0.1: {loopback_only}"


@pytest.fixture
def group(standin: StandIn, azure_clients: Any) -> str:
    """A resource group in eastus2; returns its name."""
    azure_clients.resources(SUB).resource_groups.create_or_update(
        "rg-standin", {"location": "eastus2", "tags": TAGS}
    )
    return "rg-standin"


@pytest.fixture
def dependencies(group: str, standin: StandIn, azure_clients: Any) -> dict[str, str]:
    """A workspace's dependent resources (created with the real SDK clients); their ids by kind."""
    storage = (
        azure_clients.storage(SUB)
        .storage_accounts.begin_create(
            group,
            "standinwork",
            {"location": "eastus2", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}, "tags": TAGS},
        )
        .result()
    )
    vault = (
        azure_clients.keyvault(SUB)
        .vaults.begin_create_or_update(
            group,
            "standin-kv",
            {
                "location": "eastus2",
                "tags": TAGS,
                "properties": {
                    "tenantId": standin.tenant_id,
                    "sku": {"family": "A", "name": "standard"},
                    "enableRbacAuthorization": True,
                },
            },
        )
        .result()
    )
    registry = (
        azure_clients.registry(SUB)
        .registries.begin_create(
            group, "standincr", {"location": "eastus2", "tags": TAGS, "sku": {"name": "Basic"}}
        )
        .result()
    )
    insights = azure_clients.app_insights(SUB).components.create_or_update(
        group,
        "standin-ai",
        {"location": "eastus2", "tags": TAGS, "kind": "web", "properties": {"Application_Type": "web"}},
    )
    return {
        "storage": storage.id,
        "key_vault": vault.id,
        "registry": registry.id,
        "app_insights": insights.id,
    }


def workspace_entity(name: str, deps: dict[str, str]) -> Any:
    """An azure-ai-ml Workspace in eastus2 on the given dependent resources."""
    from azure.ai.ml.entities import Workspace

    return Workspace(
        name=name,
        location="eastus2",
        tags=dict(TAGS),
        storage_account=deps["storage"],
        key_vault=deps["key_vault"],
        container_registry=deps["registry"],
        application_insights=deps["app_insights"],
    )


@pytest.fixture
def workspace(standin: StandIn, azure_clients: Any, group: str, dependencies: dict[str, str]) -> str:
    """A workspace made with azure-ai-ml on ``dependencies``; returns its name."""
    azure_clients.ml(SUB, group, "bgmrbluegranite2devws").workspaces.begin_create(
        workspace_entity("bgmrbluegranite2devws", dependencies)
    ).result()
    return "bgmrbluegranite2devws"


READER = "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"


def grant_reader(clients: Any, scope: str, principal: str) -> str:
    """A Reader role assignment for a user at a scope, made with azure-mgmt-authorization; its name."""
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    name = str(uuid.uuid4())
    grant = RoleAssignmentCreateParameters(  # type: ignore[call-arg]  # stubs of the 2015 API version
        role_definition_id=f"/subscriptions/{SUB}{READER}", principal_id=principal, principal_type="User"
    )
    clients.authorization(SUB).role_assignments.create(scope, name, grant)
    return name


def error_code(exc: Any) -> str:
    """The ARM error code an SDK exception carries (``HttpResponseError.error`` is optional)."""
    return str(exc.error.code) if exc.error is not None else ""


class Raw:
    """Plain HTTPS calls to the stand-in with a token the portal's credential obtained (for raw shapes)."""

    def __init__(self, standin: StandIn, clients: Any) -> None:
        self.standin, self.clients = standin, clients

    def headers(self) -> dict[str, str]:
        token = self.clients.credential().get_token(f"{self.standin.base_url}/.default").token
        return {"Authorization": f"Bearer {token}"}

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {**self.headers(), **kwargs.pop("headers", {})}
        return requests.request(
            method, f"{self.standin.base_url}{path}", headers=headers, timeout=10, **kwargs
        )


@pytest.fixture
def raw(standin: StandIn, azure_clients: Any) -> Raw:
    return Raw(standin, azure_clients)
