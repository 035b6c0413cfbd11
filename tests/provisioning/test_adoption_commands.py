"""``discover_workspaces`` and ``adopt_workspace``: their output, and adoption and take-over from the shell."""

from __future__ import annotations

import getpass
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.models import AuditEvent, Workspace
from tests.provisioning.scripted import by_hand, by_the_scripts

pytestmark = pytest.mark.django_db(transaction=True)
WORKSPACE_KEYS = {
    "azure_id",
    "name",
    "subscription_id",
    "resource_group",
    "region",
    "tags",
    "managed_by_portal",
    "convention",
    "dependent_resources",
    "group",
    "resources",
    "clusters",
    "role_assignments",
}


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_discover_workspaces_prints_the_documented_json(standin, policy, rq_queue) -> None:
    by_the_scripts(standin)
    by_hand(standin)

    document = json.loads(_run("discover_workspaces", "--json"))

    assert set(document) == {"workspaces", "errors"} and document["errors"] == []
    assert [w["name"] for w in document["workspaces"]] == ["mktgchurne2devws", "sandbox-ml"]
    for ws in document["workspaces"]:
        assert set(ws) == WORKSPACE_KEYS
        assert set(ws["convention"]) == {
            "follows",
            "department",
            "team",
            "region",
            "environment",
            "region_abbv",
            "reason",
        }
    churn, sandbox = document["workspaces"]
    assert churn["convention"]["follows"] and not sandbox["convention"]["follows"]
    assert set(churn["clusters"][0]) == {
        "azure_id",
        "name",
        "vm_size",
        "priority",
        "min_nodes",
        "max_nodes",
        "idle_seconds",
        "tags",
    }
    assert {a["principal_name"] for a in churn["role_assignments"]} == {
        "ds1@contoso.com",
        "lead1@contoso.com",
    }
    text = _run("discover_workspaces")
    assert "mktg/churn eastus2 (e2) dev" in text and "does not follow the convention" in text


def test_adopt_workspace_adopts_then_manages_with_manage(standin, policy, bob, alice, rq_queue) -> None:
    ids = by_the_scripts(standin)

    text = _run("adopt_workspace", ids["workspace"], "--team-lead", alice.upn, "--admin", bob.upn, "--manage")

    ws = Workspace.objects.get()
    assert "Adopted mktgchurne2devws as observed" in text and "is managed now" in text
    assert not ws.is_observed and ws.owner == alice
    for rid in (
        ids["resource_group"],
        ids["workspace"],
        ids["storage"],
        ids["key_vault"],
        ids["cluster:cpu-cluster"],
    ):
        assert standin.state.resource(rid)["tags"][OWNERSHIP_TAG] == OWNERSHIP_VALUE
    with pytest.raises(CommandError, match="already holds"):
        _run("adopt_workspace", ids["workspace"], "--team-lead", alice.upn, "--admin", bob.upn)


def test_adopt_workspace_observed_writes_nothing_and_names_refusals(
    standin, policy, bob, alice, dana, rq_queue
) -> None:
    ids = by_the_scripts(standin)
    standin.state.clear_requests()

    _run("adopt_workspace", ids["workspace"], "--team-lead", alice.upn, "--admin", bob.upn)

    assert Workspace.objects.get().is_observed
    assert [r.path for r in standin.state.requests if r.method in ("PUT", "PATCH", "DELETE")] == []
    with pytest.raises(CommandError, match="only admins"):
        _run("adopt_workspace", ids["workspace"], "--team-lead", alice.upn, "--admin", dana.upn)
    with pytest.raises(CommandError, match="did not find"):
        _run(
            "adopt_workspace",
            "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/nope",
            "--team-lead",
            alice.upn,
            "--admin",
            bob.upn,
        )


def test_adopt_workspace_as_documented_without_admin_acts_as_the_shells_operator(
    standin, policy, alice, rq_queue
) -> None:
    ids = by_the_scripts(standin)

    _run("adopt_workspace", ids["workspace"], "--team-lead", alice.upn)

    ws = Workspace.objects.get()
    assert ws.is_observed and ws.owner == alice
    adopted = AuditEvent.objects.get(action="workspace.adopted")
    assert adopted.actor == f"cli:{getpass.getuser()}"


def test_the_demo_stand_in_holds_workspaces_made_by_the_scripts(standin, policy, rq_queue) -> None:
    from provisioning.management.commands import demo

    directory = {upn: standin.add_user(upn) for upn in demo.DEMO_DIRECTORY_USERS}
    directory |= {group: standin.add_group(group) for group in demo.DEMO_DIRECTORY_GROUPS}
    demo.scripts_workspaces(standin, directory)

    found = json.loads(_run("discover_workspaces", "--json"))["workspaces"]

    assert [(w["name"], w["convention"]["follows"]) for w in found] == [
        ("mktgchurne2devws", True),
        ("opsforecastweprows", True),
        ("sandbox-ml", False),
    ]
    assert all(not w["managed_by_portal"] and w["tags"] == {} for w in found)
    assert all(len(w["clusters"]) == 1 and len(w["role_assignments"]) == 3 for w in found[:2])
