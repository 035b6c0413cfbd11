"""A request's life through the API: the same services, statuses, audit and permissions as the pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from provisioning.models import AuditEvent, ChangeRequest, Workspace
from provisioning.spec import RequestSpec
from provisioning.workflow import services
from provisioning.workflow.validation import spec_problems
from tests.factories import ChangeRequestFactory, tutorial_spec

pytestmark = pytest.mark.django_db
CONFIG = Path(__file__).parent.parent / "data" / "config.yml"


def _trail(cr_id: int) -> list[tuple[str, str]]:
    """(actor, action) of a request's events, the token uses left out."""
    return list(AuditEvent.objects.filter(request_id=cr_id).order_by("id").values_list("actor", "action"))


def test_a_team_lead_token_creates_and_submits_from_config_yml_and_an_admin_token_approves(
    policy, alice, bob, api_as, rq_queue
):
    lead, admin = api_as(alice), api_as(bob)
    made = lead.post("requests/", {"config_yml": CONFIG.read_text()})
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["status"] == "draft" and body["kind"] == "new_workspace"
    assert body["requester"] == alice.principal_name
    assert RequestSpec.from_json(body["spec"]).workspace.team == "bluegranit"

    assert lead.post(f"requests/{body['id']}/submit/").json()["status"] == "submitted"
    refused = lead.post(f"requests/{body['id']}/approve/")
    assert refused.status_code == 403 and refused.json()["detail"]
    approved = admin.post(f"requests/{body['id']}/approve/")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved" and approved.json()["approver"] == bob.principal_name

    plan = admin.get(f"requests/{body['id']}/plan/").json()
    assert plan == ChangeRequest.objects.get(pk=body["id"]).plan
    assert Workspace.objects.filter(team="bluegranit").exists()
    assert admin.get(f"requests/{body['id']}/steps/").status_code == 200


def test_the_api_and_the_pages_leave_the_same_result_and_audit(policy, alice, bob, api_as, rq_queue):
    spec = tutorial_spec(team="viaapi")
    lead, admin = api_as(alice), api_as(bob)
    by_api = lead.post("requests/", {"kind": "new_workspace", "spec": spec.to_json()}).json()
    lead.post(f"requests/{by_api['id']}/submit/")
    admin.post(f"requests/{by_api['id']}/approve/")

    by_page = services.request_create(
        requester=alice, kind="new_workspace", spec=tutorial_spec(team="viapage")
    )
    team_lead, approver = Client(), Client()
    team_lead.force_login(alice)
    approver.force_login(bob)
    assert team_lead.post(f"/requests/{by_page.pk}/submit/").status_code == 302
    assert approver.post(f"/requests/{by_page.pk}/approve/").status_code == 302

    api_cr, page_cr = ChangeRequest.objects.get(pk=by_api["id"]), ChangeRequest.objects.get(pk=by_page.pk)
    assert api_cr.status == page_cr.status == "approved"
    assert RequestSpec.from_json(api_cr.spec).members == RequestSpec.from_json(page_cr.spec).members

    def shape(plan: dict) -> dict:
        return {k: len(v) if isinstance(v, list) else type(v).__name__ for k, v in plan.items()}

    assert shape(api_cr.plan) == shape(page_cr.plan)
    assert _trail(api_cr.pk) == _trail(page_cr.pk)
    # The same events, each saying how it came: through the API, or the pages.
    assert set(AuditEvent.objects.filter(request_id=api_cr.pk).values_list("via", flat=True)) == {"api"}
    assert set(
        AuditEvent.objects.filter(
            request_id=page_cr.pk, action__in=["request.submitted", "request.approved"]
        ).values_list("via", flat=True)
    ) == {"web"}


def test_errors_are_json_with_the_forms_problem_list(policy, alice, api_as):
    lead = api_as(alice)
    wrong_types = lead.post(
        "requests/",
        {
            "kind": "new_workspace",
            "spec": {"workspace": None, "clusters": [{"name": "a", "vm_size": "x", "max_nodes": "many"}]},
        },
    )
    assert wrong_types.status_code == 400
    assert {
        "field": "spec.clusters.0.max_nodes",
        "message": "A valid integer is required.",
    } in wrong_types.json()["problems"]

    breaks_rules = RequestSpec.from_json(
        {**tutorial_spec().to_json(), "clusters": [{"name": "x!", "vm_size": "NOPE"}]}
    )
    draft = lead.post("requests/", {"kind": "new_workspace", "spec": breaks_rules.to_json()}).json()
    submitted = lead.post(f"requests/{draft['id']}/submit/")
    assert submitted.status_code == 400
    cr = ChangeRequest.objects.get(pk=draft["id"])
    expected = [
        {"field": p.field, "message": p.message}
        for p in spec_problems(RequestSpec.from_json(cr.spec), kind=cr.kind, workspace=None, request_id=cr.pk)
    ]
    assert submitted.json()["problems"] == expected and expected
    assert lead.get(f"requests/{draft['id']}/problems/").json()["problems"] == expected

    bad_yaml = lead.post("requests/", {"config_yml": "workspace: [unclosed"})
    assert bad_yaml.status_code == 400 and bad_yaml.json()["problems"][0]["line"] >= 1
    assert lead.post(f"requests/{draft['id']}/approve/").status_code == 403
    assert lead.post(f"requests/{draft['id']}/retry/").status_code == 403


def test_a_status_change_the_status_does_not_allow_is_409(policy, alice, api_as):
    cr = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="done"), submitted=True)
    lead = api_as(alice)
    assert lead.post(f"requests/{cr.pk}/cancel/").json()["status"] == "cancelled"
    again = lead.post(f"requests/{cr.pk}/submit/")
    assert again.status_code == 409 and again.json()["detail"]


def test_draft_update_reject_with_reason_and_copy(policy, alice, bob, api_as):
    lead, admin = api_as(alice), api_as(bob)
    draft = lead.post(
        "requests/", {"kind": "new_workspace", "spec": tutorial_spec(team="first").to_json()}
    ).json()
    changed = lead.patch(f"requests/{draft['id']}/", {"spec": tutorial_spec(team="second").to_json()})
    assert changed.status_code == 200 and changed.json()["spec"]["workspace"]["team"] == "second"
    lead.post(f"requests/{draft['id']}/submit/")
    assert admin.post(f"requests/{draft['id']}/reject/", {}).status_code == 400
    rejected = admin.post(f"requests/{draft['id']}/reject/", {"reason": "not funded yet"}).json()
    assert rejected["status"] == "rejected" and rejected["reason"] == "not funded yet"
    copy = lead.post(f"requests/{draft['id']}/copy/")
    assert copy.status_code == 201 and copy.json()["copied_from"] == draft["id"]


def test_a_failed_request_is_amended_and_retried_through_the_api(policy, alice, bob, api_as, rq_queue):
    cr = ChangeRequestFactory(
        requester=alice,
        approver=bob,
        spec=tutorial_spec(team="broken"),
        failed=True,
        failed_step="role_grant",
    )
    principal = RequestSpec.from_json(cr.spec).all_members()[-1].principal
    amended = api_as(alice).post(
        f"requests/{cr.pk}/amend/", {"reason": "left the company", "drop_members": [principal]}
    )
    assert amended.status_code == 200, amended.json()
    assert principal not in [
        m.principal for m in RequestSpec.from_json(ChangeRequest.objects.get(pk=cr.pk).spec).all_members()
    ]
    other = ChangeRequestFactory(
        requester=alice, approver=bob, spec=tutorial_spec(team="again"), failed=True, failed_step="role_grant"
    )
    assert api_as(alice).post(f"requests/{other.pk}/retry/").status_code == 403
    assert api_as(bob).post(f"requests/{other.pk}/retry/").json()["status"] in ("approved", "provisioning")


def test_a_config_yml_for_a_held_workspace_is_its_change_or_nothing(active_workspace, alice, charlie, api_as):
    from provisioning.configfile import export_config

    text = export_config(active_workspace)
    lead = api_as(alice)
    same = lead.post("requests/", {"config_yml": text})
    assert same.status_code == 400 and "nothing to request" in same.json()["detail"]
    edited = lead.post("requests/", {"config_yml": text.replace("nodes: 1, 2, 1", "nodes: 1, 2, 2")})
    assert edited.status_code == 201, edited.json()
    assert (edited.json()["kind"], edited.json()["workspace"]) == ("change_workspace", active_workspace.pk)
    outsider = api_as(charlie).post(
        "requests/", {"config_yml": text.replace("nodes: 1, 2, 1", "nodes: 1, 2, 2")}
    )
    assert outsider.status_code == 403 and "does not manage it" in outsider.json()["detail"]
    assert ChangeRequest.objects.filter(kind="change_workspace").count() == 1


def test_a_pool_is_requested_and_shown_with_its_purpose_through_the_api(policy, alice, bob, api_as, rq_queue):
    ChangeRequestFactory(spec=tutorial_spec(team="blue"), requester=alice, approver=bob, approved=True)
    spec = tutorial_spec(team="commpool", purpose="pool", pool_teams=("bgmr/blue",))
    lead, admin = api_as(alice), api_as(bob)
    made = lead.post("requests/", {"kind": "new_workspace", "spec": spec.to_json()}).json()
    assert made["spec"]["workspace"]["pool_teams"] == ["bgmr/blue"]
    lead.post(f"requests/{made['id']}/submit/")
    assert admin.post(f"requests/{made['id']}/approve/").json()["status"] == "approved"
    pool = Workspace.objects.get(team="commpool")
    shown = admin.get(f"workspaces/{pool.pk}/").json()
    assert (shown["purpose"], shown["project"], shown["pool_teams"]) == ("pool", "", ["bgmr/blue"])
