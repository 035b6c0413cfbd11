"""Resource groups and the workspace's dependent resources, created with the portal's SDK clients."""

from __future__ import annotations

import time
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB, TAGS

STORAGE = "Microsoft.Storage/storageAccounts"


def test_resource_group_keeps_its_tags(standin: StandIn, azure_clients: AzureClients) -> None:
    client = azure_clients.resources(SUB).resource_groups

    created = client.create_or_update("bgmr-bluegranit-eastus2-dev", {"location": "East US 2", "tags": TAGS})
    fetched = client.get("bgmr-bluegranit-eastus2-dev")

    assert created.id == f"/subscriptions/{SUB}/resourceGroups/bgmr-bluegranit-eastus2-dev"
    assert (fetched.location, fetched.tags) == ("eastus2", TAGS)
    assert client.check_existence("bgmr-bluegranit-eastus2-dev") is True
    assert client.check_existence("elsewhere") is False
    assert standin.state.status_codes("resource_group.create") == [201]


def test_storage_account_poller_returns_the_account_with_its_properties(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    account = (
        azure_clients.storage(SUB)
        .storage_accounts.begin_create(
            group,
            "bgmrbluegranite2devbig",
            {
                "location": "eastus2",
                "kind": "StorageV2",
                "sku": {"name": "Standard_LRS"},
                "tags": TAGS,
                "properties": {
                    "isHnsEnabled": True,
                    "supportsHttpsTrafficOnly": True,
                    "minimumTlsVersion": "TLS1_2",
                    "allowBlobPublicAccess": False,
                },
            },
        )
        .result()
    )

    assert account.name == "bgmrbluegranite2devbig"
    assert account.properties.is_hns_enabled is True
    assert account.properties.minimum_tls_version == "TLS1_2"
    assert account.properties.allow_blob_public_access is False
    assert account.properties.provisioning_state == "Succeeded"
    assert account.tags == TAGS
    # Created with 202 + Location, then one poll of the Location answered 200 with the account.
    assert standin.state.status_codes("storage.create") == [202]
    assert standin.state.status_codes("operation.result") == [200]


def test_key_vault_uses_the_rbac_permission_model(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    vault = (
        azure_clients.keyvault(SUB)
        .vaults.begin_create_or_update(
            group,
            "bgmrbluegranite2devkv",
            {
                "location": "eastus2",
                "tags": TAGS,
                "properties": {
                    "tenantId": standin.tenant_id,
                    "sku": {"family": "A", "name": "standard"},
                    "enableRbacAuthorization": True,
                    "enableSoftDelete": True,
                    "enablePurgeProtection": True,
                },
            },
        )
        .result()
    )

    assert vault.properties.enable_rbac_authorization is True
    assert vault.properties.enable_purge_protection is True
    assert vault.properties.tenant_id == standin.tenant_id
    assert vault.properties.vault_uri == "https://bgmrbluegranite2devkv.vault.azure.net/"


def test_registry_is_polled_through_azure_async_operation(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    registry = (
        azure_clients.registry(SUB)
        .registries.begin_create(
            group,
            "bgmrbluegranite2devcr",
            {
                "location": "eastus2",
                "tags": TAGS,
                "sku": {"name": "Basic"},
                "properties": {"adminUserEnabled": False},
            },
        )
        .result()
    )

    assert registry.properties.admin_user_enabled is False
    assert registry.sku.name == "Basic"
    assert registry.properties.login_server == "bgmrbluegranite2devcr.azurecr.io"
    assert standin.state.status_codes("registry.create") == [201]
    assert standin.state.count("operation.status") == 1


def test_app_insights_component(standin: StandIn, azure_clients: AzureClients, group: str) -> None:
    component = azure_clients.app_insights(SUB).components.create_or_update(
        group,
        "bgmrbluegranite2devai",
        {"location": "eastus2", "tags": TAGS, "kind": "web", "properties": {"Application_Type": "web"}},
    )

    assert component.application_type == "web"
    assert component.instrumentation_key
    assert azure_clients.app_insights(SUB).components.get(group, "bgmrbluegranite2devai").tags == TAGS


def test_a_missing_resource_group_is_resource_group_not_found(
    azure_clients: AzureClients, standin: StandIn
) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        azure_clients.storage(SUB).storage_accounts.get_properties("no-such-group", "whatever")

    assert caught.value.error.code == "ResourceGroupNotFound"


@pytest.mark.parametrize(
    ("kind", "name", "code"),
    [
        ("storage", "takenelsewhere", "StorageAccountAlreadyTaken"),
        ("key_vault", "taken-elsewhere", "VaultAlreadyExists"),
        ("registry", "takenelsewhere", "AlreadyInUse"),
    ],
)
def test_a_name_taken_in_another_subscription(
    standin: StandIn, azure_clients: AzureClients, group: str, kind: str, name: str, code: str
) -> None:
    standin.take_name(kind, name)
    check, create = {
        "storage": (
            lambda: azure_clients.storage(SUB).storage_accounts.check_name_availability(
                {"name": name, "type": STORAGE}
            ),
            lambda: azure_clients.storage(SUB).storage_accounts.begin_create(
                group, name, {"location": "eastus2", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}}
            ),
        ),
        "key_vault": (
            lambda: azure_clients.keyvault(SUB).vaults.check_name_availability(
                {"name": name, "type": "Microsoft.KeyVault/vaults"}
            ),
            lambda: azure_clients.keyvault(SUB).vaults.begin_create_or_update(
                group,
                name,
                {
                    "location": "eastus2",
                    "properties": {"tenantId": standin.tenant_id, "sku": {"family": "A", "name": "standard"}},
                },
            ),
        ),
        "registry": (
            lambda: azure_clients.registry(SUB).registries.check_name_availability(
                {"name": name, "type": "Microsoft.ContainerRegistry/registries"}
            ),
            lambda: azure_clients.registry(SUB).registries.begin_create(
                group, name, {"location": "eastus2", "sku": {"name": "Basic"}}
            ),
        ),
    }[kind]

    availability = check()
    with pytest.raises(ResourceExistsError) as caught:
        create()

    assert (availability.name_available, availability.reason) == (False, "AlreadyExists")
    assert caught.value.status_code == 409
    assert caught.value.error.code == code


def test_an_invalid_storage_name_is_reported_by_the_name_check(
    azure_clients: AzureClients, standin: StandIn
) -> None:
    availability = azure_clients.storage(SUB).storage_accounts.check_name_availability(
        {"name": "Not_Valid", "type": STORAGE}
    )

    assert (availability.name_available, availability.reason) == (False, "AccountNameInvalid")


def test_paths_are_case_insensitive(raw: Any, group: str) -> None:
    response = raw.request("GET", f"/SUBSCRIPTIONS/{SUB}/RESOURCEGROUPS/RG-STANDIN?api-version=2025-04-01")

    assert response.status_code == 200
    assert response.json()["name"] == "rg-standin"


def test_latency_keeps_a_long_running_operation_in_progress(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    standin.set_latency("registry.create", 0.4)
    started = time.monotonic()

    poller = azure_clients.registry(SUB).registries.begin_create(
        group, "slowregistry", {"location": "eastus2", "sku": {"name": "Basic"}}
    )
    during = standin.state.resource(
        f"/subscriptions/{SUB}/resourceGroups/{group}/providers/"
        "Microsoft.ContainerRegistry/registries/slowregistry"
    )
    registry = poller.result()

    assert during is not None and during["properties"]["provisioningState"] == "Creating"
    assert registry.properties.provisioning_state == "Succeeded"
    assert 0.4 <= time.monotonic() - started < 2
