"""Workspaces for a project or a shared pool: requested, checked against their own budgets, provisioned, shown."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from provisioning.capacity import checks as capacity
from provisioning.models import ChangeRequest, Workspace
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.workflow import services
from provisioning.workflow.validation import spec_problems
from tests.factories import (
    ClusterFactory,
    MembershipFactory,
    WorkspaceFactory,
    team_budget,
    tutorial_workspace,
    vm_size,
)
from tests.provisioning.pages import assert_accessible, tutorial_post
from tests.provisioning.provisioned import provisioned

Kind = ChangeRequest.Kind
DSV2 = "standardDSv2Family"
LEAD = (MemberSpec("admin1@contoso.com", "team_lead"),)


def _sizes() -> None:
    vm_size("eastus2", "Standard_DS3_v2", DSV2, 4)


def _project_spec(**overrides: Any) -> RequestSpec:
    ws = tutorial_workspace(team="blue", purpose="project", project="churn", data_lake=False, **overrides)
    cluster = ClusterSpec("ds3", "STANDARD_DS3_V2", "low_priority", max_nodes=2)
    return RequestSpec(workspace=ws, clusters=(cluster,), members=LEAD)


def _pool_spec() -> RequestSpec:
    ws = tutorial_workspace(team="commpool", purpose="pool", pool_teams=("bgmr/blue",), data_lake=False)
    cluster = ClusterSpec("pool-ds3", "STANDARD_DS3_V2", "low_priority", max_nodes=3)
    return RequestSpec(workspace=ws, clusters=(cluster,), members=LEAD)


def _field(problems: list[Any]) -> list[str]:
    return [p.field for p in problems]


# --- requested, provisioned and shown with their budgets ------------------------------------------------------


def test_a_project_and_a_pool_are_provisioned_and_shown_with_their_budgets(
    policy, alice, bob, client, standin, azure_clients, rq_queue
) -> None:
    _sizes()
    team_budget(DSV2, low_priority=16, team="blue", project="churn")
    team_budget(DSV2, low_priority=24, team="commpool")

    project = provisioned(standin, azure_clients, alice, bob, spec=_project_spec())
    pool = provisioned(standin, azure_clients, alice, bob, spec=_pool_spec())

    assert (project.purpose, project.project, project.workspace_name) == (
        "project",
        "churn",
        "bgmrbluechurne2devws",
    )
    assert project.resource_group == "bgmr-blue-churn-eastus2-dev"
    assert (pool.purpose, pool.pool_teams, pool.workspace_name) == (
        "pool",
        ["bgmr/blue"],
        "bgmrcommpoole2devws",
    )
    workspaces = {
        w["name"] for w in standin.state.list_resources("Microsoft.MachineLearningServices/workspaces")
    }
    assert workspaces == {"bgmrbluechurne2devws", "bgmrcommpoole2devws"}

    client.force_login(bob)
    html = client.get(reverse("provisioning:capacity")).content.decode()
    project_row = re.search(r"bgmr/blue\.churn <span[^>]*>project</span>.*?</tr>", html, re.S)
    pool_row = re.search(r"bgmr/commpool <span[^>]*>pool</span>.*?</tr>", html, re.S)
    assert project_row and pool_row
    assert "project churn of team bgmr/blue" in project_row.group(0)
    assert "pool bgmr/commpool for teams bgmr/blue" in pool_row.group(0)
    # low-priority budget, held: 2 x 4 cores in the project, 3 x 4 in the pool
    assert re.search(r">16</td>\s*<td[^>]*>8</td>", project_row.group(0))
    assert re.search(r">24</td>\s*<td[^>]*>12</td>", pool_row.group(0))

    page = client.get(reverse("provisioning:workspace_detail", args=[project.pk])).content.decode()
    assert "project churn of team bgmr/blue" in page


# --- a project's own budget ------------------------------------------------------------------------------------


def test_a_projects_clusters_count_against_its_budget_not_the_teams(policy) -> None:
    _sizes()
    team_budget(DSV2, low_priority=100, team="blue")
    team_budget(DSV2, low_priority=8, team="blue", project="churn")
    project_ws = WorkspaceFactory(team="blue", purpose="project", project="churn")
    team_ws = WorkspaceFactory(team="blue")
    ClusterFactory(workspace=project_ws, max_nodes=2)  # 8 cores: the project's whole budget
    more = RequestSpec(clusters=(ClusterSpec("more", "STANDARD_DS3_V2", "low_priority", max_nodes=1),))

    on_project = capacity.request_check(more, workspace=project_ws)
    on_team = capacity.request_check(more, workspace=team_ws)

    (line,) = [line for line in on_project.lines if line.holder == "team"]
    assert (line.used, line.limit, line.fits) == (8, 8, False)
    assert "project churn of team bgmr/blue's budget" in line.sentence(on_project.team)
    (line,) = [line for line in on_team.lines if line.holder == "team"]
    assert (line.used, line.limit, line.fits) == (0, 100, True)  # the project's cores are not the team's
    problems = spec_problems(more, kind=Kind.ADD_CLUSTERS, workspace=project_ws)
    assert on_project.needs_second_approval or "clusters.0.max_nodes" in _field(problems)


def test_a_new_project_is_checked_against_the_projects_budget(policy) -> None:
    _sizes()
    team_budget(DSV2, low_priority=100, team="blue")
    team_budget(DSV2, low_priority=4, team="blue", project="churn")
    check = capacity.request_check(_project_spec())
    assert check.team == capacity.Team("bgmr", "blue", "eastus2", "churn")
    assert [(line.limit, line.fits) for line in check.lines if line.holder == "team"] == [(4, False)]


# --- validation -------------------------------------------------------------------------------------------------


def test_purpose_problems_have_field_paths(policy) -> None:
    WorkspaceFactory(team="blue")
    no_name = RequestSpec(workspace=tutorial_workspace(team="blue", purpose="project"))
    unknown = RequestSpec(
        workspace=tutorial_workspace(
            team="commpool", purpose="pool", pool_teams=("bgmr/blue", "bgmr/nobody", "x")
        )
    )
    no_teams = RequestSpec(workspace=tutorial_workspace(team="commpool", purpose="pool"))
    assert "workspace.project" in _field(spec_problems(no_name, kind=Kind.NEW_WORKSPACE))
    assert _field(spec_problems(unknown, kind=Kind.NEW_WORKSPACE)) == [
        "workspace.pool_teams.2",
        "workspace.pool_teams.1",
    ]
    assert _field(spec_problems(no_teams, kind=Kind.NEW_WORKSPACE)) == ["workspace.pool_teams"]
    too_many = RequestSpec(
        workspace=tutorial_workspace(purpose="pool", pool_teams=tuple(f"bgmr/t{n}" for n in range(51)))
    )
    assert _field(spec_problems(too_many, kind=Kind.NEW_WORKSPACE)) == ["workspace.pool_teams"]


# --- access to a pool -------------------------------------------------------------------------------------------


@pytest.fixture
def pool_world(policy, alice, charlie) -> dict[str, Any]:
    blue = WorkspaceFactory(team="blue", owner=alice)
    red = WorkspaceFactory(team="red", owner=charlie)
    MembershipFactory(workspace=blue, principal_name="sci@contoso.com")
    MembershipFactory(workspace=red, principal_name="other@contoso.com")
    pool = WorkspaceFactory(team="commpool", purpose="pool", pool_teams=["bgmr/blue"])
    return {"pool": pool}


def _grant(principal: str) -> RequestSpec:
    return RequestSpec(members=(MemberSpec(principal, "data_scientist"),))


def test_a_scientist_of_a_pools_team_may_be_given_access_another_teams_may_not(pool_world) -> None:
    pool = pool_world["pool"]
    assert spec_problems(_grant("sci@contoso.com"), kind=Kind.GRANT_ACCESS, workspace=pool) == []
    (problem,) = spec_problems(_grant("other@contoso.com"), kind=Kind.GRANT_ACCESS, workspace=pool)
    assert problem.field == "members.0.principal"
    assert "not a member of a workspace of the pool's teams (bgmr/blue)" in problem.message


def test_a_lead_of_a_pools_team_may_request_access_to_it_others_may_not(pool_world, alice, charlie) -> None:
    pool = pool_world["pool"]
    cr = services.request_create(
        requester=alice, kind=Kind.GRANT_ACCESS, spec=_grant("sci@contoso.com"), workspace=pool
    )
    assert cr.workspace_id == pool.pk
    with pytest.raises(PermissionDenied):
        services.request_create(
            requester=charlie, kind=Kind.GRANT_ACCESS, spec=_grant("other@contoso.com"), workspace=pool
        )
    with pytest.raises(
        PermissionDenied
    ):  # access only: the pool's other changes stay with those who manage it
        services.request_create(
            requester=alice,
            kind=Kind.ADD_CLUSTERS,
            spec=RequestSpec(clusters=(ClusterSpec("x1", "STANDARD_DS3_V2"),)),
            workspace=pool,
        )
    assert Workspace.objects.get(pk=pool.pk).purpose_text == "pool bgmr/commpool for teams bgmr/blue"


# --- the new-workspace page ----------------------------------------------------------------------------------


def test_the_page_asks_what_the_workspace_is_for_and_saves_a_project(client, policy, alice) -> None:
    client.force_login(alice)
    page = client.get(reverse("provisioning:new_workspace")).content.decode()
    assert 'name="purpose" value="project"' in page and 'id="id_pool_teams"' in page
    assert_accessible(page)

    post = tutorial_post(team="blue", purpose="project", project="churn", pool_teams="bgmr/ignored")
    response = client.post(reverse("provisioning:new_workspace"), post)

    assert response.status_code == 302
    cr = ChangeRequest.objects.get(requester=alice)
    assert cr.workspace_name == "bgmrbluechurne2devws"
    assert cr.spec["workspace"]["project"] == "churn" and "pool_teams" not in cr.spec["workspace"]
    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()
    assert "project churn of team bgmr/blue" in page
    preview = client.get(reverse("provisioning:preview_names"), post).content.decode()
    assert "bgmr-blue-churn-eastus2-dev" in preview


def test_a_pools_unknown_team_is_shown_on_its_field(client, policy, alice) -> None:
    client.force_login(alice)
    post = tutorial_post(action="submit", team="commpool", purpose="pool", pool_teams="bgmr/nobody, bgmr/x!")
    response = client.post(reverse("provisioning:new_workspace"), post)
    assert response.status_code == 302  # a draft is saved; submitting it shows its problems
    page = client.get(response.headers["Location"]).content.decode()
    assert "bgmr/nobody" in page and "is not a team the portal knows" in page
