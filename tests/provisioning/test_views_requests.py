"""The team lead's pages, through the web client: requesting, editing, submitting, and changing workspaces."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest, Membership, ResourceState, Workspace
from provisioning.spec import RequestSpec
from provisioning.workflow import services
from tests.factories import TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, tutorial_spec

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status
Kind = ChangeRequest.Kind

BLANK_CLUSTER = {
    "name": "",
    "vm_size": "",
    "priority": "low_priority",
    "max_nodes": "1",
    "min_nodes": "0",
    "idle_seconds": "120",
}
BLANK_MEMBER = {"principal": "", "persona": "data_scientist"}
TUTORIAL_CLUSTER_ROWS = [
    {
        "name": "ds3-v2-cluster",
        "vm_size": "STANDARD_DS3_V2",
        "priority": "low_priority",
        "max_nodes": "1",
        "min_nodes": "0",
        "idle_seconds": "120",
    },
    {
        "name": "ds13-v2-2ndclust",
        "vm_size": "STANDARD_D13_V2",
        "priority": "dedicated",
        "max_nodes": "2",
        "min_nodes": "0",
        "idle_seconds": "120",
    },
    {
        "name": "nv6-gpucluster",
        "vm_size": "STANDARD_NV6",
        "priority": "low_priority",
        "max_nodes": "1",
        "min_nodes": "0",
        "idle_seconds": "120",
    },
]
TUTORIAL_MEMBER_ROWS = [
    {"principal": "admin1@contoso.com", "persona": "team_lead"},
    {"principal": "user1@contoso.com", "persona": "team_lead"},
    {"principal": "user2@contoso.com", "persona": "data_scientist"},
    {"principal": "user3@contoso.com", "persona": "data_scientist"},
]
TUTORIAL_WORKSPACE = {
    "subscription_id": TUTORIAL_SUBSCRIPTION,
    "region": "eastus2",
    "department": "bgmr",
    "team": "bluegranit",
    "region_abbv": "e2",
    "environment": "dev",
    "custom_name": "",
    "security_group": "datasciencegroup",
    "data_lake": "on",
}


def rows(prefix: str, filled: list[dict[str, str]], blank: dict[str, str], blanks: int = 2) -> dict[str, Any]:
    """What the browser posts for a formset: the filled rows, then untouched blank rows."""
    all_rows = [*filled, *([blank] * blanks)]
    data: dict[str, Any] = {f"{prefix}-TOTAL_FORMS": str(len(all_rows)), f"{prefix}-INITIAL_FORMS": "0"}
    for i, row in enumerate(all_rows):
        data.update({f"{prefix}-{i}-{k}": v for k, v in row.items()})
    return data


def tutorial_post(
    action: str = "draft", clusters: list[dict[str, str]] | None = None, **workspace: str
) -> dict[str, Any]:
    """The tutorial's config.yml, typed into the new-workspace page."""
    data: dict[str, Any] = {**TUTORIAL_WORKSPACE, **workspace, "action": action}
    if not data["data_lake"]:
        del data["data_lake"]
    data.update(rows("clusters", TUTORIAL_CLUSTER_ROWS if clusters is None else clusters, BLANK_CLUSTER))
    data.update(rows("members", TUTORIAL_MEMBER_ROWS, BLANK_MEMBER))
    return data


def messages_of(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


def field_error(page: str, field_id: str) -> str:
    """The error text shown for a field, checking the input points at it with aria-describedby."""
    match = re.search(
        rf'<div class="invalid-feedback d-block" id="{field_id}_error">(.*?)</div>\s*</div>', page, re.S
    )
    assert match, f"no error shown for {field_id}"
    tag = re.search(rf'<(?:input|select)[^>]*id="{field_id}"[^>]*>', page)
    assert tag and f"{field_id}_error" in tag.group(0) and 'aria-invalid="true"' in tag.group(0)
    return re.sub(r"<[^>]+>", " ", match.group(1))


class _Inputs(HTMLParser):
    """Collects form controls, labels and headings of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: list[str] = []
        self.labelled: set[str] = set()
        self.headings: list[int] = []
        self._in_template = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "template":
            self._in_template += 1
        elif tag in ("input", "select", "textarea") and a.get("type") not in ("hidden", "submit"):
            if not self._in_template:
                self.controls.append(a.get("id") or "<no id>")
        elif tag == "label" and a.get("for"):
            self.labelled.add(str(a["for"]))
        elif re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self._in_template -= 1


def assert_accessible(page: str) -> None:
    """Every control has a label, and headings never skip a level on the way down."""
    parsed = _Inputs()
    parsed.feed(page)
    assert [c for c in parsed.controls if c not in parsed.labelled] == []
    assert parsed.headings[0] == 1
    assert all(b <= a + 1 for a, b in zip(parsed.headings, parsed.headings[1:], strict=False))


@pytest.fixture
def draft(policy, alice) -> ChangeRequest:
    """Alice's tutorial request, saved as a draft."""
    return ChangeRequestFactory(requester=alice)


@pytest.fixture
def workspace(policy, alice, bob) -> Workspace:
    """The tutorial's workspace, approved by bob, with its memberships provisioned (active)."""
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    Membership.objects.update(state=ResourceState.ACTIVE)
    return cr.workspace


# --- New workspace ------------------------------------------------------------------------------------


def test_the_new_workspace_page_has_every_section(client, policy, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:new_workspace"))

    assert response.status_code == 200
    assert response.context["nav"] == "new"
    page = response.content.decode()
    for label in (
        "Subscription",
        "Region",
        "Department",
        "Team",
        "Region abbreviation",
        "Environment",
        "Custom name",
        "Security group",
        "Create a data lake",
        "VM size",
        "Idle seconds",
        "Email or user principal name",
        "Save draft",
        "Submit for approval",
    ):
        assert label in page
    assert 'data-abbreviation="e2"' in page
    assert f'hx-get="{reverse("provisioning:preview_names")}"' in page
    assert 'maxlength="24"' in page  # team: longer than the convention allows, so its rule can explain
    assert "<script>" not in page  # the CSP forbids inline scripts
    assert_accessible(page)


def test_alice_saves_the_tutorial_as_a_draft(client, policy, alice):
    client.force_login(alice)

    response = client.post(reverse("provisioning:new_workspace"), tutorial_post())

    cr = ChangeRequest.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert (cr.kind, cr.status, cr.requester, cr.workspace_name) == (
        Kind.NEW_WORKSPACE,
        Status.DRAFT,
        alice,
        "bgmrbluegranite2devws",
    )
    assert RequestSpec.from_json(cr.spec) == tutorial_spec()  # blank rows ignored, nothing else lost
    assert AuditEvent.objects.filter(request_id=cr.pk, action="request.created").count() == 1
    assert any("Draft" in m and "saved" in m for m in messages_of(response))


def test_alice_submits_the_tutorial_in_one_go(client, policy, alice):
    client.force_login(alice)

    response = client.post(reverse("provisioning:new_workspace"), tutorial_post(action="submit"))

    cr = ChangeRequest.objects.get()
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert cr.status == Status.SUBMITTED
    assert any("submitted for approval" in m for m in messages_of(response))


def test_a_17_character_cluster_name_gets_azures_rule_and_the_draft_is_kept(client, policy, alice):
    client.force_login(alice)
    clusters = [{**TUTORIAL_CLUSTER_ROWS[0], "name": "a-cluster-name-17"}, TUTORIAL_CLUSTER_ROWS[1]]

    response = client.post(
        reverse("provisioning:new_workspace"), tutorial_post("submit", clusters), follow=True
    )

    cr = ChangeRequest.objects.get()
    assert cr.status == Status.DRAFT  # saved, not submitted
    assert response.redirect_chain[-1][0] == reverse("provisioning:request_edit", args=[cr.pk])
    page = response.content.decode()
    assert "too long for a compute cluster name: 17 characters, at most 16" in field_error(
        page, "id_clusters-0-name"
    )
    assert 'value="a-cluster-name-17"' in page
    assert 'value="ds13-v2-2ndclust"' in page
    assert 'value="user3@contoso.com"' in page
    assert any("cannot be submitted yet" in m for m in messages_of(response))
    assert_accessible(page)


def test_a_too_long_team_gets_the_naming_rule_and_nothing_is_lost(client, policy, alice):
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:new_workspace"), tutorial_post(team="bluegranitextra"), follow=True
    )

    cr = ChangeRequest.objects.get()
    assert cr.status == Status.DRAFT
    page = response.content.decode()
    message = field_error(page, "id_team")
    assert "team name too long for a storage account: use at most 10 characters or a custom name" in message
    assert 'value="bluegranitextra"' in page
    assert 'value="nv6-gpucluster"' in page
    assert "name-bad" in page  # the preview marks the names too


def test_an_abbreviation_of_another_region_is_refused_on_its_field(client, policy, alice):
    client.force_login(alice)

    response = client.post(reverse("provisioning:new_workspace"), tutorial_post("submit", region_abbv="we"))
    page = client.get(response.url).content.decode()

    assert ChangeRequest.objects.get().status == Status.DRAFT
    message = "East US 2 is abbreviated &#x27;e2&#x27; in resource names, not &#x27;we&#x27;"
    assert message in field_error(page, "id_region_abbv")
    preview = client.get(reverse("provisioning:preview_names"), {**TUTORIAL_WORKSPACE, "region_abbv": "we"})
    assert message in preview.content.decode()


def test_a_team_too_long_to_store_is_refused_with_everything_typed_kept(client, policy, alice):
    client.force_login(alice)
    team = "bluegranitedatascience24"

    response = client.post(reverse("provisioning:new_workspace"), tutorial_post("submit", team=team))

    assert response.status_code == 200
    assert not ChangeRequest.objects.exists()
    page = response.content.decode()
    assert "team name too long for a storage account" in field_error(page, "id_team")
    assert f'value="{team}"' in page
    for value in ("bgmr", "e2", "datasciencegroup", "ds3-v2-cluster", "admin1@contoso.com"):
        assert f'value="{value}"' in page
    assert "This request has problems to fix" in page


def test_a_missing_field_is_shown_and_nothing_typed_is_lost(client, policy, alice):
    client.force_login(alice)
    clusters = [{**TUTORIAL_CLUSTER_ROWS[0], "max_nodes": "two"}]

    response = client.post(
        reverse("provisioning:new_workspace"), tutorial_post("draft", clusters, department="")
    )

    assert response.status_code == 200
    assert not ChangeRequest.objects.exists()
    page = response.content.decode()
    assert "required" in field_error(page, "id_department")
    assert "whole number" in field_error(page, "id_clusters-0-max_nodes")
    assert 'value="two"' in page and 'value="bluegranit"' in page


def test_names_in_use_are_reported_when_submitting(client, policy, alice, charlie, bob):
    other = ChangeRequestFactory(requester=charlie, submitted=True)
    client.force_login(alice)

    response = client.post(reverse("provisioning:new_workspace"), tutorial_post("submit"), follow=True)

    mine = ChangeRequest.objects.get(requester=alice)
    assert mine.status == Status.DRAFT
    assert f"already requested by request #{other.pk}" in field_error(response.content.decode(), "id_team")


# --- Editing, submitting, cancelling -------------------------------------------------------------


def test_the_edit_page_opens_the_draft_as_typed(client, draft, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:request_edit", args=[draft.pk]))

    assert response.status_code == 200
    page = response.content.decode()
    for value in ("bgmr", "bluegranit", "e2", "datasciencegroup", "ds13-v2-2ndclust", "user2@contoso.com"):
        assert f'value="{value}"' in page
    assert "This request has problems to fix" not in page
    assert "bgmrbluegranite2devwork" in page  # the preview, rendered by the server


def test_alice_edits_her_draft(client, draft, alice):
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:request_edit", args=[draft.pk]), tutorial_post(team="falcon")
    )

    draft.refresh_from_db()
    assert response.url == reverse("provisioning:request_detail", args=[draft.pk])
    assert draft.workspace_name == "bgmrfalcone2devws"
    assert RequestSpec.from_json(draft.spec).workspace.team == "falcon"  # type: ignore[union-attr]
    assert AuditEvent.objects.filter(request_id=draft.pk, action="request.edited").count() == 1


def test_alice_submits_her_draft_from_its_page(client, draft, alice):
    client.force_login(alice)

    response = client.post(reverse("provisioning:request_submit", args=[draft.pk]))

    draft.refresh_from_db()
    assert response.url == reverse("provisioning:request_detail", args=[draft.pk])
    assert draft.status == Status.SUBMITTED


def test_submitting_a_draft_with_problems_sends_alice_back_to_fix_them(client, policy, alice):
    cr = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="x" * 12))
    client.force_login(alice)

    response = client.post(reverse("provisioning:request_submit", args=[cr.pk]), follow=True)

    cr.refresh_from_db()
    assert cr.status == Status.DRAFT
    assert response.redirect_chain[-1][0] == reverse("provisioning:request_edit", args=[cr.pk])
    assert "use at most 10 characters" in field_error(response.content.decode(), "id_team")


def test_alice_cancels_her_draft(client, draft, alice):
    client.force_login(alice)

    client.post(reverse("provisioning:request_cancel", args=[draft.pk]))

    draft.refresh_from_db()
    assert draft.status == Status.CANCELLED


def test_a_submitted_request_can_no_longer_be_edited(client, policy, alice):
    submitted = ChangeRequestFactory(requester=alice, submitted=True)
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:request_edit", args=[submitted.pk]), tutorial_post(team="falcon")
    )

    assert response.url == reverse("provisioning:request_detail", args=[submitted.pk])
    submitted.refresh_from_db()
    assert submitted.workspace_name == "bgmrbluegranite2devws"


@pytest.mark.parametrize("name", ["provisioning:request_submit", "provisioning:request_cancel"])
def test_status_changes_are_post_only(client, draft, alice, name):
    client.force_login(alice)

    assert client.get(reverse(name, args=[draft.pk])).status_code == 405
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


# --- Permissions ---------------------------------------------------------------------------------


def test_outsider_charlie_cannot_see_or_touch_alices_request(client, draft, charlie):
    client.force_login(charlie)

    assert client.get(reverse("provisioning:request_detail", args=[draft.pk])).status_code == 404
    assert client.get(reverse("provisioning:request_edit", args=[draft.pk])).status_code == 404
    assert (
        client.post(reverse("provisioning:request_edit", args=[draft.pk]), tutorial_post()).status_code == 404
    )
    assert client.post(reverse("provisioning:request_submit", args=[draft.pk])).status_code == 404
    assert client.post(reverse("provisioning:request_cancel", args=[draft.pk])).status_code == 404
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_data_scientist_dana_cannot_request(client, policy, dana):
    client.force_login(dana)

    assert client.get(reverse("provisioning:new_workspace")).status_code == 403
    assert client.post(reverse("provisioning:new_workspace"), tutorial_post()).status_code == 403
    assert client.get(reverse("provisioning:my_requests")).status_code == 403
    assert client.get(reverse("provisioning:preview_names"), TUTORIAL_WORKSPACE).status_code == 403
    assert not ChangeRequest.objects.exists()


def test_anonymous_visitors_are_sent_to_sign_in(client, draft):
    for url in (
        reverse("provisioning:new_workspace"),
        reverse("provisioning:request_detail", args=[draft.pk]),
        reverse("provisioning:workspace_list"),
        reverse("provisioning:preview_names"),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert reverse("accounts:login") in response.url


# --- Name preview ----------------------------------------------------------------------------------


def test_preview_shows_the_tutorial_names(client, policy, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:preview_names"), TUTORIAL_WORKSPACE)

    assert response.status_code == 200
    page = response.content.decode()
    for name in (
        "bgmr-bluegranit-eastus2-dev",
        "bgmrbluegranite2devws",
        "bgmrbluegranite2devwork",
        "bgmrbluegranite2devdata",
        "bgmrbluegranite2devbig",
        "bgmrbluegranite2devkv",
        "bgmrbluegranite2devcr",
        "bgmrbluegranite2devai",
    ):
        assert f'<code class="">{name}</code>' in page
    assert "follow Azure's naming rules" in page
    assert "<html" not in page  # a fragment for htmx to swap in


def test_preview_explains_a_naming_problem(client, policy, alice):
    client.force_login(alice)

    response = client.get(
        reverse("provisioning:preview_names"), {**TUTORIAL_WORKSPACE, "team": "bluegranitextra"}
    )

    page = response.content.decode()
    assert "team name too long for a storage account: use at most 10 characters or a custom name" in page
    assert "name-bad" in page


def test_preview_says_when_names_are_taken_in_the_portal(client, workspace, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:preview_names"), TUTORIAL_WORKSPACE)

    assert (
        "already used by workspace &#x27;bgmrbluegranite2devws&#x27; in the portal"
        in response.content.decode()
    )


def test_preview_asks_for_more_until_the_names_mean_something(client, policy, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:preview_names"), {"department": "bgmr"})

    assert "to see the name of every resource" in response.content.decode()


def test_preview_is_get_only_and_writes_nothing(client, policy, alice):
    client.force_login(alice)

    assert client.post(reverse("provisioning:preview_names"), TUTORIAL_WORKSPACE).status_code == 405
    assert not ChangeRequest.objects.exists()
    assert not AuditEvent.objects.exists()


# --- Reading requests ------------------------------------------------------------------------------


def test_my_requests_lists_alices_requests(client, draft, alice, charlie):
    ChangeRequestFactory(requester=charlie, spec=tutorial_spec(team="other"))
    client.force_login(alice)

    response = client.get(reverse("provisioning:my_requests"))

    assert response.context["nav"] == "requests"
    assert list(response.context["change_requests"]) == [draft]
    page = response.content.decode()
    assert 'class="badge status-badge status-draft"' in page
    assert "bgmrbluegranite2devws" in page and "bgmrothere2devws" not in page


def test_my_requests_empty_state(client, policy, alice):
    client.force_login(alice)

    page = client.get(reverse("provisioning:my_requests")).content.decode()

    assert "You have not requested anything yet" in page
    assert reverse("provisioning:new_workspace") in page


def test_the_request_page_shows_the_full_plan(client, draft, alice):
    client.force_login(alice)

    response = client.get(reverse("provisioning:request_detail", args=[draft.pk]))

    assert response.status_code == 200
    assert not response.context["can_decide"]
    page = response.content.decode()
    for text in (
        "bgmr-bluegranit-eastus2-dev",
        "bgmrbluegranite2devbig",
        "hierarchical_namespace",
        "admin_user_enabled",
        "ds13-v2-2ndclust",
        "Dedicated",
        "Key Vault Secrets Officer",
        "AcrPull",
        "datasciencegroup",
        "Storage Blob Data Contributor",
        "Edit draft",
        "Submit for approval",
    ):
        assert text in page
    assert len(response.context["plan"]["role_assignments"]) == 40  # 5 principals x 8 scopes
    assert "Your decision" not in page
    assert_accessible(page)


def test_bob_sees_the_decision_form_on_a_submitted_request(client, policy, alice, bob):
    submitted = ChangeRequestFactory(requester=alice, submitted=True)
    client.force_login(bob)

    response = client.get(reverse("provisioning:request_detail", args=[submitted.pk]))

    assert response.context["can_decide"]
    assert reverse("provisioning:request_approve", args=[submitted.pk]) in response.content.decode()
    assert_accessible(response.content.decode())
    assert "Edit draft" not in response.content.decode()


def test_an_approved_request_says_provisioning_is_pending(client, workspace, alice):
    cr = ChangeRequest.objects.get()
    client.force_login(alice)

    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()

    assert "Approved — provisioning is pending (queued for the provisioning workers)" in page
    assert "Cancel request" not in page


def test_a_rejected_request_shows_the_reason(client, policy, alice, bob):
    rejected = ChangeRequestFactory(
        requester=alice, approver=bob, reason="Use westeurope for this team.", rejected=True
    )
    client.force_login(alice)

    page = client.get(reverse("provisioning:request_detail", args=[rejected.pk])).content.decode()

    assert "Rejected by bob" in page
    assert "Use westeurope for this team." in page


def test_alice_copies_a_rejected_request_into_a_new_draft_and_fixes_one_field(client, policy, alice, bob):
    rejected = ChangeRequestFactory(
        requester=alice, approver=bob, reason="The storage name is taken in Azure.", rejected=True
    )
    client.force_login(alice)
    assert (
        "Copy into a new draft"
        in client.get(reverse("provisioning:request_detail", args=[rejected.pk])).content.decode()
    )

    response = client.post(reverse("provisioning:request_copy", args=[rejected.pk]), follow=True)

    copy = ChangeRequest.objects.exclude(pk=rejected.pk).get()
    assert response.redirect_chain[-1][0] == reverse("provisioning:request_edit", args=[copy.pk])
    assert (copy.status, copy.kind, copy.requester, copy.spec) == (
        Status.DRAFT,
        rejected.kind,
        alice,
        rejected.spec,
    )
    assert any(f"Draft #{copy.pk} holds request #{rejected.pk}'s content" in m for m in messages_of(response))
    page = response.content.decode()
    for value in ("bgmr", "bluegranit", "ds3-v2-cluster", "admin1@contoso.com"):
        assert f'value="{value}"' in page
    created = AuditEvent.objects.get(request_id=copy.pk, action="request.created")
    assert created.message == f"copied from request #{rejected.pk}"
    assert copy.copied_from == rejected
    detail = client.get(reverse("provisioning:request_detail", args=[copy.pk])).content.decode()
    assert (
        f'copied from <a href="{reverse("provisioning:request_detail", args=[rejected.pk])}">request #{rejected.pk}</a>'
        in detail
    )
    rejected.refresh_from_db()
    assert rejected.status == Status.REJECTED  # the decision stays as it was

    post = tutorial_post("submit", custom_name="bgmrbluegranite2")
    client.post(reverse("provisioning:request_edit", args=[copy.pk]), post)
    copy.refresh_from_db()
    assert copy.status == Status.SUBMITTED
    assert RequestSpec.from_json(copy.spec).workspace.custom_name == "bgmrbluegranite2"


def test_only_a_rejected_or_cancelled_request_of_ones_own_is_copied(client, draft, alice, charlie):
    client.force_login(alice)
    page = client.get(reverse("provisioning:request_detail", args=[draft.pk])).content.decode()
    assert "Copy into a new draft" not in page

    response = client.post(reverse("provisioning:request_copy", args=[draft.pk]), follow=True)

    assert any("only rejected or cancelled requests are copied" in m for m in messages_of(response))
    assert client.get(reverse("provisioning:request_copy", args=[draft.pk])).status_code == 405
    services.request_cancel(request_id=draft.pk, actor=alice)
    client.force_login(charlie)
    assert client.post(reverse("provisioning:request_copy", args=[draft.pk])).status_code == 404
    assert ChangeRequest.objects.count() == 1


# --- Workspaces and changes to them ----------------------------------------------------------------


def test_workspaces_list_and_detail(client, workspace, alice):
    client.force_login(alice)

    listing = client.get(reverse("provisioning:workspace_list"))
    detail = client.get(reverse("provisioning:workspace_detail", args=[workspace.pk]))

    assert [row["workspace"] for row in listing.context["rows"]] == [workspace]
    assert listing.context["rows"][0]["workspace"].cluster_count == 3
    assert detail.status_code == 200
    assert detail.context["can_change"]
    page = detail.content.decode()
    for text in (
        "nv6-gpucluster",
        "user2@contoso.com",
        "datasciencegroup",
        "Request clusters",
        "Add members",
        "Submit revocation for approval",
    ):
        assert text in page
    assert_accessible(page)


def test_outsiders_cannot_see_or_change_a_workspace(client, workspace, charlie, dana):
    client.force_login(charlie)
    assert client.get(reverse("provisioning:workspace_detail", args=[workspace.pk])).status_code == 404
    assert client.get(reverse("provisioning:add_clusters", args=[workspace.pk])).status_code == 404
    assert client.post(reverse("provisioning:add_members", args=[workspace.pk]), {}).status_code == 404
    assert client.post(reverse("provisioning:revoke_members", args=[workspace.pk]), {}).status_code == 404
    assert client.get(reverse("provisioning:workspace_list")).context["rows"] == []

    client.force_login(dana)
    assert client.get(reverse("provisioning:add_clusters", args=[workspace.pk])).status_code == 403
    assert ChangeRequest.objects.count() == 1


def test_alice_requests_a_cluster_as_a_draft(client, workspace, alice):
    client.force_login(alice)
    new = {**BLANK_CLUSTER, "name": "gpu-big", "vm_size": "STANDARD_NV6", "max_nodes": "4"}

    page = client.get(reverse("provisioning:add_clusters", args=[workspace.pk]))
    response = client.post(
        reverse("provisioning:add_clusters", args=[workspace.pk]),
        {"action": "draft", **rows("clusters", [new], BLANK_CLUSTER)},
    )

    assert page.status_code == 200 and page.context["nav"] == "workspaces"
    assert_accessible(page.content.decode())
    cr = ChangeRequest.objects.get(kind=Kind.ADD_CLUSTERS)
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert (cr.status, cr.workspace, cr.workspace_name) == (Status.DRAFT, workspace, "bgmrbluegranite2devws")
    assert [c.name for c in RequestSpec.from_json(cr.spec).clusters] == ["gpu-big"]


def test_a_cancelled_cluster_request_is_copied_for_the_same_workspace(client, workspace, alice):
    client.force_login(alice)
    new = {**BLANK_CLUSTER, "name": "gpu-big", "vm_size": "STANDARD_NV6", "max_nodes": "4"}
    client.post(
        reverse("provisioning:add_clusters", args=[workspace.pk]),
        {"action": "draft", **rows("clusters", [new], BLANK_CLUSTER)},
    )
    first = ChangeRequest.objects.get(kind=Kind.ADD_CLUSTERS)
    services.request_cancel(request_id=first.pk, actor=alice)

    response = client.post(reverse("provisioning:request_copy", args=[first.pk]), follow=True)

    copy = ChangeRequest.objects.filter(kind=Kind.ADD_CLUSTERS).exclude(pk=first.pk).get()
    assert (copy.status, copy.workspace, copy.spec) == (Status.DRAFT, workspace, first.spec)
    assert 'value="gpu-big"' in response.content.decode()


def test_a_cluster_name_already_in_the_workspace_is_reported(client, workspace, alice):
    client.force_login(alice)
    again = {**TUTORIAL_CLUSTER_ROWS[0]}

    response = client.post(
        reverse("provisioning:add_clusters", args=[workspace.pk]),
        {"action": "submit", **rows("clusters", [again], BLANK_CLUSTER)},
        follow=True,
    )

    cr = ChangeRequest.objects.get(kind=Kind.ADD_CLUSTERS)
    assert cr.status == Status.DRAFT
    assert "already has a cluster named" in field_error(response.content.decode(), "id_clusters-0-name")


def test_alice_adds_a_member_and_submits(client, workspace, alice):
    client.force_login(alice)
    member = {"principal": "user4@contoso.com", "persona": "data_scientist"}

    response = client.post(
        reverse("provisioning:add_members", args=[workspace.pk]),
        {"action": "submit", **rows("members", [member], BLANK_MEMBER)},
    )

    cr = ChangeRequest.objects.get(kind=Kind.GRANT_ACCESS)
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert cr.status == Status.SUBMITTED
    assert [m.principal for m in RequestSpec.from_json(cr.spec).members] == ["user4@contoso.com"]


def test_alice_revokes_a_member_and_submits(client, workspace, alice):
    user3 = Membership.objects.get(principal_name="user3@contoso.com")
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:revoke_members", args=[workspace.pk]),
        {"action": "submit", "memberships": [str(user3.pk)]},
    )

    cr = ChangeRequest.objects.get(kind=Kind.REVOKE_ACCESS)
    assert response.url == reverse("provisioning:request_detail", args=[cr.pk])
    assert cr.status == Status.SUBMITTED
    assert RequestSpec.from_json(cr.spec).revoke == (user3.pk,)
    page = client.get(response.url).content.decode()
    assert "Role assignments removed (8)" in page  # every scope of the workspace, data lake included
    assert_accessible(page)
    assert_accessible(
        client.get(reverse("provisioning:revoke_members", args=[workspace.pk])).content.decode()
    )


def test_revoking_nobody_is_explained(client, workspace, alice):
    client.force_login(alice)

    response = client.post(reverse("provisioning:revoke_members", args=[workspace.pk]), {"action": "submit"})

    assert response.status_code == 200
    assert "Choose at least one member to revoke" in response.content.decode()
    assert not ChangeRequest.objects.filter(kind=Kind.REVOKE_ACCESS).exists()


def test_only_active_members_can_be_revoked(client, workspace, alice):
    pending = Membership.objects.get(principal_name="user3@contoso.com")
    Membership.objects.filter(pk=pending.pk).update(state=ResourceState.PENDING)
    client.force_login(alice)

    response = client.post(
        reverse("provisioning:revoke_members", args=[workspace.pk]),
        {"action": "submit", "memberships": [str(pending.pk)]},
    )

    assert response.status_code == 200
    assert not ChangeRequest.objects.filter(kind=Kind.REVOKE_ACCESS).exists()


def test_submitting_twice_explains_instead_of_failing(client, policy, alice):
    submitted = ChangeRequestFactory(requester=alice, submitted=True)
    client.force_login(alice)

    response = client.post(reverse("provisioning:request_submit", args=[submitted.pk]))

    assert response.url == reverse("provisioning:request_detail", args=[submitted.pk])
    assert any(m.startswith(f"Could not submit request #{submitted.pk}") for m in messages_of(response))
    assert AuditEvent.objects.filter(request_id=submitted.pk, action="request.submitted").count() == 1
