"""The command line: import, submit, approve, reject, show and export requests; seed the demo."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts import personas
from accounts.models import User
from provisioning.configfile import parse_config
from provisioning.models import AllowedRegion, AllowedVmSize, AuditEvent, ChangeRequest, Workspace
from provisioning.spec import RequestSpec
from provisioning.workflow import services
from tests.factories import UserFactory
from tests.provisioning.test_config_yaml import MALFORMED, TUTORIAL, assert_issue, malformed_text

pytestmark = pytest.mark.django_db


def run(*args: object, **options: object) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO(), **options)
    return out.getvalue()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "config.yml"
    path.write_text(TUTORIAL)
    return path


def imported(config_file: Path, requester: str = "alice@contoso.com") -> ChangeRequest:
    run("import_config", str(config_file), requester=requester, submit=True)
    return ChangeRequest.objects.latest("id")


def test_import_makes_a_draft(policy, alice, config_file):
    out = run("import_config", str(config_file), requester="ALICE@contoso.com")

    cr = ChangeRequest.objects.get()
    assert (cr.status, cr.kind, cr.requester, cr.workspace_name) == (
        "draft",
        "new_workspace",
        alice,
        "bgmrbluegranite2devws",
    )
    assert RequestSpec.from_json(cr.spec) == parse_config(TUTORIAL)
    assert f"Request #{cr.pk}" in out and "status draft" in out and "bgmrbluegranite2devws" in out
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["request.created"]


def test_import_and_submit_by_username(policy, alice, config_file):
    out = run("import_config", str(config_file), requester="alice", submit=True)

    cr = ChangeRequest.objects.get()
    assert cr.status == ChangeRequest.Status.SUBMITTED
    assert "status submitted" in out
    assert AuditEvent.objects.filter(request_id=cr.pk).count() == 2


@pytest.mark.parametrize(
    ("case", "old", "new", "line", "field", "fragment"), MALFORMED, ids=[m[0] for m in MALFORMED]
)
def test_a_bad_file_writes_nothing(policy, alice, tmp_path, case, old, new, line, field, fragment):
    path = tmp_path / "config.yml"
    path.write_text(malformed_text(old, new))

    with pytest.raises(CommandError) as raised:
        run("import_config", str(path), requester="alice", submit=True)

    assert_issue(str(raised.value), line, field, fragment)
    assert ChangeRequest.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_a_file_for_a_workspace_another_lead_manages_writes_nothing(policy, alice, bob, charlie, config_file):
    # The file names alice's workspace: for charlie it is a change to a workspace he does not manage.
    cr = imported(config_file)
    run("approve_request", str(cr.pk), approver="bob@contoso.com")
    requests, events = ChangeRequest.objects.count(), AuditEvent.objects.count()

    with pytest.raises(CommandError, match="only request changes to workspaces you manage"):
        run("import_config", str(config_file), requester="charlie", submit=True)

    assert (ChangeRequest.objects.count(), AuditEvent.objects.count()) == (requests, events)


@pytest.mark.parametrize(
    ("requester", "message"), [("nobody@contoso.com", "no requester"), ("dana", "not a team lead")]
)
def test_import_needs_a_known_team_lead(policy, dana, config_file, requester, message):
    with pytest.raises(CommandError, match=message):
        run("import_config", str(config_file), requester=requester, submit=True)

    assert ChangeRequest.objects.count() == 0


def test_import_from_standard_input(policy, alice, monkeypatch):
    monkeypatch.setattr("sys.stdin", StringIO(TUTORIAL.replace("nodes: 1, 2, 1", "nodes: 1, 2, x")))

    with pytest.raises(CommandError, match=r"^<stdin> line 13, compute.nodes: 'x' is not a whole number$"):
        run("import_config", "-", requester="alice")


def test_import_of_a_missing_file(alice, tmp_path):
    with pytest.raises(CommandError, match="cannot read"):
        run("import_config", str(tmp_path / "nope.yml"), requester="alice")


def test_approve_from_the_command_line(policy, alice, bob, config_file):
    cr = imported(config_file)

    out = run("approve_request", str(cr.pk), approver="bob")

    cr.refresh_from_db()
    assert (cr.status, cr.approver) == (ChangeRequest.Status.APPROVED, bob)
    assert Workspace.objects.filter(workspace_name="bgmrbluegranite2devws").exists()
    assert "approved" in out


def test_actions_from_the_command_line_name_the_person_and_say_so(policy, alice, bob, config_file):
    bob.first_name, bob.last_name = "Bob", "Builder"
    bob.save()
    cr = imported(config_file)

    run("approve_request", str(cr.pk), approver="BOB@contoso.com")

    approved = AuditEvent.objects.get(action="request.approved")
    assert (approved.actor, approved.actor_name, approved.actor_upn, approved.via) == (
        "bob",
        "Bob Builder",
        "bob@contoso.com",
        "cli",
    )
    by_alice = AuditEvent.objects.filter(action__in=["request.created", "request.submitted"])
    assert {(e.actor, e.via) for e in by_alice} == {("alice", "cli")}


@pytest.mark.parametrize(
    ("approver", "message"),
    [("alice", "only admins"), ("dana", "only admins"), ("nobody", "no approver")],
)
def test_approve_refusals_say_why(policy, alice, bob, dana, config_file, approver, message):
    cr = imported(config_file)

    with pytest.raises(CommandError, match=message):
        run("approve_request", str(cr.pk), approver=approver)

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.SUBMITTED


def test_nobody_approves_their_own_request(policy, config_file):
    UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    cr = imported(config_file, requester="erin")

    with pytest.raises(CommandError, match="nobody approves or rejects their own request"):
        run("approve_request", str(cr.pk), approver="erin@contoso.com")
    with pytest.raises(CommandError, match="nobody approves or rejects their own request"):
        run("reject_request", str(cr.pk), approver="erin", reason="no")


def test_approve_twice_or_an_unknown_request(policy, alice, bob, config_file):
    cr = imported(config_file)
    run("approve_request", str(cr.pk), approver="bob")

    with pytest.raises(CommandError, match="is approved; it cannot be approved"):
        run("approve_request", str(cr.pk), approver="bob")
    with pytest.raises(CommandError, match="does not exist"):
        run("approve_request", "9999", approver="bob")


def test_approve_lists_the_problems_found_at_approval(policy, alice, bob, config_file):
    cr = imported(config_file)
    AllowedVmSize.objects.filter(name="STANDARD_NV6").update(is_active=False)

    with pytest.raises(CommandError) as raised:
        run("approve_request", str(cr.pk), approver="bob")

    assert "clusters.2.vm_size: VM size 'STANDARD_NV6' is not one the portal allows" in str(raised.value)


def test_reject_with_a_reason(policy, alice, bob, config_file):
    cr = imported(config_file)

    with pytest.raises(CommandError, match="reason: a reason is required"):
        run("reject_request", str(cr.pk), approver="bob", reason="   ")
    run("reject_request", str(cr.pk), approver="bob", reason="use the shared workspace")

    cr.refresh_from_db()
    assert (cr.status, cr.reason) == (ChangeRequest.Status.REJECTED, "use the shared workspace")


def test_show_request_json_has_the_status_and_every_planned_name(policy, alice, config_file):
    cr = imported(config_file)

    doc = json.loads(run("show_request", str(cr.pk), json=True))

    assert (doc["id"], doc["status"], doc["kind"]) == (cr.pk, "submitted", "new_workspace")
    assert doc["requester"] == "alice@contoso.com" and doc["approver"] is None
    assert doc["spec"] == cr.spec
    names = parse_config(TUTORIAL, validate=False).workspace.names().as_dict()
    assert doc["plan"]["names"] == names
    planned = {r["name"] for r in doc["plan"]["resources"]}
    assert {n for k, n in names.items() if k != "base"} <= planned
    assert [c["name"] for c in doc["plan"]["clusters"]] == [
        "ds3-v2-cluster",
        "ds13-v2-2ndclust",
        "nv6-gpucluster",
    ]
    principals = {a["principal"] for a in doc["plan"]["role_assignments"]}
    assert principals == {"admin1@contoso.com", "user1@contoso.com", "user2@contoso.com", "datasciencegroup"}


def test_show_request_text(policy, alice, bob, config_file):
    cr = imported(config_file)
    run("approve_request", str(cr.pk), approver="bob")

    out = run("show_request", str(cr.pk))

    assert f"Request #{cr.pk}: new_workspace bgmrbluegranite2devws" in out
    assert "approved" in out and "bob@contoso.com" in out
    assert "bgmrbluegranite2devkv" in out and "ds13-v2-2ndclust" in out
    assert "user2@contoso.com (data_scientist): AcrPull on registry bgmrbluegranite2devcr" in out
    with pytest.raises(CommandError, match="does not exist"):
        run("show_request", "9999")


def test_import_submit_approve_export_round_trip(policy, alice, bob, config_file, tmp_path):
    cr = imported(config_file)
    run("approve_request", str(cr.pk), approver="bob")
    output = tmp_path / "exported.yml"

    printed = run("export_config", "bgmrbluegranite2devws")
    run("export_config", "bgmrbluegranite2devws", output=str(output))

    assert output.read_text() == printed
    assert "create_dls: y" in printed and "nodes: 1, 2, 1" in printed
    assert parse_config(printed, validate=False) == RequestSpec.from_json(cr.spec)


def test_export_of_an_unknown_workspace():
    with pytest.raises(CommandError, match="no workspace named 'nope'"):
        run("export_config", "nope")


def test_list_workspaces(policy, alice, bob, config_file):
    assert "No workspaces yet" in run("list_workspaces")
    cr = imported(config_file)
    run("approve_request", str(cr.pk), approver="bob")

    out = run("list_workspaces")
    rows = json.loads(run("list_workspaces", json=True))

    assert "bgmrbluegranite2devws" in out and "owner alice@contoso.com" in out
    assert rows[0]["workspace_name"] == "bgmrbluegranite2devws"
    assert len(rows[0]["clusters"]) == 3 and len(rows[0]["members"]) == 4
    assert {c["name"]: c for c in rows[0]["clusters"]}["ds3-v2-cluster"] == {
        "name": "ds3-v2-cluster",
        "vm_size": "STANDARD_DS3_V2",
        "priority": "low_priority",
        "min_nodes": 0,
        "max_nodes": 1,
        "idle_seconds": 120,
        "state": "pending",
    }
    assert {m["principal"]: m["persona"] for m in rows[0]["members"]}["user1@contoso.com"] == "team_lead"
    assert set(rows[0]["members"][0]) == {"principal", "principal_type", "persona", "state", "expires_at"}
    assert "ds3-v2-cluster (STANDARD_DS3_V2, pending)" in out


def test_seed_demo_is_idempotent():
    out = run("seed_demo")
    run("seed_demo", password="another-one", verbosity=0)

    users = {u.username: u for u in User.objects.all()}
    assert set(users) == {"admin", "lead", "scientist", "lead2"}
    assert all(u.check_password("another-one") for u in users.values())
    assert "portal-demo" in out
    admin = users["admin"]
    assert admin.is_staff and not users["lead"].is_staff
    assert admin.has_perm("provisioning.change_allowedregion") and admin.has_perm(
        "provisioning.change_policy"
    )
    assert not admin.has_perm("provisioning.change_changerequest")
    assert users["lead"].upn == "lead@contoso.com"
    assert AllowedRegion.objects.get(name="eastus2").abbreviation == "e2"
    assert AllowedRegion.objects.count() == 4 and AllowedVmSize.objects.count() == 5
    sample = ChangeRequest.objects.get()
    assert (sample.requester, sample.status) == (users["lead2"], ChangeRequest.Status.SUBMITTED)
    assert not Workspace.objects.exists()
    assert not ChangeRequest.objects.filter(workspace_name="bgmrbluegranite2devws").exists()


def test_demo_users_can_run_the_tutorial_from_the_command_line(config_file):
    run("seed_demo", verbosity=0)
    sample = ChangeRequest.objects.get()

    cr = imported(config_file, requester="lead@contoso.com")
    run("approve_request", str(cr.pk), approver="admin@contoso.com")
    run("approve_request", str(sample.pk), approver="admin")

    assert set(ChangeRequest.objects.values_list("status", flat=True)) == {"approved"}
    cr.refresh_from_db()
    assert services.request_plan(cr)["names"]["workspace"] == "bgmrbluegranite2devws"
