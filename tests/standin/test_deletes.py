"""Deletes for rollback and clean-up, through the SDK clients the portal uses."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB, TAGS, error_code, grant_reader

VAULT_SKU = {"family": "A", "name": "standard"}


def _vault(standin: StandIn, clients: AzureClients, group: str, name: str, **props: Any) -> Any:
    body = {"location": "eastus2", "properties": {"sku": VAULT_SKU, "tenantId": standin.tenant_id, **props}}
    return clients.keyvault(SUB).vaults.begin_create_or_update(group, name, body).result()


def test_resource_group_delete_removes_everything_under_it(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str], workspace: str
) -> None:
    alice = standin.add_user("alice@contoso.com")
    group_scope = f"/subscriptions/{SUB}/resourceGroups/{group}"
    grant_reader(azure_clients, group_scope, alice)
    grant_reader(azure_clients, dependencies["storage"], alice)
    at_subscription = grant_reader(azure_clients, f"/subscriptions/{SUB}", alice)
    client = azure_clients.resources(SUB).resource_groups
    standin.state.clear_requests()

    client.begin_delete(group).result()

    assert client.check_existence(group) is False
    assert [r["type"] for r in standin.state.list_resources(subscription=SUB)] == []
    assert [a["name"] for a in standin.state.list_role_assignments()] == [at_subscription]
    assert standin.state.status_codes("resource_group.delete") == [202]
    assert standin.state.status_codes("operation.result") == [200]
    # The group's key vault is soft-deleted with it, as Key Vault does.
    deleted = azure_clients.keyvault(SUB).vaults.get_deleted("standin-kv", "eastus2")
    assert deleted.properties.vault_id == dependencies["key_vault"]
    with pytest.raises(ResourceNotFoundError) as caught:
        client.begin_delete(group).result()
    assert error_code(caught.value) == "ResourceGroupNotFound"


def test_a_resource_group_stays_deleting_for_the_operations_latency(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    standin.set_latency("resource_group.delete", 0.3)
    client = azure_clients.resources(SUB).resource_groups

    poller = client.begin_delete(group, polling_interval=0.1)
    during = client.get(group)
    poller.result()

    assert during.properties.provisioning_state == "Deleting"
    assert client.check_existence(group) is False


def test_a_role_assignment_is_deleted_by_its_id(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    scope = f"/subscriptions/{SUB}/resourceGroups/{group}"
    name = grant_reader(azure_clients, scope, standin.add_user("alice@contoso.com"))
    client = azure_clients.authorization(SUB).role_assignments

    client.delete_by_id(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}")
    client.delete_by_id(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}")

    assert standin.state.status_codes("role_assignment.delete") == [200, 204]
    assert standin.state.list_role_assignments() == []


def test_storage_account_delete_answers_200_then_204(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    alice = standin.add_user("alice@contoso.com")
    grant_reader(azure_clients, dependencies["storage"], alice)
    accounts = azure_clients.storage(SUB).storage_accounts

    accounts.delete(group, "standinwork")
    accounts.delete(group, "standinwork")

    assert standin.state.status_codes("storage.delete") == [200, 204]
    assert standin.state.list_role_assignments() == []
    assert accounts.check_name_availability(
        {"name": "standinwork", "type": "Microsoft.Storage/storageAccounts"}
    ).name_available


def test_key_vault_is_soft_deleted_then_purged(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    vaults = azure_clients.keyvault(SUB).vaults
    created = _vault(standin, azure_clients, group, "kv-rollback", softDeleteRetentionInDays=7)

    vaults.delete(group, "kv-rollback")
    deleted = vaults.get_deleted("kv-rollback", "eastus2")
    listed = [v.name for v in vaults.list_deleted()]
    check = vaults.check_name_availability({"name": "kv-rollback", "type": "Microsoft.KeyVault/vaults"})
    with pytest.raises(ResourceExistsError) as conflict:
        _vault(standin, azure_clients, group, "kv-rollback")
    vaults.begin_purge_deleted("kv-rollback", "eastus2").result()

    assert deleted.id == (
        f"/subscriptions/{SUB}/providers/Microsoft.KeyVault/locations/eastus2/deletedVaults/kv-rollback"
    )
    assert deleted.properties.vault_id == created.id
    assert deleted.properties.purge_protection_enabled is False
    assert (deleted.properties.scheduled_purge_date - deleted.properties.deletion_date).days == 7
    assert listed == ["kv-rollback"]
    assert (check.name_available, check.reason) == (False, "AlreadyExists")
    assert error_code(conflict.value) == "ConflictError"
    assert standin.state.status_codes("key_vault.delete") == [200]
    assert standin.state.status_codes("key_vault.purge") == [202]
    with pytest.raises(ResourceNotFoundError):
        vaults.get_deleted("kv-rollback", "eastus2")
    assert _vault(standin, azure_clients, group, "kv-rollback").name == "kv-rollback"


def test_a_soft_deleted_vault_is_recovered_with_create_mode_recover(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    _vault(standin, azure_clients, group, "kv-recover", enableRbacAuthorization=True)
    azure_clients.keyvault(SUB).vaults.delete(group, "kv-recover")

    recovered = _vault(standin, azure_clients, group, "kv-recover", createMode="recover")

    assert recovered.properties.enable_rbac_authorization is True
    assert standin.state.deleted_vaults == {}


def test_a_purge_protected_vault_cannot_be_purged(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    vaults = azure_clients.keyvault(SUB).vaults
    _vault(standin, azure_clients, group, "kv-protected", enablePurgeProtection=True)
    vaults.delete(group, "kv-protected")

    with pytest.raises(ResourceExistsError) as caught:
        vaults.begin_purge_deleted("kv-protected", "eastus2").result()

    assert error_code(caught.value) == "VaultPurgeProtected"
    assert vaults.get_deleted("kv-protected", "eastus2").properties.purge_protection_enabled is True


def test_a_vault_without_soft_delete_is_gone_at_once(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    _vault(standin, azure_clients, group, "kv-gone", enableSoftDelete=False)

    azure_clients.keyvault(SUB).vaults.delete(group, "kv-gone")

    assert standin.state.deleted_vaults == {}
    assert _vault(standin, azure_clients, group, "kv-gone").name == "kv-gone"


def test_registry_and_app_insights_deletes(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str]
) -> None:
    azure_clients.registry(SUB).registries.begin_delete(group, "standincr").result()
    azure_clients.registry(SUB).registries.begin_delete(group, "standincr").result()
    azure_clients.app_insights(SUB).components.delete(group, "standin-ai")
    azure_clients.app_insights(SUB).components.delete(group, "standin-ai")

    assert standin.state.status_codes("registry.delete") == [202, 204]
    assert standin.state.status_codes("app_insights.delete") == [200, 204]
    assert standin.state.resource(dependencies["registry"]) is None
    assert standin.state.resource(dependencies["app_insights"]) is None


def test_workspace_delete_takes_its_computes_and_role_assignments(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str], workspace: str
) -> None:
    from azure.ai.ml.entities import AmlCompute

    ml = azure_clients.ml(SUB, group, workspace)
    ml.compute.begin_create_or_update(
        AmlCompute(name="cpu", size="STANDARD_DS3_V2", max_instances=2)
    ).result()
    ws = standin.state.list_resources("workspace")[0]
    identity = ws["identity"]["principalId"]
    grant_reader(azure_clients, f"{ws['id']}/computes/cpu", standin.add_user("alice@contoso.com"))

    ml.workspaces.begin_delete(workspace, delete_dependent_resources=False, permanently_delete=True).result()

    assert standin.state.list_resources("workspace") == standin.state.list_resources("compute") == []
    assert standin.state.list_role_assignments() == []
    assert standin.state.principal(identity) is None  # the system-assigned identity goes with it
    assert standin.state.deleted_workspaces[ws["id"].lower()]["forceToPurge"] is True
    assert standin.state.status_codes("workspace.delete") == [202]
    assert standin.state.resource(dependencies["storage"]) is not None


def test_workspace_delete_with_its_dependent_resources(
    standin: StandIn, azure_clients: AzureClients, group: str, dependencies: dict[str, str], workspace: str
) -> None:
    azure_clients.ml(SUB, group, workspace).workspaces.begin_delete(
        workspace, delete_dependent_resources=True
    ).result()

    # The group keeps its deployment history, as in ARM.
    assert [r["type"] for r in standin.state.list_resources(subscription=SUB)] == [
        "Microsoft.Resources/resourceGroups",
        "Microsoft.Resources/deployments",
    ]
    assert "standin-kv" in standin.state.deleted_vaults
    assert (
        standin.state.deleted_workspaces[
            f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/workspaces/{workspace}".lower()
        ]["forceToPurge"]
        is False
    )
    # azure-ai-ml deletes them by id with its own fixed api-versions.
    versions = {r.operation: r.query["api-version"] for r in standin.state.requests if r.method == "DELETE"}
    assert versions == {
        "app_insights.delete": "2015-05-01",
        "storage.delete": "2019-06-01",
        "key_vault.delete": "2019-09-01",
        "registry.delete": "2019-05-01",
        "workspace.delete": versions["workspace.delete"],
    }


def test_compute_delete_needs_the_underlying_resource_action(
    standin: StandIn, azure_clients: AzureClients, raw: Any, group: str, workspace: str
) -> None:
    from azure.ai.ml.entities import AmlCompute

    ml = azure_clients.ml(SUB, group, workspace)
    ml.compute.begin_create_or_update(
        AmlCompute(name="cpu", size="STANDARD_DS3_V2", max_instances=2)
    ).result()
    path = (
        f"/subscriptions/{SUB}/resourceGroups/{group}/providers/Microsoft.MachineLearningServices/"
        f"workspaces/{workspace}/computes/cpu?api-version=2023-08-01-preview"
    )

    missing = raw.request("DELETE", path)
    ml.compute.begin_delete("cpu").result()

    assert missing.status_code == 400
    assert standin.state.list_resources("compute") == []
    assert [
        r.query.get("underlyingresourceaction")
        for r in standin.state.requests
        if r.operation == "compute.delete"
    ] == [None, "Delete"]


def test_compute_update_patches_the_scale_settings(
    standin: StandIn, azure_clients: AzureClients, group: str, workspace: str
) -> None:
    from azure.ai.ml.entities import AmlCompute

    ml = azure_clients.ml(SUB, group, workspace)
    ml.compute.begin_create_or_update(
        AmlCompute(name="cpu", size="STANDARD_DS3_V2", max_instances=2)
    ).result()

    updated = ml.compute._operation.begin_update(
        group,
        workspace,
        "cpu",
        {
            "properties": {
                "properties": {
                    "scaleSettings": {
                        "maxNodeCount": 4,
                        "minNodeCount": 1,
                        "nodeIdleTimeBeforeScaleDown": "PT5M",
                    }
                }
            }
        },
    ).result()
    with pytest.raises(HttpResponseError) as too_many:
        ml.compute._operation.begin_update(
            group,
            workspace,
            "cpu",
            {"properties": {"properties": {"scaleSettings": {"maxNodeCount": 4, "minNodeCount": 9}}}},
        ).result()

    scale = updated.properties.properties.scale_settings
    assert (scale.min_node_count, scale.max_node_count) == (1, 4)
    assert scale.node_idle_time_before_scale_down.total_seconds() == 300
    assert updated.properties.provisioning_state == "Succeeded"
    assert standin.state.status_codes("compute.update") == [200, 400]
    assert too_many.value.status_code == 400
    assert ml.compute.get("cpu").min_instances == 1


def test_tags_survive_until_the_group_goes(standin: StandIn, azure_clients: AzureClients, group: str) -> None:
    assert azure_clients.resources(SUB).resource_groups.get(group).tags == TAGS
