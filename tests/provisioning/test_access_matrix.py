"""Every URL and action of the portal for three named users (owner, approver, outsider), plus a data
scientist and an anonymous visitor; every POST needs a CSRF token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from provisioning import exports
from provisioning.models import QuotaIncreaseRequest
from provisioning.workflow import reviews
from tests.factories import (
    TUTORIAL_SUBSCRIPTION,
    ChangeRequestFactory,
    MembershipFactory,
    MemberSpec,
    WorkspaceFactory,
    tutorial_spec,
)

pytestmark = pytest.mark.django_db

OK = "ok"  # 200, or a redirect back into the portal (an action done)
DENIED = "denied"  # 403 or 404: never the page, never a change
LOGIN = "login"  # anonymous: redirected to sign in

USERS = ("alice", "bob", "charlie", "dana", "anonymous")


@pytest.fixture
def world(policy, alice, bob, charlie, dana, rq_queue, django_capture_on_commit_callbacks) -> dict[str, Any]:
    """alice owns an approved workspace (dana is a member of it), a submitted, a rejected, a failed request
    and a draft."""
    spec = tutorial_spec(security_group="")
    spec = type(spec)(
        workspace=spec.workspace,
        clusters=spec.clusters,
        members=(MemberSpec("dana@contoso.com", "data_scientist"),),
    )
    approved = ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True)
    submitted = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="second"), submitted=True)
    draft = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="third"))
    rejected = ChangeRequestFactory(
        requester=alice,
        approver=bob,
        spec=tutorial_spec(team="fourth"),
        reason="the team is not funded yet",
        rejected=True,
    )
    failed = ChangeRequestFactory(
        requester=alice, approver=bob, spec=tutorial_spec(team="fifth"), failed=True, failed_step="role_grant"
    )
    reviewed = WorkspaceFactory(owner=alice, team="reviewed")  # active: an access review of it is open
    MembershipFactory(workspace=reviewed, state="active")
    review = reviews.review_start(workspace_id=reviewed.pk, actor=bob)
    export = exports.audit_export_request(requester=bob, filters={}, fmt="csv")
    exports.audit_export_run(export_id=export.pk)
    quota = QuotaIncreaseRequest.objects.create(
        subscription_id=TUTORIAL_SUBSCRIPTION,
        region="eastus2",
        family="standardDv2Family",
        current_limit=24,
        requested_limit=32,
        justification="training",
        requester=alice,
    )
    return {
        "export": export.pk,
        "reviewed": reviewed.pk,
        "review": review.pk,
        "ws": approved.workspace.pk,
        "submitted": submitted.pk,
        "draft": draft.pk,
        "rejected": rejected.pk,
        "failed": failed.pk,
        "quota": quota.pk,
    }


def _client(name: str, users: dict[str, Any], *, csrf: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf)
    if name != "anonymous":
        client.force_login(users[name])
    return client


def _outcome(response: Any) -> str:
    if response.status_code in (403, 404):
        return DENIED
    if response.status_code == 302 and "/accounts/login/" in response["Location"]:
        return LOGIN
    if response.status_code in (200, 302):
        return OK
    return str(response.status_code)


# (url name, key of the object in `world` or None, expected outcome per user in USERS order)
PAGES = [
    ("provisioning:my_requests", None, (OK, OK, OK, DENIED, LOGIN)),  # admins: every request
    ("provisioning:new_workspace", None, (OK, DENIED, OK, DENIED, LOGIN)),
    ("provisioning:request_detail", "submitted", (OK, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:request_detail", "draft", (OK, DENIED, DENIED, DENIED, LOGIN)),
    ("provisioning:request_edit", "draft", (OK, DENIED, DENIED, DENIED, LOGIN)),
    ("provisioning:request_progress", "submitted", (OK, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:request_amend", "failed", (OK, OK, DENIED, DENIED, LOGIN)),  # its requester, or an admin
    ("provisioning:preview_names", None, (OK, DENIED, OK, DENIED, LOGIN)),
    ("provisioning:workspace_list", None, (OK, OK, OK, OK, LOGIN)),  # dana sees the one she is in
    ("provisioning:workspace_detail", "ws", (OK, OK, DENIED, OK, LOGIN)),
    ("provisioning:workspace_spend", "ws", (OK, OK, DENIED, OK, LOGIN)),  # as its workspace
    ("provisioning:add_clusters", "ws", (OK, DENIED, DENIED, DENIED, LOGIN)),  # admins decide, they don't ask
    ("provisioning:add_members", "ws", (OK, DENIED, DENIED, DENIED, LOGIN)),
    ("provisioning:revoke_members", "ws", (OK, DENIED, DENIED, DENIED, LOGIN)),
    ("provisioning:workspace_change", "ws", (OK, DENIED, DENIED, DENIED, LOGIN)),
    ("provisioning:workspace_decommission", "ws", (OK, OK, DENIED, DENIED, LOGIN)),  # its lead, or an admin
    ("provisioning:approval_queue", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:audit", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:audit_exports", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:audit_export_download", "export", (DENIED, OK, DENIED, DENIED, LOGIN)),  # bob's own
    ("provisioning:capacity", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:capacity_spend", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    # Quota requests: team leads ask and see their own, admins see all and decide.
    ("provisioning:quota_requests", None, (OK, OK, OK, DENIED, LOGIN)),
    ("provisioning:quota_request_new", None, (OK, OK, OK, DENIED, LOGIN)),
    ("provisioning:drift", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:workspace_discover", None, (DENIED, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:workspace_take_over", "ws", (DENIED, OK, DENIED, DENIED, LOGIN)),  # says "already managed"
    ("provisioning:my_access", None, (OK, OK, OK, OK, LOGIN)),
    ("provisioning:review_list", None, (OK, OK, OK, DENIED, LOGIN)),  # charlie leads no reviewed workspace
    ("provisioning:review_detail", "review", (OK, OK, DENIED, DENIED, LOGIN)),  # its lead, or an admin
    ("provisioning:review_csv", "review", (OK, OK, DENIED, DENIED, LOGIN)),
    ("provisioning:config_json", "ws", (OK, OK, DENIED, OK, LOGIN)),
    ("provisioning:notification_settings", None, (OK, OK, OK, OK, LOGIN)),  # everyone's own preferences
]


MEMBER_FORM = {
    "members-TOTAL_FORMS": "1",
    "members-INITIAL_FORMS": "0",
    "members-MIN_NUM_FORMS": "0",
    "members-MAX_NUM_FORMS": "1000",
    "members-0-principal": "newcomer@contoso.com",
    "members-0-persona": "data_scientist",
    "action": "save",
}

BUDGET_FORM = {
    "team": "bgmr/bluegranit",
    "region": "eastus2",
    "family": "standardDSv2Family",
    "dedicated_cores": "8",
    "low_priority_cores": "8",
}

# (url name, key in `world`, POST data, expected outcome per user in USERS order). An anonymous POST
# fails the CSRF check (no session, no token) before it could be sent to sign in.
ACTIONS = [
    ("provisioning:request_submit", "draft", {}, (OK, DENIED, DENIED, DENIED, DENIED)),
    ("provisioning:request_cancel", "submitted", {}, (OK, DENIED, DENIED, DENIED, DENIED)),
    ("provisioning:request_copy", "rejected", {}, (OK, DENIED, DENIED, DENIED, DENIED)),
    ("provisioning:request_approve", "submitted", {}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:request_reject", "submitted", {"reason": "too big"}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:request_retry", "submitted", {}, (DENIED, OK, DENIED, DENIED, DENIED)),
    (
        "provisioning:request_amend",
        "failed",
        {"drop_member_0": "on", "reason": "left"},
        (OK, OK, DENIED, DENIED, DENIED),
    ),
    ("provisioning:request_keep", "failed", {"reason": "keep"}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:request_rollback", "failed", {"reason": "undo"}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:add_members", "ws", MEMBER_FORM, (OK, DENIED, DENIED, DENIED, DENIED)),
    ("provisioning:revoke_members", "ws", {"action": "save"}, (OK, DENIED, DENIED, DENIED, DENIED)),
    ("provisioning:workspace_change", "ws", {"action": "draft"}, (OK, DENIED, DENIED, DENIED, DENIED)),
    # A renewal: the workspace's lead and admins (no such member here: refused with a message, nothing changed).
    (
        "provisioning:membership_renew",
        "ws",
        {"membership": "999999", "days": "10"},
        (OK, OK, DENIED, DENIED, DENIED),
    ),
    # Access reviews: an admin starts one (this workspace has one open: refused with a message); its lead or an
    # admin decides.
    ("provisioning:review_start", "reviewed", {}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:review_detail", "review", {"action": "decide"}, (OK, OK, DENIED, DENIED, DENIED)),
    ("provisioning:capacity_refresh", None, {}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:budget_set", None, BUDGET_FORM, (DENIED, OK, DENIED, DENIED, DENIED)),
    # Asking: an incomplete form comes back to its author (nothing saved); approving and rejecting: admins, not
    # the requester (alice asked), and not seen by the other team lead.
    ("provisioning:quota_request_new", None, {"justification": "x"}, (OK, OK, OK, DENIED, DENIED)),
    ("provisioning:quota_request_approve", "quota", {}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:quota_request_reject", "quota", {"reason": "no"}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:audit_export_create", None, {"format": "csv"}, (DENIED, OK, DENIED, DENIED, DENIED)),
    # A reconcile: the workspace's lead and admins; dana is only a member.
    ("provisioning:workspace_reconcile", "ws", {}, (OK, OK, DENIED, DENIED, DENIED)),
    (
        "provisioning:workspace_decommission",
        "ws",
        {"reason": "done", "action": "draft"},
        (OK, OK, DENIED, DENIED, DENIED),
    ),
    ("provisioning:key_vault_purge", "ws", {}, (DENIED, OK, DENIED, DENIED, DENIED)),  # admins only
    (
        "provisioning:drift_accept",
        None,
        {"item": "9999", "reason": "known"},
        (DENIED, OK, DENIED, DENIED, DENIED),
    ),
    ("provisioning:drift_remediate", None, {"item": "9999"}, (DENIED, OK, DENIED, DENIED, DENIED)),
    ("provisioning:workspace_discover_refresh", None, {}, (DENIED, OK, DENIED, DENIED, DENIED)),
    (
        "provisioning:workspace_adopt",
        None,
        {
            "azure_id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearningServices/workspaces/z"
        },
        (DENIED, OK, DENIED, DENIED, DENIED),
    ),
    ("provisioning:workspace_take_over", "ws", {}, (DENIED, OK, DENIED, DENIED, DENIED)),  # refused: managed
    ("provisioning:notification_settings", None, {"kind": "request_approved"}, (OK, OK, OK, OK, DENIED)),
]


def _users(alice: Any, bob: Any, charlie: Any, dana: Any) -> dict[str, Any]:
    return {"alice": alice, "bob": bob, "charlie": charlie, "dana": dana}


@pytest.mark.parametrize(("name", "key", "expected"), PAGES, ids=[f"{p[0]}-{p[1]}" for p in PAGES])
def test_pages(name, key, expected, world, alice, bob, charlie, dana) -> None:
    users = _users(alice, bob, charlie, dana)
    url = reverse(name, args=[world[key]] if key else [])
    got = tuple(_outcome(_client(u, users).get(url)) for u in USERS)
    assert dict(zip(USERS, got, strict=True)) == dict(zip(USERS, expected, strict=True))


def _state() -> tuple[Any, ...]:
    from provisioning.models import AuditEvent, ChangeRequest, Membership

    return (
        tuple(ChangeRequest.objects.order_by("pk").values_list("pk", "status")),
        AuditEvent.objects.count(),
        Membership.objects.count(),
    )


def _csrf_token(client: Client) -> str:
    client.get(reverse("provisioning:my_access"))
    return client.cookies["csrftoken"].value if "csrftoken" in client.cookies else ""


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize(
    ("name", "key", "data", "expected"), ACTIONS, ids=[f"{a[0]}-{a[1]}" for a in ACTIONS]
)
def test_actions(name, key, data, expected, user, world, alice, bob, charlie, dana) -> None:
    client = _client(user, _users(alice, bob, charlie, dana), csrf=True)
    url = reverse(name, args=[world[key]] if key else [])
    before = _state()
    token = _csrf_token(client) if user != "anonymous" else ""

    assert client.post(url, data).status_code in (403, 302)  # no CSRF token: refused (or sent to sign in)
    assert _state() == before

    outcome = _outcome(client.post(url, {**data, "csrfmiddlewaretoken": token}))
    assert outcome == expected[USERS.index(user)]
    if outcome != OK:
        assert _state() == before, "a refused action must change nothing"


def test_every_url_is_in_the_matrix() -> None:
    from provisioning import urls

    covered = {p[0] for p in PAGES} | {a[0] for a in ACTIONS}
    assert {f"provisioning:{u.name}" for u in urls.urlpatterns} == covered
