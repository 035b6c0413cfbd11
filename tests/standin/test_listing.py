"""What a resource group holds (Resources_ListByResourceGroup) and the role assignments that apply to a scope."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB, TAGS, error_code, grant_reader

TOP_LEVEL = [
    ("Microsoft.ContainerRegistry/registries", "standincr"),
    ("Microsoft.Insights/components", "standin-ai"),
    ("Microsoft.KeyVault/vaults", "standin-kv"),
    ("Microsoft.MachineLearningServices/workspaces", "bgmrbluegranite2devws"),
    ("Microsoft.Storage/storageAccounts", "standinwork"),
]


@pytest.fixture
def with_cluster(standin: StandIn, azure_clients: AzureClients, group: str, workspace: str) -> str:
    from azure.ai.ml.entities import AmlCompute

    azure_clients.ml(SUB, group, workspace).compute.begin_create_or_update(
        AmlCompute(name="cpu", size="STANDARD_DS3_V2", max_instances=2)
    ).result()
    return workspace


def test_a_group_lists_its_top_level_resources(
    standin: StandIn, azure_clients: AzureClients, group: str, with_cluster: str
) -> None:
    listed = list(azure_clients.resources(SUB).resources.list_by_resource_group(group))

    # Computes are child resources and deployments are not resources of the group.
    assert sorted((r.type, r.name) for r in listed) == TOP_LEVEL
    by_type = {r.type: r for r in listed}
    storage = by_type["Microsoft.Storage/storageAccounts"]
    assert (storage.location, storage.kind, storage.sku.name, storage.tags) == (
        "eastus2",
        "StorageV2",
        "Standard_LRS",
        TAGS,
    )
    assert (
        storage.id
        == f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.Storage/storageAccounts/standinwork"
    )
    assert storage.properties is None and storage.created_time is None
    assert by_type["Microsoft.MachineLearningServices/workspaces"].identity.type == "SystemAssigned"
    assert standin.state.status_codes("resources.list_by_resource_group") == [200]


def test_expand_adds_created_changed_time_and_state(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    listed = list(
        azure_clients.resources(SUB).resources.list_by_resource_group(
            group, expand="createdTime,changedTime,provisioningState"
        )
    )

    assert all(r.created_time is not None and r.changed_time >= r.created_time for r in listed)
    assert {r.provisioning_state for r in listed} == {"Succeeded"}


def test_filters_on_tags_and_types(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    standin.outside.add_resource(SUB, group, "handmade")
    resources = azure_clients.resources(SUB).resources

    tagged = list(
        resources.list_by_resource_group(
            group, filter="tagName eq 'managed-by' and tagValue eq 'azureml-portal'", expand="createdTime"
        )
    )
    named = list(resources.list_by_resource_group(group, filter="tagName eq 'TEAM'"))
    storage = list(
        resources.list_by_resource_group(group, filter="resourceType eq 'microsoft.storage/storageaccounts'")
    )
    either = list(
        resources.list_by_resource_group(
            group,
            filter="substringof('standin', name) and resourceType eq 'Microsoft.KeyVault/vaults' or name eq 'handmade'",
        )
    )

    assert sorted(r.name for r in tagged) == ["standin-ai", "standin-kv", "standincr", "standinwork"]
    # Filtering on a tag leaves the rows' tags (and times) out, as ARM documents it.
    assert {(r.tags, r.created_time) for r in tagged} == {(None, None)}
    assert len(named) == 4
    assert sorted(r.name for r in storage) == ["handmade", "standinwork"]
    assert sorted(r.name for r in either) == ["handmade", "standin-kv"]
    handmade = next(r for r in storage if r.name == "handmade")
    assert handmade.tags is None  # an untagged resource has no tags member


@pytest.mark.parametrize(
    "expression",
    [
        "tagName eq 'team' and resourceType eq 'Microsoft.Storage/storageAccounts'",
        "tagValue eq 'x'",
        "kind eq 'StorageV2'",
        "name eq unquoted",
    ],
)
def test_a_filter_arm_does_not_take_is_refused(
    azure_clients: AzureClients, group: str, expression: str
) -> None:
    with pytest.raises(HttpResponseError) as caught:
        list(azure_clients.resources(SUB).resources.list_by_resource_group(group, filter=expression))

    assert (caught.value.status_code, error_code(caught.value)) == (400, "InvalidFilterInQueryString")


def test_top_is_a_page_size_and_the_sdk_follows_next_links(
    standin: StandIn, azure_clients: AzureClients, raw: Any, group: str, dependencies: dict[str, str]
) -> None:
    pages = list(azure_clients.resources(SUB).resources.list_by_resource_group(group, top=2).by_page())
    first = raw.request(
        "GET", f"/subscriptions/{SUB}/resourceGroups/{group}/resources?api-version=2025-04-01&$top=3"
    ).json()
    bad = raw.request(
        "GET", f"/subscriptions/{SUB}/resourceGroups/{group}/resources?api-version=2025-04-01&$top=x"
    )

    assert [len(list(p)) for p in pages] == [2, 2]
    assert first["nextLink"].startswith(f"{standin.base_url}/subscriptions/{SUB}/")
    assert "%24skiptoken=" in first["nextLink"]  # encoded, as ARM writes it
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "InvalidQueryParameterValue")


def test_a_missing_group_is_not_found(azure_clients: AzureClients, standin: StandIn) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        list(azure_clients.resources(SUB).resources.list_by_resource_group("nowhere"))

    assert error_code(caught.value) == "ResourceGroupNotFound"


def test_resources_of_the_subscription(
    azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    azure_clients.resources(SUB).resource_groups.create_or_update("rg-other", {"location": "westus2"})
    azure_clients.storage(SUB).storage_accounts.begin_create(
        "rg-other",
        "otherstore",
        {"location": "westus2", "kind": "StorageV2", "sku": {"name": "Standard_LRS"}},
    ).result()

    everything = list(azure_clients.resources(SUB).resources.list(filter="resourceGroup eq 'rg-other'"))
    both = list(
        azure_clients.resources(SUB).resources.list(
            filter="resourceType eq 'Microsoft.Storage/storageAccounts'"
        )
    )

    assert [r.name for r in everything] == ["otherstore"]
    assert sorted(r.name for r in both) == ["otherstore", "standinwork"]


# --- role assignments that apply to a scope ----


def test_at_scope_lists_assignments_at_or_above_a_scope(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    alice, bob = standin.add_user("alice@contoso.com"), standin.add_user("bob@contoso.com")
    subscription = f"/subscriptions/{SUB}"
    rg_scope = f"{subscription}/resourceGroups/{group}"
    above = grant_reader(azure_clients, subscription, alice)
    at = grant_reader(azure_clients, rg_scope, alice)
    below = grant_reader(azure_clients, dependencies["storage"], bob)
    client = azure_clients.authorization(SUB).role_assignments

    at_scope = {a.name for a in client.list_for_scope(rg_scope, filter="atScope()")}
    unfiltered = {a.name for a in client.list_for_scope(rg_scope)}
    for_group = {a.name for a in client.list_for_resource_group(group)}
    for_bob = {a.name for a in client.list_for_scope(subscription, filter=f"principalId eq '{bob}'")}
    storage_at = {a.name for a in client.list_for_scope(dependencies["storage"], filter="atScope()")}

    assert at_scope == {above, at}
    assert unfiltered == for_group == {above, at, below}
    assert for_bob == {below}
    assert storage_at == {above, at, below}
