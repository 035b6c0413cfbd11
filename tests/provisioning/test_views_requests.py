"""The team lead's pages, through the web client: requesting, editing, submitting, and previewing names."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from provisioning.models import AuditEvent, ChangeRequest
from provisioning.spec import RequestSpec
from provisioning.workflow.forms.widgets import MAX_ROWS
from tests.factories import ChangeRequestFactory, tutorial_spec
from tests.provisioning.pages import (
    TUTORIAL_CLUSTER_ROWS,
    TUTORIAL_MEMBER_ROWS,
    TUTORIAL_WORKSPACE,
    Kind,
    Status,
    assert_accessible,
    field_error,
    messages_of,
    tutorial_post,
)

pytestmark = pytest.mark.django_db


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


def _control(page: str, field_id: str) -> str:
    """The tag of one form control outside the row templates the script copies."""
    outside_templates = re.sub(r"<template.*?</template>", "", page, flags=re.S)
    match = re.search(rf'<(?:input|select)[^>]*id="{field_id}"[^>]*>', outside_templates)
    assert match, f"no control {field_id}"
    return match.group(0)


def _rows_shown(page: str, prefix: str) -> int:
    outside_templates = re.sub(r"<template.*?</template>", "", page, flags=re.S)
    return len(
        re.findall(
            rf'id="id_{prefix}-\d+-{"name" if prefix == "clusters" else "principal"}"', outside_templates
        )
    )


def test_the_new_workspace_page_starts_with_one_cluster_and_one_member(client, policy, alice):
    client.force_login(alice)

    page = client.get(reverse("provisioning:new_workspace")).content.decode()

    assert _rows_shown(page, "clusters") == 1 and _rows_shown(page, "members") == 1
    assert 'name="clusters-TOTAL_FORMS" value="1"' in page
    assert 'name="members-TOTAL_FORMS" value="1"' in page
    # The defaults are in the inputs, not only in the help text.
    assert 'value="0"' in _control(page, "id_clusters-0-min_nodes")
    assert 'value="120"' in _control(page, "id_clusters-0-idle_seconds")
    assert re.search(r'<option value="low_priority"[^>]*selected', page)
    # More rows come from the row templates, which the buttons copy.
    assert '<template id="clusters-template">' in page and '<template id="members-template">' in page
    assert "Add a cluster" in page and "Add a member" in page
    assert "Remove cluster" in page and "Remove member" in page
    assert "docs/config-yml.md" in page and "manage.py import_config" in page


def test_every_posted_row_comes_back_with_its_error(client, policy, alice):
    client.force_login(alice)
    added = {**TUTORIAL_CLUSTER_ROWS[0], "name": "extra-cluster", "max_nodes": "many"}
    data = tutorial_post("submit", [*TUTORIAL_CLUSTER_ROWS, added])

    response = client.post(reverse("provisioning:new_workspace"), data)

    assert response.status_code == 200
    assert not ChangeRequest.objects.exists()
    page = response.content.decode()
    # Every row the browser posted (the four filled, two left blank) is shown again, as typed.
    assert 'name="clusters-TOTAL_FORMS" value="6"' in page
    assert _rows_shown(page, "clusters") == 6
    assert _rows_shown(page, "members") == len(TUTORIAL_MEMBER_ROWS) + 2
    for row, cluster in enumerate([*TUTORIAL_CLUSTER_ROWS, added]):
        assert f'value="{cluster["name"]}"' in _control(page, f"id_clusters-{row}-name")
    assert "whole number" in field_error(page, "id_clusters-3-max_nodes")
    assert 'value="many"' in _control(page, "id_clusters-3-max_nodes")
    assert 'value="user3@contoso.com"' in _control(page, "id_members-3-principal")


def test_more_rows_than_the_limit_are_refused(client, policy, alice):
    client.force_login(alice)
    many = [{**TUTORIAL_CLUSTER_ROWS[0], "name": f"cluster-{i}"} for i in range(MAX_ROWS + 1)]

    response = client.post(reverse("provisioning:new_workspace"), tutorial_post("draft", many))

    assert response.status_code == 200
    assert not ChangeRequest.objects.exists()
    assert f"at most {MAX_ROWS}" in response.content.decode()


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
    spec = RequestSpec.from_json(draft.spec)
    assert _rows_shown(page, "clusters") == len(spec.clusters)  # no blank rows: the buttons add them
    assert _rows_shown(page, "members") == len(spec.members)


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
