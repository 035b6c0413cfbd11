"""Spend on the pages: the workspace's month to date against its estimate with a chart by day, the capacity
page's flag on a team over its threshold."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from provisioning.arm import arm_id
from provisioning.azure.costs import CostRow
from provisioning.capacity.cost import clusters_cost
from provisioning.capacity.spend import this_month
from provisioning.models import EnvironmentPolicy, Workspace
from provisioning.workflow.spend import spend_record

pytestmark = pytest.mark.django_db


def cost_rows(ws: Workspace, per_day: Decimal, days: int = 3) -> list[CostRow]:
    """Cost Management's rows for a workspace: its storage and a cluster, ``per_day`` each, ``days`` days."""
    group = ws.resource_group.lower()
    storage = arm_id(ws.subscription_id, group, "Microsoft.Storage/storageAccounts", ws.storage_work).lower()
    compute = (
        arm_id(ws.subscription_id, group, "Microsoft.MachineLearningServices/workspaces", ws.workspace_name)
        + "/computes/gpu"
    ).lower()
    first = this_month()
    return [
        CostRow(group, rid, rtype, first + timedelta(days=d), per_day, "USD")
        for d in range(days)
        for rid, rtype in (
            (storage, "microsoft.storage/storageaccounts"),
            (compute, "microsoft.machinelearningservices/workspaces/computes"),
        )
    ]


def test_the_workspace_page_shows_month_to_date_against_the_estimate_and_the_chart(
    client: Client, alice, active_workspace: Workspace
) -> None:
    spend_record(workspace_id=active_workspace.pk, rows=cost_rows(active_workspace, Decimal("1.5")))
    client.force_login(alice)
    section = reverse("provisioning:workspace_spend", args=[active_workspace.pk])
    # The workspace page loads its spend section once shown (and links to it without JavaScript).
    workspace_page = client.get(reverse("provisioning:workspace_detail", args=[active_workspace.pk]))
    assert f'hx-get="{section}"' in workspace_page.content.decode()
    assert "spend" not in workspace_page.context

    page = client.get(section)

    html = page.content.decode()
    spend = page.context["spend"]
    assert spend.month_to_date == Decimal("9.00")  # 2 resources x 3 days x 1.50
    assert spend.estimate == clusters_cost(active_workspace.clusters.all()).monthly > 0
    assert "9.00 USD" in html and f"{spend.estimate:.2f} USD" in html
    assert "data-spend-chart" in html and html.count("<rect ") >= 3  # a bar per day
    assert [kind for kind, _ in page.context["spend_kinds"]] == ["Compute", "Storage"]
    assert "style=" not in html.split("data-spend>")[1].split("</section>")[0]  # CSP: no inline style


def test_a_workspaces_spend_is_shown_to_whoever_may_see_the_workspace_only(
    client: Client, charlie, dana, active_workspace: Workspace
) -> None:
    spend_record(workspace_id=active_workspace.pk, rows=cost_rows(active_workspace, Decimal("1.5")))
    section = reverse("provisioning:workspace_spend", args=[active_workspace.pk])

    client.force_login(charlie)  # another team's lead
    assert client.get(section).status_code == 404
    client.force_login(dana)  # a data scientist without access to it
    assert client.get(section).status_code == 404
    client.logout()
    assert client.get(section).status_code == 302  # to sign in


def test_a_second_identical_read_changes_nothing(active_workspace: Workspace) -> None:
    from provisioning.models import AuditEvent, WorkspaceCost

    rows = cost_rows(active_workspace, Decimal("2.25"))
    spend_record(workspace_id=active_workspace.pk, rows=rows)
    before = (list(WorkspaceCost.objects.values_list("pk", "amount")), AuditEvent.objects.count())

    spend_record(workspace_id=active_workspace.pk, rows=rows)

    assert (list(WorkspaceCost.objects.values_list("pk", "amount")), AuditEvent.objects.count()) == before
    changed = [*rows[:-1], CostRow(*[*rows[-1].__dict__.values()][:4], Decimal("3"), "USD")]
    spend_record(workspace_id=active_workspace.pk, rows=changed[1:])  # a late charge, a row gone
    assert WorkspaceCost.objects.count() == len(rows) - 1
    assert AuditEvent.objects.filter(action="spend.read").count() == 2


def test_the_capacity_page_flags_a_team_over_its_threshold(
    client: Client, bob, active_workspace: Workspace
) -> None:
    EnvironmentPolicy.objects.update_or_create(environment="dev", defaults={"spend_alert_percent": 1})
    spend_record(workspace_id=active_workspace.pk, rows=cost_rows(active_workspace, Decimal("100")))
    client.force_login(bob)

    assert (
        reverse("provisioning:capacity_spend")
        in client.get(reverse("provisioning:capacity")).content.decode()
    )
    page = client.get(reverse("provisioning:capacity_spend"))

    [team] = page.context["spend_teams"]
    assert team.team == f"{active_workspace.department}/{active_workspace.team}"
    assert [f.workspace.pk for f in team.flagged] == [active_workspace.pk]
    assert "data-over-threshold" in page.content.decode()


def test_a_teams_budget_is_priced_at_each_familys_cheapest_core(django_assert_num_queries: Any) -> None:
    from provisioning.capacity.spend import team_budgets
    from provisioning.models import TeamBudget, VmPrice
    from tests import factories

    family = "standardDSv2Family"
    factories.vm_size("eastus2", "Standard_DS3_v2", family, 4)
    factories.vm_size("eastus2", "Standard_DS4_v2", family, 8)
    factories.vm_size("eastus2", "Standard_DS5_v2", family, 16)  # no price
    factories.vm_size("westeurope", "Standard_DS2_v2", family, 2)  # a region no budget names
    VmPrice.objects.all().delete()  # the seeded prices
    for size, priority, hourly in (
        ("STANDARD_DS3_V2", "dedicated", "0.40"),  # 0.10 a core
        ("STANDARD_DS3_V2", "low_priority", "0.08"),  # 0.02 a core
        ("STANDARD_DS4_V2", "dedicated", "0.64"),  # 0.08 a core: the cheapest dedicated
        ("STANDARD_DS2_V2", "dedicated", "0.02"),
    ):
        VmPrice.objects.create(vm_size=size, priority=priority, hourly_usd=Decimal(hourly))
    TeamBudget.objects.create(
        department="d", team="t", region="eastus2", family=family, dedicated_cores=10, low_priority_cores=100
    )
    TeamBudget.objects.create(  # a family without sizes: no price
        department="d", team="u", region="eastus2", family="standardNVFamily", dedicated_cores=10
    )

    with django_assert_num_queries(2):  # the budgets, the catalog's sizes with their prices
        budgets = team_budgets({("d", "t"), ("d", "u")})

    assert budgets == {("d", "t"): Decimal("2044.00")}  # (10 x 0.08 + 100 x 0.02) x 730 hours


def test_a_projects_spend_counts_against_the_projects_budget_not_its_teams(
    active_workspace: Workspace,
) -> None:
    from provisioning.capacity.spend import spend_figures
    from provisioning.models import TeamBudget, VmPrice
    from tests import factories
    from tests.factories import WorkspaceFactory

    for row in factories.TUTORIAL_SIZES:
        factories.vm_size(active_workspace.region, *row)

    team_ws = active_workspace
    project_ws = WorkspaceFactory(
        owner=team_ws.owner,
        department=team_ws.department,
        team=team_ws.team,
        purpose="project",
        project="churn",
        custom_name="churnws",
    )
    budget = {"region": team_ws.region, "family": "standardDSv2Family", "low_priority_cores": 0}
    TeamBudget.objects.create(department=team_ws.department, team=team_ws.team, dedicated_cores=4, **budget)
    TeamBudget.objects.create(
        department=team_ws.department, team=team_ws.team, project="churn", dedicated_cores=400, **budget
    )
    VmPrice.objects.update_or_create(
        vm_size="STANDARD_DS3_V2", priority="dedicated", defaults={"hourly_usd": Decimal("0.5")}
    )
    spend_record(workspace_id=team_ws.pk, rows=cost_rows(team_ws, Decimal("1")))
    spend_record(workspace_id=project_ws.pk, rows=cost_rows(project_ws, Decimal("50")))

    team, project = spend_figures(
        [Workspace.objects.get(pk=team_ws.pk), Workspace.objects.get(pk=project_ws.pk)]
    )
    assert (team.team, project.team) == (
        f"{team_ws.department}/{team_ws.team}",
        f"{team_ws.department}/{team_ws.team}.churn",
    )
    assert project.budget is not None and team.budget is not None and project.budget == team.budget * 100
    assert (team.team_month_to_date, project.team_month_to_date) == (Decimal("6.00"), Decimal("300.00"))
