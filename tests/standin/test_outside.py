"""Changes made by hand in Azure (drift): the Python API, the admin route and the command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.ai.ml.entities import AmlCompute

from provisioning.arm import idle_duration
from provisioning.azure.clients import AzureClients
from provisioning.standin import StandIn
from provisioning.standin.outside import OutsideError
from tests.standin.conftest import SUB

ROOT = Path(__file__).resolve().parents[2]
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"


@pytest.fixture
def cluster(standin: StandIn, azure_clients: AzureClients, group: str, workspace: str) -> str:
    azure_clients.ml(SUB, group, workspace).compute.begin_create_or_update(
        AmlCompute(name="cpu", size="STANDARD_DS3_V2", min_instances=0, max_instances=2)
    ).result()
    return "cpu"


def test_resize_cluster_changes_it_in_place(
    standin: StandIn, azure_clients: AzureClients, group: str, workspace: str, cluster: str
) -> None:
    result = standin.outside.resize_cluster(
        SUB,
        group,
        workspace,
        cluster,
        vm_size="STANDARD_D13_V2",
        priority="lowpriority",
        max_nodes=6,
        idle_seconds=1800,
    )
    seen = azure_clients.ml(SUB, group, workspace).compute.get(cluster)

    assert (seen.size, seen.tier, seen.max_instances, seen.idle_time_before_scale_down) == (
        "STANDARD_D13_V2",
        "low_priority",
        6,
        1800,
    )
    assert result["changes"] == [
        "vmSize STANDARD_DS3_V2 -> STANDARD_D13_V2",
        "vmPriority Dedicated -> LowPriority",
        "maxNodeCount 2 -> 6",
        "nodeIdleTimeBeforeScaleDown PT2M -> PT30M",
    ]
    with pytest.raises(OutsideError) as refused:
        standin.outside.resize_cluster(SUB, group, workspace, cluster, min_nodes=9)
    assert (refused.value.status, refused.value.code) == (400, "BadArgument")


def test_idle_durations_read_as_azureml_writes_them() -> None:
    assert [idle_duration(s) for s in (120, 90, 5400, 0)] == ["PT2M", "PT1M30S", "PT1H30M", "PT0S"]


def test_role_assignments_added_and_deleted_by_hand(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    alice = standin.add_user("alice@contoso.com")
    scope = f"/subscriptions/{SUB}/resourceGroups/{group}"
    client = azure_clients.authorization(SUB).role_assignments

    added = standin.outside.add_role_assignment(scope, "Reader", alice)
    listed = list(client.list_for_scope(scope, filter="atScope()"))
    by_id = standin.outside.add_role_assignment(
        scope, f"/providers/Microsoft.Authorization/roleDefinitions/{READER}", str(uuid.uuid4()), "Group"
    )
    with pytest.raises(OutsideError) as twice:
        standin.outside.add_role_assignment(scope, READER, alice)
    standin.outside.delete_role_assignment(added["id"])

    assert [(a.principal_id, a.principal_type, a.role_definition_id) for a in listed] == [
        (alice, "User", f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}")
    ]
    assert uuid.UUID(listed[0].name)  # a random GUID name, as the Azure portal makes it
    assert by_id["roleAssignment"]["properties"]["principalType"] == "Group"
    assert twice.value.code == "RoleAssignmentExists"
    assert [a.id for a in client.list_for_scope(scope)] == [by_id["id"]]
    with pytest.raises(OutsideError) as gone:
        standin.outside.delete_role_assignment(added["id"])
    assert gone.value.status == 404


def test_delete_resource_takes_what_is_under_it(
    standin: StandIn, azure_clients: AzureClients, group: str, workspace: str, cluster: str
) -> None:
    ws = standin.state.list_resources("workspace")[0]
    standin.outside.add_role_assignment(
        f"{ws['id']}/computes/{cluster}", "Reader", standin.add_user("a@contoso.com")
    )

    result = standin.outside.delete_resource(ws["id"])

    assert result["deleted"] == [ws["id"], f"{ws['id']}/computes/{cluster}"]
    assert len(result["roleAssignmentsDeleted"]) == 1
    assert standin.state.list_resources("compute") == []
    assert any(line.startswith("deleted role assignment") for line in result["changes"])


def test_add_resource_makes_an_untagged_storage_account(
    standin: StandIn, azure_clients: AzureClients, group: str
) -> None:
    standin.outside.add_resource(SUB, group, "byhand01")

    account = azure_clients.storage(SUB).storage_accounts.get_properties(group, "byhand01")

    assert (account.tags, account.location, account.kind) == ({}, "eastus2", "StorageV2")
    with pytest.raises(OutsideError) as taken:
        standin.outside.add_resource(SUB, group, "byhand01")
    assert taken.value.status == 409


def test_the_route_needs_a_token_the_standin_issued(standin: StandIn, raw: Any, group: str) -> None:
    url = f"{standin.base_url}/_standin/outside"
    body = {"action": "add_resource", "subscription": SUB, "resource_group": group, "name": "byhand02"}

    anonymous = requests.post(url, json=body, timeout=10)
    forged = requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=10)
    made = raw.request("POST", "/_standin/outside", json=body)
    unknown = raw.request("POST", "/_standin/outside", json={"action": "reboot"})
    missing = raw.request("POST", "/_standin/outside", json={"action": "delete_resource"})

    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert standin.state.list_resources("storage")[0]["name"] == "byhand02"
    assert made.json()["changes"] == [f"added untagged storage account {made.json()['id']}"]
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (400, "InvalidAction")
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "InvalidArguments")


def _command(standin: StandIn, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **standin.environment(os.environ["REQUESTS_CA_BUNDLE"])}
    return subprocess.run(
        [sys.executable, "manage.py", "azure_standin", "outside", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_command_posts_an_outside_change_and_prints_it(
    standin: StandIn, group: str, workspace: str, cluster: str
) -> None:
    done = _command(
        standin,
        "resize_cluster",
        "--subscription",
        SUB,
        "--resource-group",
        group,
        "--workspace",
        workspace,
        "--cluster",
        cluster,
        "--max-nodes",
        "4",
    )
    refused = _command(
        standin, "delete_resource", "--resource-id", f"/subscriptions/{SUB}/resourceGroups/nowhere"
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "maxNodeCount 2 -> 4"
    stored = standin.state.list_resources("compute")[0]["properties"]["properties"]["scaleSettings"]
    assert stored["maxNodeCount"] == 4
    assert refused.returncode == 1
    assert "ResourceNotFound" in refused.stderr
