"""A request's purpose: old specs load as team workspaces, and keep their stored shape."""

from __future__ import annotations

from provisioning.spec import RequestSpec, WorkspaceSpec
from tests.factories import tutorial_spec, tutorial_workspace


def test_an_old_spec_loads_as_a_team_workspace_and_keeps_its_shape():
    old = tutorial_spec().to_json()
    assert not {"purpose", "project", "pool_teams"} & set(old["workspace"])
    spec = RequestSpec.from_json(old)
    assert spec.workspace is not None and spec.workspace.purpose == "team"
    assert spec.to_json() == old


def test_a_project_and_a_pool_round_trip():
    for ws in (
        tutorial_workspace(team="blue", purpose="project", project="churn"),
        tutorial_workspace(team="commpool", purpose="pool", pool_teams=("bgmr/blue", "fin/risk")),
    ):
        data = RequestSpec(workspace=ws).to_json()
        assert data["workspace"]["purpose"] == ws.purpose
        assert RequestSpec.from_json(data).workspace == ws


def test_a_projects_short_name_joins_its_names_only_for_a_project():
    ws = tutorial_workspace(team="blue", project="churn", purpose="project")
    assert ws.names().workspace == "bgmrbluechurne2devws"
    assert WorkspaceSpec(**{**ws.__dict__, "purpose": "team"}).names().workspace == "bgmrbluee2devws"
