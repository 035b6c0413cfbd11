"""The request forms: what they accept, how blank rows are ignored, and where problems are shown."""

from __future__ import annotations

import dataclasses

import pytest

from provisioning.models import AllowedRegion, ChangeRequest, EnvironmentPolicy, Membership, ResourceState
from provisioning.spec import ClusterSpec, RequestSpec
from provisioning.workflow.forms import ClusterFormSet, RequestForms, RevokeForm, WorkspaceForm, request_data
from provisioning.workflow.validation import Problem
from tests.factories import ChangeRequestFactory, tutorial_spec, tutorial_workspace

pytestmark = pytest.mark.django_db

Kind = ChangeRequest.Kind


def workspace_data(**overrides: object) -> dict[str, object]:
    data = {k: v for k, v in dataclasses.asdict(tutorial_workspace()).items() if k != "data_lake"}
    data["data_lake"] = "on"
    data.update(overrides)
    return data


def test_the_tutorial_workspace_makes_its_spec(policy):
    form = WorkspaceForm(workspace_data())

    assert form.is_valid(), form.errors
    assert form.to_spec() == tutorial_workspace()


def test_inactive_regions_are_not_offered(policy):
    AllowedRegion.objects.filter(name="westeurope").update(is_active=False)

    form = WorkspaceForm(workspace_data(region="westeurope"))

    assert not form.is_valid()
    assert "region" in form.errors
    assert "westeurope" not in str(form["region"])


def test_a_long_team_is_left_to_the_naming_rules(policy):
    # 15 characters break the convention, but the draft can be saved; validation explains the rule.
    form = WorkspaceForm(workspace_data(team="bluegranitextra"))

    assert form.is_valid(), form.errors


def test_names_too_long_to_store_get_the_naming_message(policy):
    form = WorkspaceForm(workspace_data(team="t" * 24))

    assert not form.is_valid()
    assert form.errors["team"] == [
        "team name too long for a storage account: use at most 10 characters or a custom name"
    ]


def test_the_browser_limit_still_applies(policy):
    form = WorkspaceForm(workspace_data(team="t" * 25))

    assert not form.is_valid()
    assert "at most 24 characters" in form.errors["team"][0]


def test_region_options_carry_their_abbreviation(policy):
    assert 'data-abbreviation="we"' in str(WorkspaceForm()["region"])


def _cluster_rows(*rows: dict[str, object]) -> dict[str, object]:
    data: dict[str, object] = {"clusters-TOTAL_FORMS": len(rows), "clusters-INITIAL_FORMS": 0}
    for i, row in enumerate(rows):
        data.update({f"clusters-{i}-{k}": v for k, v in row.items()})
    return data


BLANK = {
    "name": "",
    "vm_size": "",
    "priority": "low_priority",
    "max_nodes": 1,
    "min_nodes": 0,
    "idle_seconds": 120,
}
GPU = {**BLANK, "name": "nv6-gpucluster", "vm_size": "STANDARD_NV6"}


def test_blank_cluster_rows_are_ignored(policy):
    forms = RequestForms(kind=Kind.ADD_CLUSTERS, data=_cluster_rows(BLANK, GPU, BLANK))

    assert forms.is_valid()
    assert forms.spec().clusters == (ClusterSpec(name="nv6-gpucluster", vm_size="STANDARD_NV6"),)


def test_a_half_filled_row_is_not_blank(policy):
    formset = ClusterFormSet(_cluster_rows({**BLANK, "name": "cpu"}), prefix="clusters")

    assert not formset.is_valid()
    assert "vm_size" in formset.forms[0].errors


def test_a_17_character_cluster_name_is_accepted_for_the_rules_to_explain(policy):
    forms = RequestForms(kind=Kind.ADD_CLUSTERS, data=_cluster_rows({**GPU, "name": "a" * 17}))

    assert forms.is_valid()


def test_problems_land_next_to_their_fields(policy):
    spec = tutorial_spec()
    data = request_data(spec, kind=Kind.NEW_WORKSPACE)
    forms = RequestForms(kind=Kind.NEW_WORKSPACE, data=data)
    assert forms.is_valid()

    forms.add_problems(
        [
            Problem("workspace.team", "team problem"),
            Problem("clusters.1.name", "second cluster problem"),
            Problem("members.0.principal", "first member problem"),
            Problem("clusters", "too many clusters"),
            Problem("workspace", "workspace problem"),
            Problem("reason", "something else"),
        ]
    )

    assert forms.workspace_form is not None and forms.clusters is not None and forms.members is not None
    assert forms.workspace_form.errors["team"] == ["team problem"]
    assert forms.workspace_form.non_field_errors() == ["workspace problem"]
    assert forms.clusters.forms[1].errors["name"] == ["second cluster problem"]
    assert forms.clusters.non_form_errors() == ["too many clusters"]
    assert forms.members.forms[0].errors["principal"] == ["first member problem"]
    assert forms.general_errors == ["something else"]
    assert forms.has_errors


def test_row_problems_count_filled_rows_only(policy):
    forms = RequestForms(kind=Kind.ADD_CLUSTERS, data=_cluster_rows(BLANK, GPU, BLANK, {**GPU, "name": "b"}))
    assert forms.is_valid()

    forms.add_problem(Problem("clusters.1.name", "the second cluster typed"))

    assert forms.clusters is not None
    assert forms.clusters.forms[3].errors["name"] == ["the second cluster typed"]


def test_a_saved_spec_opens_in_the_same_forms(policy):
    spec = tutorial_spec(custom_name="bluegranite", data_lake=False)

    forms = RequestForms(kind=Kind.NEW_WORKSPACE, data=request_data(spec, kind=Kind.NEW_WORKSPACE))

    assert forms.is_valid()
    assert forms.spec() == spec
    assert not forms.has_errors


def test_a_blank_form_shows_no_errors(policy):
    assert not RequestForms(kind=Kind.NEW_WORKSPACE).has_errors


def test_a_new_request_starts_with_one_row_of_each_with_the_defaults(policy):
    forms = RequestForms(kind=Kind.NEW_WORKSPACE)

    assert forms.clusters is not None and forms.members is not None
    assert len(forms.clusters.forms) == 1 and len(forms.members.forms) == 1
    row = forms.clusters.forms[0]
    assert (row["min_nodes"].value(), row["idle_seconds"].value()) == (0, 120)
    assert row["priority"].value() == "low_priority"


def test_a_saved_spec_opens_with_its_rows_only(policy):
    spec = tutorial_spec()

    forms = RequestForms(kind=Kind.NEW_WORKSPACE, data=request_data(spec, kind=Kind.NEW_WORKSPACE))
    empty = RequestForms(kind=Kind.ADD_CLUSTERS, data=request_data(RequestSpec(), kind=Kind.ADD_CLUSTERS))

    assert forms.clusters is not None and forms.members is not None and empty.clusters is not None
    assert len(forms.clusters.forms) == len(spec.clusters)
    assert len(forms.members.forms) == len(spec.members)
    assert len(empty.clusters.forms) == 1  # nothing saved yet: one blank row to fill


def test_dedicated_is_marked_for_the_environments_whose_policy_refuses_it(policy):
    EnvironmentPolicy.objects.update_or_create(environment="res", defaults={"dedicated_allowed": False})
    EnvironmentPolicy.objects.exclude(environment="res").update(dedicated_allowed=True)

    row = RequestForms(kind=Kind.NEW_WORKSPACE).clusters.forms[0]  # type: ignore[union-attr]

    html = str(row["priority"])
    assert '<option value="dedicated" data-refused-environments="res">' in html
    assert '<option value="low_priority" selected>' in html


def test_a_workspace_whose_policy_refuses_dedicated_offers_low_priority_only(policy, alice, bob):
    workspace = ChangeRequestFactory(requester=alice, approver=bob, approved=True).workspace
    EnvironmentPolicy.objects.update_or_create(
        environment=workspace.environment, defaults={"dedicated_allowed": False}
    )

    data = _cluster_rows({**GPU, "priority": "dedicated"})

    forms = RequestForms(kind=Kind.ADD_CLUSTERS, data=data, workspace=workspace)

    assert forms.clusters is not None
    assert [value for value, _ in forms.clusters.forms[0].fields["priority"].choices] == ["low_priority"]  # type: ignore[attr-defined]
    assert not forms.is_valid()


def test_only_active_memberships_can_be_revoked(policy, alice, bob):
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    Membership.objects.filter(principal_name="user3@contoso.com").update(state=ResourceState.ACTIVE)
    active = Membership.objects.get(principal_name="user3@contoso.com")

    form = RevokeForm(workspace=cr.workspace)

    assert list(form.fields["memberships"].queryset) == [active]  # type: ignore[attr-defined]
    forms = RequestForms(
        kind=Kind.REVOKE_ACCESS, data={"memberships": [str(active.pk)]}, workspace=cr.workspace
    )
    assert forms.is_valid()
    assert forms.spec() == RequestSpec(revoke=(active.pk,))
