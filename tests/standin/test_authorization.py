"""Role definitions and role assignments with azure-mgmt-authorization."""

from __future__ import annotations

import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization.models import Permission, RoleAssignmentCreateParameters, RoleDefinition

from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from tests.standin.conftest import SUB

SCOPE = f"/subscriptions/{SUB}"
READER = f"{SCOPE}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"


@pytest.mark.parametrize(
    ("role", "guid"),
    [
        ("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7"),
        ("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c"),
        ("Owner", "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
        ("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe"),
        ("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"),
        ("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6"),
        ("AcrPush", "8311e382-0749-4cb8-b61a-304f252e45ec"),
        ("AcrPull", "7f951dda-4ed3-4680-a7ca-43fe172d538d"),
    ],
)
def test_built_in_roles_are_found_by_name(
    azure_clients: AzureClients, standin: StandIn, role: str, guid: str
) -> None:
    found = list(
        azure_clients.authorization(SUB).role_definitions.list(SCOPE, filter=f"roleName eq '{role}'")
    )

    assert [(r.name, r.role_name, r.role_type) for r in found] == [(guid, role, "BuiltInRole")]
    assert found[0].id == f"{SCOPE}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def _custom_role(name: str) -> RoleDefinition:
    return RoleDefinition(
        role_name=name,
        description="AzureML data scientist (managed by the portal)",
        role_type="CustomRole",
        assignable_scopes=[SCOPE],
        permissions=[
            Permission(
                actions=["Microsoft.MachineLearningServices/workspaces/*/read"],
                not_actions=["Microsoft.MachineLearningServices/workspaces/delete"],
            )
        ],
    )


def test_custom_role_is_created_then_found_by_name(azure_clients: AzureClients, standin: StandIn) -> None:
    client = azure_clients.authorization(SUB).role_definitions
    guid = str(uuid.uuid4())

    created = client.create_or_update(SCOPE, guid, _custom_role("Data Scientist"))
    found = list(client.list(SCOPE, filter="roleName eq 'Data Scientist'"))

    assert created.id == f"{SCOPE}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
    assert [(r.name, r.role_type) for r in found] == [(guid, "CustomRole")]
    assert found[0].permissions[0].not_actions == ["Microsoft.MachineLearningServices/workspaces/delete"]
    assert client.get(SCOPE, guid).role_name == "Data Scientist"
    assert standin.state.status_codes("role_definition.create") == [201]
    with pytest.raises(ResourceExistsError) as caught:
        client.create_or_update(SCOPE, str(uuid.uuid4()), _custom_role("Data Scientist"))
    assert caught.value.error.code == "RoleDefinitionWithSameNameExists"


def _grant(principal: str) -> RoleAssignmentCreateParameters:
    return RoleAssignmentCreateParameters(
        role_definition_id=READER, principal_id=principal, principal_type="User"
    )


def test_role_assignment_is_created_once_per_grant(
    azure_clients: AzureClients, standin: StandIn, group: str
) -> None:
    client = azure_clients.authorization(SUB).role_assignments
    scope = f"{SCOPE}/resourceGroups/{group}"
    alice = standin.add_user("alice@contoso.com")
    name = str(uuid.uuid4())

    created = client.create(scope, name, _grant(alice))
    again = client.create(scope, name, _grant(alice))
    with pytest.raises(ResourceExistsError) as caught:
        client.create(scope, str(uuid.uuid4()), _grant(alice))

    assert created.id == again.id == f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"
    assert (created.principal_id, created.principal_type, created.scope) == (alice, "User", scope)
    assert standin.state.status_codes("role_assignment.create") == [201, 200, 409]
    assert caught.value.error.code == "RoleAssignmentExists"
    listed = list(client.list_for_scope(scope, filter=f"principalId eq '{alice}'"))
    assert [a.name for a in listed] == [name]
    assert client.get(scope, name).role_definition_id == READER
    client.delete(scope, name)
    assert standin.state.list_role_assignments() == []


def test_a_new_principal_is_not_found_until_replicated(
    azure_clients: AzureClients, standin: StandIn, group: str
) -> None:
    standin.principal_not_found_for(0.3)
    bob = standin.add_user("bob@contoso.com")
    client = azure_clients.authorization(SUB).role_assignments
    scope = f"{SCOPE}/resourceGroups/{group}"

    with pytest.raises(HttpResponseError) as caught:
        client.create(scope, str(uuid.uuid4()), _grant(bob))
    time.sleep(0.3)
    client.create(scope, str(uuid.uuid4()), _grant(bob))

    assert (caught.value.status_code, caught.value.error.code) == (400, "PrincipalNotFound")
    assert standin.state.status_codes("role_assignment.create") == [400, 201]


def test_an_unknown_principal_or_scope_is_refused(
    azure_clients: AzureClients, standin: StandIn, group: str
) -> None:
    client = azure_clients.authorization(SUB).role_assignments
    carol = standin.add_user("carol@contoso.com")

    with pytest.raises(HttpResponseError) as unknown:
        client.create(f"{SCOPE}/resourceGroups/{group}", str(uuid.uuid4()), _grant(str(uuid.uuid4())))
    with pytest.raises(ResourceNotFoundError) as missing:
        client.create(f"{SCOPE}/resourceGroups/nowhere", str(uuid.uuid4()), _grant(carol))

    assert unknown.value.error.code == "PrincipalNotFound"
    assert missing.value.error.code == "ResourceGroupNotFound"
