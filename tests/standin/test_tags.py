"""Tags_UpdateAtScope / Tags_GetAtScope through azure-mgmt-resource: merge, replace, delete, unknown scopes."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from provisioning.standin import StandIn, scripted_workspace
from tests.standin.conftest import SUB, TAGS, error_code

GROUP_ID = f"/subscriptions/{SUB}/resourceGroups/rg-standin"


def _patch(clients: Any, scope: str, operation: str, tags: dict[str, str]) -> Any:
    body = {"operation": operation, "properties": {"tags": tags}}
    return clients.resources(SUB).tags.begin_update_at_scope(scope, body).result()


def test_merge_adds_a_tag_and_keeps_the_others(standin: StandIn, azure_clients: Any, group: str) -> None:
    answer = _patch(azure_clients, GROUP_ID, "Merge", {"owner": "alice"})

    assert answer["properties"]["tags"] == {**TAGS, "owner": "alice"}
    assert answer["id"] == GROUP_ID and answer["type"] == "Microsoft.Resources/tags"
    assert standin.state.resource(GROUP_ID)["tags"] == {**TAGS, "owner": "alice"}
    got = azure_clients.resources(SUB).tags.get_at_scope(GROUP_ID)
    assert got["properties"]["tags"]["owner"] == "alice"
    assert standin.state.status_codes("tags.update") == [200]


def test_replace_and_delete(standin: StandIn, azure_clients: Any, group: str) -> None:
    _patch(azure_clients, GROUP_ID, "Replace", {"a": "1", "b": "2"})
    assert standin.state.resource(GROUP_ID)["tags"] == {"a": "1", "b": "2"}
    _patch(azure_clients, GROUP_ID, "Delete", {"a": ""})
    assert standin.state.resource(GROUP_ID)["tags"] == {"b": "2"}


def test_a_compute_of_a_workspace_is_a_scope_too(standin: StandIn, azure_clients: Any) -> None:
    ids = scripted_workspace(
        standin.ctx,
        subscription=SUB,
        resource_group="rg-scripts",
        location="eastus2",
        workspace="scriptsws",
        storage="scriptswork",
        key_vault="scripts-kv",
        app_insights="scripts-ai",
        clusters=[{"name": "cpu", "vm_size": "STANDARD_DS3_V2"}],
    )
    _patch(azure_clients, ids["cluster:cpu"], "Merge", {"managed-by": "azureml-portal"})

    assert standin.state.resource(ids["cluster:cpu"])["tags"] == {"managed-by": "azureml-portal"}
    assert standin.state.resource(ids["workspace"])["tags"] == {}


def test_unknown_scopes_are_404_and_bad_operations_400(
    standin: StandIn, azure_clients: Any, group: str
) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        _patch(
            azure_clients,
            f"{GROUP_ID}/providers/Microsoft.Storage/storageAccounts/nothere",
            "Merge",
            {"a": "1"},
        )
    assert error_code(missing.value) == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as no_group:
        _patch(azure_clients, f"/subscriptions/{SUB}/resourceGroups/nogroup", "Merge", {"a": "1"})
    assert error_code(no_group.value) == "ResourceGroupNotFound"
    with pytest.raises(HttpResponseError) as bad:
        _patch(azure_clients, GROUP_ID, "Append", {"a": "1"})
    assert bad.value.status_code == 400
