"""Shared fixtures of the stand-in tests: no network beyond 127.0.0.1, a resource group, its resources."""

from __future__ import annotations

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
