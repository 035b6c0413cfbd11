"""config.yml as desired state: ``plan_config`` prints the difference with a workspace the portal holds,
``import_config`` makes it a change request; an exported file plans no change."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from provisioning.configfile import export_config
from provisioning.models import AuditEvent, ChangeRequest, Membership, ResourceState, Workspace
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db

Kind = ChangeRequest.Kind


def run(*args: object, **options: object) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def ws(active_workspace: Workspace) -> Workspace:
    return active_workspace


@pytest.fixture
def exported(ws, tmp_path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(export_config(ws))
    return path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_an_exported_file_plans_no_change_and_imports_nothing(ws, exported, alice) -> None:
    out, err = run("plan_config", str(exported))
    assert out == f"No changes: workspace {ws.workspace_name} matches the file.\n" and err == ""
    out, _ = run("plan_config", str(exported), json=True)
    assert json.loads(out) == {"changes": []}

    before = ChangeRequest.objects.count()
    out, _ = run("import_config", str(exported), requester="alice")
    assert "No changes" in out and "nothing saved" in out
    assert ChangeRequest.objects.count() == before


def test_an_edited_file_plans_exactly_its_edits(ws, exported) -> None:
    # Cluster 1: max nodes 1 -> 3 (in place); cluster 2 removed; a new cluster; user2 becomes a team lead;
    # user3 removed; user4 added.
    _edit(
        exported,
        "nodes: 1, 2, 1\n  priority: lowpriority, dedicated, lowpriority\n"
        "  vm_sku: STANDARD_DS3_V2, STANDARD_D13_V2, STANDARD_NV6\n"
        "  cluster_name: ds3-v2-cluster, ds13-v2-2ndclust, nv6-gpucluster",
        "nodes: 3, 1, 2\n  priority: lowpriority, lowpriority, lowpriority\n"
        "  vm_sku: STANDARD_DS3_V2, STANDARD_NV6, STANDARD_DS3_V2\n"
        "  cluster_name: ds3-v2-cluster, nv6-gpucluster, cpu-extra",
    )
    _edit(
        exported,
        "team_leads: admin1@contoso.com, user1@contoso.com",
        "team_leads: admin1@contoso.com, user1@contoso.com, user2@contoso.com",
    )
    _edit(
        exported,
        "data_scientists: user2@contoso.com, user3@contoso.com",
        "data_scientists: user4@contoso.com",
    )

    out, _ = run("plan_config", str(exported), json=True)
    changes = json.loads(out)["changes"]
    assert sorted((c["action"], c["object"], c["name"]) for c in changes) == [
        ("create", "cluster", "cpu-extra"),
        ("create", "member", "user4@contoso.com"),
        ("delete", "cluster", "ds13-v2-2ndclust"),
        ("delete", "member", "user3@contoso.com"),
        ("update", "cluster", "ds3-v2-cluster"),
        ("update", "member", "user2@contoso.com"),
    ]
    by_name = {c["name"]: c for c in changes}
    assert by_name["ds3-v2-cluster"]["fields"] == {"max_nodes": [1, 3]}
    assert by_name["user2@contoso.com"]["fields"] == {"persona": ["data_scientist", "team_lead"]}
    assert set(by_name["cpu-extra"]) == {"action", "object", "name", "fields"}

    text, _ = run("plan_config", str(exported))
    lines = text.splitlines()
    assert lines[0] == f"Workspace {ws.workspace_name}: 6 change(s)"
    assert "~ update cluster ds3-v2-cluster: max_nodes 1 -> 3" in lines
    assert "- delete cluster ds13-v2-2ndclust" in lines
    assert "~ update member user2@contoso.com: persona data_scientist -> team_lead" in lines
    assert ChangeRequest.objects.filter(kind=Kind.CHANGE_WORKSPACE).count() == 0  # plan_config saves nothing


def test_import_of_an_edited_file_makes_a_change_request(ws, exported, alice) -> None:
    _edit(exported, "nodes: 1, 2, 1", "nodes: 1, 2, 2")
    _edit(
        exported,
        "vm_sku: STANDARD_DS3_V2, STANDARD_D13_V2, STANDARD_NV6",
        "vm_sku: STANDARD_DS3_V2, STANDARD_D13_V2, STANDARD_NV6",
    )

    out, _ = run("import_config", str(exported), requester="alice", submit=True)

    cr = ChangeRequest.objects.get(kind=Kind.CHANGE_WORKSPACE)
    assert (cr.status, cr.workspace_id, cr.requester) == ("submitted", ws.pk, alice)
    spec = RequestSpec.from_json(cr.spec)
    assert spec == RequestSpec(
        cluster_updates=(ClusterSpec("nv6-gpucluster", "STANDARD_NV6", "low_priority", max_nodes=2),)
    )
    assert "~ update cluster nv6-gpucluster: max_nodes 1 -> 2" in out
    assert AuditEvent.objects.filter(request_id=cr.pk, action="request.created").exists()


def test_a_size_change_in_the_file_is_planned_as_a_replace(ws, exported) -> None:
    _edit(exported, "vm_sku: STANDARD_DS3_V2,", "vm_sku: STANDARD_D13_V2,")
    out, _ = run("plan_config", str(exported))
    assert "-/+ replace cluster ds3-v2-cluster: vm_size STANDARD_DS3_V2 -> STANDARD_D13_V2" in out
    assert "cannot change the VM size or priority" in out


def test_a_file_for_the_workspace_elsewhere_is_refused(ws, exported, alice) -> None:
    _edit(exported, "create_dls: y", "create_dls: n")
    with pytest.raises(CommandError, match=r"exists with other settings .*create_dls y -> n"):
        run("plan_config", str(exported))
    with pytest.raises(CommandError, match="exists with other settings"):
        run("import_config", str(exported), requester="alice")
    assert not ChangeRequest.objects.filter(kind=Kind.CHANGE_WORKSPACE).exists()


def test_members_and_groups_the_layout_cannot_hold_are_left_alone(ws, exported) -> None:
    Membership.objects.create(
        workspace=ws,
        principal_name="Platform Team",
        principal_type="group",
        persona="data_scientist",
        state=ResourceState.ACTIVE,
    )
    out, err = run("plan_config", str(exported), json=True)
    assert json.loads(out) == {"changes": []}
    assert "group 'Platform Team' keeps its access" in err


def test_a_plan_for_a_new_workspace_lists_what_it_creates(policy, tmp_path) -> None:
    from tests.provisioning.test_config_yaml import TUTORIAL

    path = tmp_path / "config.yml"
    path.write_text(TUTORIAL)
    out, _ = run("plan_config", str(path), json=True)
    changes = json.loads(out)["changes"]
    assert {
        "action": "create",
        "object": "resource_group",
        "name": "bgmr-bluegranit-eastus2-dev",
        "fields": {},
    } in changes
    assert all(c["action"] == "create" for c in changes)
    assert [c["name"] for c in changes if c["object"] == "member"] == [m.principal for m in _members()]
    assert not ChangeRequest.objects.exists()


def _members() -> tuple[MemberSpec, ...]:
    from tests.provisioning.test_config_yaml import TUTORIAL_CONFIG_MEMBERS

    return TUTORIAL_CONFIG_MEMBERS


def test_a_file_for_a_workspace_still_being_provisioned_is_planned_not_a_crash(
    policy, alice, bob, tmp_path
) -> None:
    # Its clusters and members are pending: not yet the approved state a day-2 plan is computed against.
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    path = tmp_path / "config.yml"
    path.write_text(export_config(cr.workspace).replace("nodes: 1, 2, 1", "nodes: 1, 4, 1"))

    out, err = run("plan_config", str(path), json=True)
    changes = json.loads(out)["changes"]
    assert {(c["action"], c["object"]) for c in changes} <= {
        ("create", "cluster"),
        ("create", "member"),
        ("create", "group"),
    }
    assert "already has a cluster named 'ds13-v2-2ndclust'" in err
    with pytest.raises(CommandError, match="already has a cluster named"):
        run("import_config", str(path), requester="alice", submit=True)
