"""Spend: what Cost Management says the workspaces cost this month, against their estimate and their team's budget.

- The **estimate** of a workspace is its clusters' worst-case monthly cost (``cost.clusters_cost``: every node
  up all month at the ``VmPrice`` table's prices).
- The **budget** of a team is what its core budgets (``TeamBudget``) cost for a month at those prices: each
  family's cheapest price per core (the size catalog gives the cores of each size), dedicated and low-priority
  apart. A team without budgets, or whose families have no price, has none.
- A workspace is **over its threshold** when its team's month to date (all its workspaces) passes
  ``EnvironmentPolicy.spend_alert_percent`` of the team's budget; without a budget, when the workspace's own
  month to date passes that share of its estimate.

Every function reads a fixed number of queries however many workspaces or teams it covers. Workers read
Azure (``provisioning.engine.spend``) and ``provisioning.workflow.spend`` stores it; this module never calls
Azure.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Protocol, TypeVar

from django.db.models import OuterRef, Subquery, Sum
from django.utils import timezone

from provisioning.capacity.cost import CENTS, HOURS_PER_MONTH, clusters_cost, price_table
from provisioning.models import (
    Cluster,
    CostKind,
    EnvironmentPolicy,
    Priority,
    ResourceState,
    TeamBudget,
    VmPrice,
    VmSize,
    Workspace,
    WorkspaceCost,
    WorkspaceSpend,
)

Team = tuple[str, str]  # (department, holder): the team, or ``team.project`` for a project (its own budget)


def holder(department: str, team: str, project: str) -> Team:
    """Whose budget a workspace's spend counts against: its team's, or its project's (as capacity's holders)."""
    return (department, f"{team}.{project}" if project else team)


R = TypeVar("R", bound="CostLine")
DEFAULT_ALERT_PERCENT = 100


class CostLine(Protocol):
    """A cost row as the adapter returns it (``provisioning.azure.costs.CostRow``)."""

    @property
    def resource_group(self) -> str: ...

    @property
    def resource_id(self) -> str: ...


def this_month(now: datetime | None = None) -> date:
    """The first day of the current month in UTC (Cost Management's month to date)."""
    return (now or timezone.now()).astimezone(UTC).date().replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``'s."""
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def _owner_in_group(ws: Workspace, resource_id: str) -> bool:
    """Whether a resource id (lowercased) is one of the workspace's resources or clusters."""
    rid = resource_id.lower()
    if f"/workspaces/{ws.workspace_name.lower()}" in rid and "machinelearningservices" in rid:
        return True
    names = {ws.storage_work, ws.storage_data, ws.data_lake_name, ws.key_vault, ws.registry, ws.app_insights}
    return rid.rsplit("/", 1)[-1] in {n.lower() for n in names if n}


def rows_by_workspace(
    workspaces: Sequence[Workspace], rows: Iterable[R]
) -> tuple[dict[int, list[R]], list[R]]:
    """Each workspace's rows, by resource group; in a group several workspaces share, by resource name.

    Returns the rows per workspace id and the rows no workspace claims (a shared group's other resources).
    """
    by_group: dict[str, list[Workspace]] = defaultdict(list)
    for ws in workspaces:
        by_group[ws.resource_group.lower()].append(ws)
    found: dict[int, list[R]] = {ws.pk: [] for ws in workspaces}
    unclaimed: list[R] = []
    for row in rows:
        candidates = by_group.get(row.resource_group.lower(), [])
        owner = next((ws for ws in candidates if _owner_in_group(ws, row.resource_id)), None)
        if owner is None and len(candidates) == 1:
            owner = candidates[0]
        if owner is None:
            unclaimed.append(row)
        else:
            found[owner.pk].append(row)
    return found, unclaimed


# --- estimates and budgets ---------------------------------------------------------------------------------


def estimates(workspace_ids: Iterable[int]) -> dict[int, Decimal]:
    """Each workspace's clusters' worst-case monthly cost (two queries)."""
    clusters = list(
        Cluster.objects.filter(workspace_id__in=list(workspace_ids)).exclude(state=ResourceState.REVOKED)
    )
    prices = price_table(clusters)
    by_workspace: dict[int, list[Cluster]] = defaultdict(list)
    for cluster in clusters:
        by_workspace[cluster.workspace_id].append(cluster)
    return {ws_id: clusters_cost(rows, prices).monthly for ws_id, rows in by_workspace.items()}


def _price_of_size(priority: str) -> Subquery:
    """The hourly price of the outer query's VM size (``name``) at ``priority`` (None: no price)."""
    price = VmPrice.objects.filter(vm_size=OuterRef("name"), priority=priority).order_by()
    return Subquery(price.values("hourly_usd")[:1])


def _core_prices(budgets: list[TeamBudget]) -> dict[tuple[str, str, str], Decimal]:
    """The cheapest hourly price of one core of each (region, family, priority) the budgets name (one query: the
    catalog's sizes with their prices)."""
    priorities = (Priority.DEDICATED, Priority.LOW_PRIORITY)
    sizes = (
        VmSize.objects.filter(
            region__in={b.region for b in budgets}, family__in={b.family for b in budgets}, vcpus__gt=0
        )
        .order_by()
        .annotate(dedicated=_price_of_size(priorities[0]), low_priority=_price_of_size(priorities[1]))
        .values_list("region", "family", "vcpus", "dedicated", "low_priority")
    )
    cheapest: dict[tuple[str, str, str], Decimal] = {}
    for region, family, vcpus, *hourlies in sizes:
        for priority, hourly in zip(priorities, hourlies, strict=True):
            if hourly is not None:
                key, per_core = (region, family, priority), hourly / vcpus
                cheapest[key] = min(cheapest.get(key, per_core), per_core)
    return cheapest


def team_budgets(teams: Iterable[Team]) -> dict[Team, Decimal]:
    """What each team's core budgets cost for a month (two queries); teams with no priced budget are left out."""
    wanted = set(teams)
    departments, names = {d for d, _ in wanted}, {t.partition(".")[0] for _, t in wanted}
    budgets = [
        b
        for b in TeamBudget.objects.filter(department__in=departments, team__in=names)
        if holder(b.department, b.team, b.project) in wanted
    ]
    prices = _core_prices(budgets) if budgets else {}
    totals: dict[Team, Decimal] = {}
    for b in budgets:
        for cores, priority in (
            (b.dedicated_cores, Priority.DEDICATED),
            (b.low_priority_cores, Priority.LOW_PRIORITY),
        ):
            per_core = prices.get((b.region, b.family, priority))
            if cores and per_core is not None:
                team = holder(b.department, b.team, b.project)
                totals[team] = totals.get(team, Decimal(0)) + per_core * cores * HOURS_PER_MONTH
    return {team: total.quantize(CENTS) for team, total in totals.items()}


def alert_percents() -> dict[str, int]:
    """Each environment's spend alert threshold, in percent (one query)."""
    return dict(EnvironmentPolicy.objects.values_list("environment", "spend_alert_percent"))


# --- figures -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpendFigures:
    """A workspace's month to date against its estimate and its team's budget."""

    workspace: Workspace
    month: date
    month_to_date: Decimal
    currency: str
    estimate: Decimal
    budget: Decimal | None
    team_month_to_date: Decimal
    alert_percent: int
    read_at: datetime | None
    error: str

    @property
    def team(self) -> str:
        """Whose budget it counts against: ``department/team``, or ``department/team.project``."""
        department, name = holder(self.workspace.department, self.workspace.team, self.workspace.project)
        return f"{department}/{name}"

    @property
    def limit(self) -> Decimal | None:
        """The amount whose passing flags the workspace: the threshold's share of the budget, else of the
        estimate (None: nothing to compare with)."""
        base = self.budget if self.budget else self.estimate
        return (base * self.alert_percent / 100).quantize(CENTS) if base else None

    @property
    def over_threshold(self) -> bool:
        spent = self.team_month_to_date if self.budget else self.month_to_date
        return self.limit is not None and spent >= self.limit

    @property
    def estimate_percent(self) -> int | None:
        """Month to date as a percent of the estimate."""
        return round(self.month_to_date * 100 / self.estimate) if self.estimate else None

    def as_dict(self) -> dict[str, object]:
        """The JSON of ``spend_refresh --json``: amounts as numbers in cents' precision, times in ISO 8601."""
        return {
            "workspace": self.workspace.workspace_name,
            "team": self.team,
            "month": f"{self.month:%Y-%m}",
            "month_to_date": _number(self.month_to_date),
            "currency": self.currency,
            "estimate": _number(self.estimate),
            "budget": None if self.budget is None else _number(self.budget),
            "team_month_to_date": _number(self.team_month_to_date),
            "alert_percent": self.alert_percent,
            "over_threshold": self.over_threshold,
            "read_at": self.read_at.isoformat() if self.read_at else None,
            "error": self.error,
        }


def _number(amount: Decimal) -> float:
    """An amount for JSON: rounded to the cent (a float of two decimals prints as written)."""
    return float(amount.quantize(CENTS))


def _spend_of(ws: Workspace) -> WorkspaceSpend:
    """A workspace's spend row loaded with it (``select_related("spend")``)."""
    spend: WorkspaceSpend = ws.spend
    return spend


def _team_totals(teams: set[Team], month: date) -> dict[Team, Decimal]:
    """Each team's month to date over all its workspaces (one query)."""
    totals = (
        WorkspaceSpend.objects.filter(
            month=month,
            workspace__department__in={d for d, _ in teams},
            workspace__team__in={t.partition(".")[0] for _, t in teams},
        )
        .values_list("workspace__department", "workspace__team", "workspace__project")
        .annotate(total=Sum("month_to_date"))
    )
    found: dict[Team, Decimal] = defaultdict(Decimal)
    for department, team, project, total in totals:
        key = holder(department, team, project)
        if key in teams:
            found[key] += total or Decimal(0)
    return found


def spend_figures(
    workspaces: Sequence[Workspace],
    *,
    month: date | None = None,
    team_totals: dict[Team, Decimal] | None = None,
    known_estimates: dict[int, Decimal] | None = None,
) -> list[SpendFigures]:
    """The figures of these workspaces this month, in at most seven queries: fewer when the workspaces come
    with their ``spend``, with ``team_totals`` or ``known_estimates`` given, or when no team has a budget."""
    month = month or this_month()
    ids = [ws.pk for ws in workspaces]
    if all("spend" in ws._state.fields_cache for ws in workspaces):
        spends = {ws.pk: _spend_of(ws) for ws in workspaces}
    else:
        spends = {s.workspace_id: s for s in WorkspaceSpend.objects.filter(workspace_id__in=ids)}
    teams = {holder(ws.department, ws.team, ws.project) for ws in workspaces}
    budgets = team_budgets(teams)
    # A team's total across its workspaces only matters against a budget.
    totals = _team_totals(set(budgets), month) if team_totals is None and budgets else team_totals or {}
    costs = estimates(ids) if known_estimates is None else known_estimates
    percents = alert_percents()
    figures = []
    for ws in workspaces:
        spend = spends.get(ws.pk)
        current = spend is not None and spend.month == month
        figures.append(
            SpendFigures(
                workspace=ws,
                month=month,
                month_to_date=spend.month_to_date if spend is not None and current else Decimal(0),
                currency=(spend.currency if spend is not None else "") or "USD",
                estimate=costs.get(ws.pk, Decimal(0)),
                budget=budgets.get(holder(ws.department, ws.team, ws.project)),
                team_month_to_date=totals.get(holder(ws.department, ws.team, ws.project), Decimal(0)),
                alert_percent=percents.get(ws.environment, DEFAULT_ALERT_PERCENT),
                read_at=spend.read_at if spend is not None else None,
                error=spend.error if spend is not None else "",
            )
        )
    return figures


def workspace_figures(workspace: Workspace, *, estimate: Decimal | None = None) -> SpendFigures:
    """One workspace's figures this month (``estimate``: its clusters' monthly cost, when already known)."""
    known = None if estimate is None else {workspace.pk: estimate}
    return spend_figures([workspace], known_estimates=known)[0]


@dataclass(frozen=True)
class TeamSpend:
    """A team's month to date over its workspaces, against its budget; the workspaces over threshold."""

    team: str
    month_to_date: Decimal
    estimate: Decimal
    budget: Decimal | None
    workspaces: list[SpendFigures]

    @property
    def flagged(self) -> list[SpendFigures]:
        return [f for f in self.workspaces if f.over_threshold]


def team_spend(*, month: date | None = None) -> list[TeamSpend]:
    """Every team with a read this month, flagged teams first, then by month to date (fixed queries)."""
    month = month or this_month()
    workspaces = list(
        Workspace.objects.filter(spend__month=month)
        .select_related("spend")
        .order_by("department", "team", "workspace_name")
    )
    # Every workspace read this month is here: the teams' totals need no query of their own.
    totals: dict[Team, Decimal] = defaultdict(Decimal)
    for ws in workspaces:
        totals[holder(ws.department, ws.team, ws.project)] += _spend_of(ws).month_to_date
    by_team: dict[str, list[SpendFigures]] = defaultdict(list)
    for figures in spend_figures(workspaces, month=month, team_totals=totals):
        by_team[figures.team].append(figures)
    teams = [
        TeamSpend(
            team=team,
            month_to_date=sum((f.month_to_date for f in rows), Decimal(0)),
            estimate=sum((f.estimate for f in rows), Decimal(0)),
            budget=rows[0].budget,
            workspaces=rows,
        )
        for team, rows in by_team.items()
    ]
    return sorted(teams, key=lambda t: (not t.flagged, -t.month_to_date, t.team))


# --- a workspace's month, by day and by kind ---------------------------------------------------------------


@dataclass(frozen=True)
class MonthCosts:
    """A workspace's month by day (every day from the 1st to the last read) and by kind of resource."""

    by_day: list[tuple[date, Decimal]]
    by_kind: list[tuple[str, Decimal]]


def month_costs(workspace: Workspace, *, month: date | None = None) -> MonthCosts:
    """The workspace's cost rows of the month, summed by day and by kind (one query)."""
    month = month or this_month()
    days: dict[date, Decimal] = defaultdict(Decimal)
    kinds: dict[str, Decimal] = defaultdict(Decimal)
    rows = WorkspaceCost.objects.filter(workspace=workspace, day__gte=month, day__lt=next_month(month))
    for day, kind, amount in rows.values_list("day", "kind", "amount"):
        days[day] += amount
        kinds[kind] += amount
    by_day = []
    if days:
        day = month
        while day <= max(days):
            by_day.append((day, days.get(day, Decimal(0))))
            day += timedelta(days=1)
    labels = dict(CostKind.choices)
    by_kind = sorted(((labels.get(k, k), v) for k, v in kinds.items()), key=lambda kv: -kv[1])
    return MonthCosts(by_day, by_kind)
