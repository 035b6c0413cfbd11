"""The two administration roles (#17, docs/roles.md): defined in Azure with exactly the documented actions,
assigned to the subscription's admin groups at their scopes, brought back when changed (audited), left alone
when equal, and not reported as drift."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from provisioning.engine.admin_roles import admin_roles_ensure
from provisioning.models import AllowedSubscription, AuditEvent
from provisioning.roles import ADMIN_ROLE_REASONS, CAPACITY_ADMIN, WORKSPACE_ADMIN
from tests.factories import TUTORIAL_SUBSCRIPTION, WorkspaceFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

SUBSCRIPTION_SCOPE = f"/subscriptions/{TUTORIAL_SUBSCRIPTION}"


@pytest.fixture
def groups(policy, standin) -> dict[str, str]:
    AllowedSubscription.objects.filter(subscription_id=TUTORIAL_SUBSCRIPTION).update(
        capacity_admin_group="capacity-admins", workspace_admin_group="workspace-admins"
    )
    return {name: standin.add_group(name) for name in ("capacity-admins", "workspace-admins")}


def _workspace(azure_clients, **fields):  # type: ignore[no-untyped-def]
    """A workspace row whose resource group exists in Azure (the stand-in)."""
    ws = WorkspaceFactory(**fields)
    groups = azure_clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups
    groups.create_or_update(ws.resource_group, {"location": ws.region})
    return ws


def _definitions(standin) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    return {d["properties"]["roleName"]: d["properties"] for d in standin.state.list_role_definitions()}


def test_both_roles_are_defined_as_documented_and_assigned_at_their_scopes(
    groups, standin, azure_clients
) -> None:
    ws = _workspace(azure_clients)
    _workspace(azure_clients, management="observed")  # adopted, not managed: the portal gives nothing on it

    changes = admin_roles_ensure(azure_clients)

    defined = _definitions(standin)
    for role in (CAPACITY_ADMIN, WORKSPACE_ADMIN):
        permissions = defined[role]["permissions"][0]
        documented = ADMIN_ROLE_REASONS[role]
        assert permissions["actions"] == [a for a, _ in documented["actions"]]
        assert permissions["notActions"] == [a for a, _ in documented["not_actions"]]
        assert defined[role]["assignableScopes"] == [SUBSCRIPTION_SCOPE]
    capacity = standin.state.list_role_assignments(principal_id=groups["capacity-admins"])
    workspace = standin.state.list_role_assignments(principal_id=groups["workspace-admins"])
    assert [a["properties"]["scope"] for a in capacity] == [SUBSCRIPTION_SCOPE]
    assert [a["properties"]["scope"] for a in workspace] == [
        f"{SUBSCRIPTION_SCOPE}/resourceGroups/{ws.resource_group}"
    ]
    assert {(c.what, c.outcome) for c in changes} == {("definition", "created"), ("assignment", "created")}
    audited = list(
        AuditEvent.objects.filter(action__startswith="admin_role.").values_list("action", flat=True)
    )
    assert sorted(audited) == [
        "admin_role.assigned",
        "admin_role.assigned",
        "admin_role.created",
        "admin_role.created",
    ]
    assert AllowedSubscription.objects.get().workspace_admin_group_id == groups["workspace-admins"]


def test_a_second_run_changes_nothing_and_a_changed_definition_is_put_back(
    groups, standin, azure_clients
) -> None:
    _workspace(azure_clients)
    first = admin_roles_ensure(azure_clients)
    assert {c.outcome for c in first} == {"created"}
    writes = standin.state.count("role_definition.create") + standin.state.count("role_assignment.create")

    again = admin_roles_ensure(azure_clients)
    assert {c.outcome for c in again} == {"unchanged"}, [c.message for c in again]
    assert (
        standin.state.count("role_definition.create") + standin.state.count("role_assignment.create")
        == writes
    )

    # Someone widens the workspace admin role in Azure: the next run puts the documented permissions back.
    from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleDefinition

    client = azure_clients.authorization(TUTORIAL_SUBSCRIPTION)
    (found,) = client.role_definitions.list(SUBSCRIPTION_SCOPE, filter=f"roleName eq '{WORKSPACE_ADMIN}'")
    widened = RoleDefinition(
        role_name=WORKSPACE_ADMIN,
        description=found.description,
        role_type="CustomRole",
        permissions=[Permission(actions=["*"], not_actions=[])],
        assignable_scopes=[SUBSCRIPTION_SCOPE],
    )
    client.role_definitions.create_or_update(SUBSCRIPTION_SCOPE, found.name, widened)

    changes = admin_roles_ensure(azure_clients)

    assert [(c.role, c.outcome) for c in changes if c.what == "definition" and c.outcome != "unchanged"] == [
        (WORKSPACE_ADMIN, "updated")
    ]
    assert _definitions(standin)[WORKSPACE_ADMIN]["permissions"][0]["actions"] != ["*"]
    assert AuditEvent.objects.filter(action="admin_role.updated", object_id=WORKSPACE_ADMIN).count() == 1


def test_the_command_reports_a_group_azure_does_not_know(policy, standin, azure_clients) -> None:
    AllowedSubscription.objects.update(capacity_admin_group="nobody-by-this-name")
    out = io.StringIO()

    with pytest.raises(CommandError, match="1 subscription"):
        call_command("admin_roles", "--json", stdout=out)

    (failed,) = [c for c in json.loads(out.getvalue())["changes"] if c["outcome"] == "failed"]
    assert "nobody-by-this-name" in failed["message"]


def test_an_environment_may_give_data_scientists_azures_built_in_role(
    policy, alice, bob, standin, azure_clients, rq_queue, client
) -> None:
    from provisioning.engine.reconcile import reconcile
    from provisioning.models import EnvironmentPolicy, Membership
    from tests.provisioning.provisioned import provisioned

    dev = EnvironmentPolicy.for_environment("dev")  # (a transactional test starts without the seeded rows)
    dev.scientist_role = "AzureML Data Scientist"
    dev.save()

    ws = provisioned(standin, azure_clients, alice, bob)

    assert ws.scientist_role == "AzureML Data Scientist"
    user2 = Membership.objects.get(workspace=ws, principal_name="user2@contoso.com")
    lead = Membership.objects.get(workspace=ws, principal_name="user1@contoso.com")
    workspace_scope = f"{SUBSCRIPTION_SCOPE}/resourceGroups/{ws.resource_group}".lower()

    def on_workspace(member: Membership) -> list[str]:
        return [
            a["properties"]["roleDefinitionId"].rsplit("/", 1)[-1]
            for a in standin.state.list_role_assignments(principal_id=member.object_id)
            if a["properties"]["scope"].lower().endswith(f"/workspaces/{ws.workspace_name}")
            and a["properties"]["scope"].lower().startswith(workspace_scope)
        ]

    assert on_workspace(user2) == ["f6c7c914-8db3-469d-8ca1-694a8f32e121"]  # the built-in, by its id
    assert on_workspace(lead) != ["f6c7c914-8db3-469d-8ca1-694a8f32e121"]  # team leads keep the portal's
    assert reconcile(clients=azure_clients)["workspaces"][0]["drift"] == []  # the approved state says so
    # Changing the policy later changes new workspaces only: this one keeps the role it was approved with.
    EnvironmentPolicy.objects.filter(environment="dev").update(scientist_role="Data Scientist")
    assert reconcile(clients=azure_clients)["workspaces"][0]["drift"] == []
