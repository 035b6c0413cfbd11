"""What the admins' capacity page shows: cores per region and VM family, team budgets, open flags.

Only reads. Four figures meet on each line, from four sources that are each someone's truth:

- **used** and **limit**: Azure's subscription usages as the last refresh stored them (``CoreUsage``),
  summed over the active allowed subscriptions;
- **allocated**: what admins gave teams (``TeamBudget``);
- **held**: the worst case (every node up) of the clusters the portal holds (``capacity.add_holding``);
- **pending**: the worst case of the clusters of submitted requests (``capacity.cluster_demands``).

Each is read in a fixed number of queries, however many teams, workspaces and waiting requests there are.

Azure reports dedicated cores per VM family but low-priority cores only as a regional total, so the
low-priority families show what the portal knows (budgets, held, pending) without Azure's figures.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, cast

from django.core.cache import cache
from django.db import connection
from django.db.models import Max, Q, QuerySet, Sum

from provisioning.arm import family_label
from provisioning.capacity import checks as capacity
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AuditEvent,
    ChangeRequest,
    Cluster,
    ClusterFlag,
    CoreUsage,
    Priority,
    Purpose,
    ResourceState,
    TeamBudget,
    VmSize,
    Workspace,
    WorkspaceQuota,
)
from provisioning.spec import RequestSpec

DEDICATED = str(Priority.DEDICATED)
LOW_PRIORITY = str(Priority.LOW_PRIORITY)
# The held and pending cores are kept this long at most; a change to what they read makes new ones at once.
DEMANDS_SECONDS = 600
QUOTA_APPLIED = "Success"  # Azure's status of an update it applied (provisioning.azure.quotas.SUCCESS)

# Cores by (family, priority); the holder key is (department, holder, region), the holder a team's name
# (a pool's too) or ``team.project`` for a project's budget.
Cores = dict[tuple[str, str], int]
TeamKey = tuple[str, str, str]


def holder_key(department: str, team: str, project: str, region: str) -> TeamKey:
    """The key of a budget holder: the team, or ``team.project`` for a project."""
    return (department, f"{team}.{project}" if project else team, region)


@dataclass(frozen=True)
class Figures:
    """One line of a region's chart: a VM family's cores, or a regional total, for one priority."""

    key: str  # the family, or "dedicated_total" / "low_priority_total"
    label: str
    priority: str
    used: int | None  # None: Azure has not reported it (not read yet, or not reported per family)
    limit: int | None
    allocated: int = 0
    held: int = 0
    pending: int = 0

    @property
    def shown(self) -> bool:
        """Whether the line has anything to show (a family nobody uses, budgets or asks for has not)."""
        return bool(self.used or self.limit or self.allocated or self.held or self.pending)

    @property
    def idle(self) -> bool:
        """Only a limit: nothing used, budgeted, held or asked for (listed, not charted)."""
        return not (self.used or self.allocated or self.held or self.pending)

    @property
    def over_allocated(self) -> int:
        """How many more cores the teams' budgets give away than the limit (0 when they fit)."""
        return max(self.allocated - self.limit, 0) if self.limit is not None else 0

    @property
    def pending_shortfall(self) -> int:
        """How far past the limit usage would go if every pending cluster ran all its nodes."""
        if self.limit is None or self.used is None or not self.pending:
            return 0
        return max(self.used + self.pending - self.limit, 0)


@dataclass
class RegionCapacity:
    """A region's cores: dedicated per family, the two regional totals, low-priority budgets per family."""

    region: AllowedRegion
    subscriptions: list[str]
    refreshed_at: datetime | None
    catalog_refreshed_at: datetime | None
    families: list[Figures]
    dedicated_total: Figures
    low_priority_total: Figures
    low_priority_families: list[Figures]

    @property
    def usage_known(self) -> bool:
        return self.refreshed_at is not None

    @property
    def anything(self) -> bool:
        return bool(self.families or self.low_priority_families) or self.usage_known


@dataclass(frozen=True)
class QuotaState:
    """A workspace's AzureML quota for a family as the portal last asked for it and read it back."""

    workspace_name: str
    requested: int | None
    applied: int | None
    status: str
    message: str
    applied_at: datetime | None

    @property
    def ok(self) -> bool:
        return self.status == QUOTA_APPLIED

    @property
    def not_yet(self) -> bool:
        return not self.status


@dataclass(frozen=True)
class BudgetRow:
    """A team's budget in a region and family, what the portal holds and asks of it, and Azure's quota."""

    budget: TeamBudget
    family_label: str
    held_dedicated: int
    held_low_priority: int
    pending_dedicated: int
    pending_low_priority: int
    quotas: list[QuotaState]
    # "team", "project" or "pool" (a team whose workspace is a shared pool), and what it is for in words.
    kind: str = "team"
    purpose_text: str = ""

    @property
    def team(self) -> str:
        """The holder as the budget form takes it: ``department/team`` or ``department/team.project``."""
        return self.budget.holder


@dataclass
class Demands:
    """Worst-case cores of the portal's clusters and of the submitted requests, per team."""

    held: dict[TeamKey, Cores] = field(default_factory=dict)
    pending: dict[TeamKey, Cores] = field(default_factory=dict)

    def in_region(self, which: dict[TeamKey, Cores], region: str) -> Cores:
        total: Cores = defaultdict(int)
        for (_, _, team_region), cores in which.items():
            if team_region == region:
                for key, value in cores.items():
                    total[key] += value
        return total


@dataclass
class Overview:
    """Everything the capacity page shows."""

    regions: list[RegionCapacity]
    budgets: list[BudgetRow]
    flags: list[ClusterFlag]

    @property
    def refreshed_at(self) -> datetime | None:
        """When Azure's usages were last read (the latest region)."""
        return max((r.refreshed_at for r in self.regions if r.refreshed_at), default=None)


Catalogs = dict[str, dict[str, VmSize]]


def held_by_team(catalogs: Catalogs | None = None) -> dict[TeamKey, Cores]:
    """Worst-case cores of the clusters the portal holds, for every team that has a workspace.

    ``catalogs``: every region's size catalog (``capacity.sizes_by_region``) when read already.
    """
    catalogs = capacity.sizes_by_region() if catalogs is None else catalogs
    teams = {
        holder_key(*row)
        for row in Workspace.objects.exclude(state=ResourceState.REVOKED)
        .order_by()
        .values_list("department", "team", "project", "region")
        .distinct()
    }
    held: dict[TeamKey, Cores] = defaultdict(lambda: defaultdict(int))
    clusters = Cluster.objects.filter(state__in=capacity.HOLDING).values_list(
        "vm_size",
        "priority",
        "max_nodes",
        "workspace__department",
        "workspace__team",
        "workspace__project",
        "workspace__region",
    )
    for vm_size, priority, max_nodes, department, team, project, region in clusters:  # plain tuples
        key = holder_key(department, team, project, region)
        if key in teams:
            capacity.add_holding(held[key], (vm_size, priority, max_nodes), catalogs.get(region, {}))
    return {key: dict(cores) for key, cores in held.items() if cores}


def pending_by_team(catalogs: Catalogs | None = None) -> dict[TeamKey, Cores]:
    """Worst-case cores of the clusters of submitted requests (not yet approved), per team."""
    catalogs = capacity.sizes_by_region() if catalogs is None else catalogs
    found: dict[TeamKey, Cores] = defaultdict(lambda: defaultdict(int))
    submitted = ChangeRequest.objects.filter(status=ChangeRequest.Status.SUBMITTED).select_related(
        "workspace"
    )
    changed: list[tuple[TeamKey, int | None, Any]] = []
    for cr in submitted:
        spec = RequestSpec.from_json(cr.spec)
        team = capacity.request_team(spec, cr.workspace)
        if team is None:
            continue
        key = holder_key(team.department, team.team, team.project, team.region)
        for demand in capacity.cluster_demands(spec.clusters, team.region, catalogs.get(team.region, {}), []):
            found[key][(demand.family, demand.priority)] += demand.cores
        changed += [(key, cr.workspace_id, c) for c in spec.cluster_updates]
    _pending_changes(found, changed, catalogs)
    return {key: dict(cores) for key, cores in found.items()}


def _pending_changes(
    found: dict[TeamKey, Any], changed: list[tuple[TeamKey, int | None, Any]], catalogs: Catalogs
) -> None:
    """Day-2 changes waiting: a cluster's new worst case less its old one (one query for all of them)."""
    if not changed:
        return
    old: dict[tuple[int | None, str], tuple[str, str, int]] = {
        (workspace_id, name.lower()): (vm_size, priority, max_nodes)
        for workspace_id, name, vm_size, priority, max_nodes in Cluster.objects.filter(
            workspace_id__in={workspace_id for _, workspace_id, _ in changed}, state__in=capacity.HOLDING
        ).values_list("workspace_id", "name", "vm_size", "priority", "max_nodes")
    }
    for key, workspace_id, cluster in changed:
        sizes = catalogs.get(key[2], {})
        capacity.add_holding(found[key], (cluster.vm_size, cluster.priority, cluster.max_nodes), sizes)
        was = old.get((workspace_id, cluster.name.lower()))
        if was is not None:
            less: dict[tuple[str, str], int] = defaultdict(int)
            capacity.add_holding(less, was, sizes)
            for group, cores in less.items():  # a smaller cluster frees nothing until it is approved
                found[key][group] = max(found[key][group] - cores, 0)


def demands() -> Demands:
    """The held and pending cores of every team, with every region's size catalog read once."""
    catalogs = capacity.sizes_by_region()
    return Demands(held=held_by_team(catalogs), pending=pending_by_team(catalogs))


# What the figures are computed from, as (model, field) whose greatest value changes with them.
DEMANDS_SOURCES: tuple[tuple[Any, str], ...] = (
    (AuditEvent, "id"),
    (ChangeRequest, "updated_at"),
    (Cluster, "id"),
    (VmSize, "refreshed_at"),
    (CoreUsage, "refreshed_at"),
)
PAGE_SOURCES = (
    *DEMANDS_SOURCES,
    (ClusterFlag, "last_seen"),
    (ClusterFlag, "resolved_at"),
    (WorkspaceQuota, "applied_at"),
    (TeamBudget, "updated_at"),
)


def _version(sources: tuple[tuple[Any, str], ...]) -> str:
    """One query of each source's greatest value (each a MAX PostgreSQL answers from an index or a small
    table), written once as SQL: the ORM spent longer compiling nine subqueries than PostgreSQL running them."""
    quote = connection.ops.quote_name
    columns = ", ".join(
        f"(SELECT MAX({quote(model._meta.get_field(field).column)}) FROM {quote(model._meta.db_table)})"  # noqa: S608 # nosec B608
        for model, field in sources
    )
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {columns}")  # identifiers from the models' own metadata, quoted
        row = cursor.fetchone()
    return hashlib.sha256(repr(row).encode()).hexdigest()[:32]


def _demands_version() -> str:
    """What the held and pending cores, and the queue's verdicts, were computed from: any change to the
    clusters, workspaces, budgets, policies and requests they read is audited (the newest event), requests
    carry their last change, clusters their ids, the catalog and Azure's usages when they were read."""
    return _version(DEMANDS_SOURCES)


def page_version() -> str:
    """What the capacity page and the approval queue show was computed from (one query):
    ``_demands_version``'s sources, and the clusters the guard flags or clears, the workspace quotas Azure
    applies and the budgets, which change without an audit event of their own."""
    return _version(PAGE_SOURCES)


def demands_kept() -> Demands:
    """``demands()``, computed once per version of what it reads and kept in the cache (each web
    process computes the figures of 600 clusters and hundreds of waiting requests once, not per view)."""
    return cast(Demands, cache.get_or_set(f"capacity-demands:{_demands_version()}", demands, DEMANDS_SECONDS))


def verdicts_kept(requests: list[ChangeRequest], version: str | None = None) -> dict[int, capacity.Verdict]:
    """The queue's capacity verdicts of ``requests`` (``capacity.requests_checks`` reduced to what a row
    shows), computed once per version of what the checks read and kept in the cache: one query when kept,
    the checks' five when not. ``version``: a ``page_version()`` the caller has read (it covers as much)."""
    rows = repr([(cr.pk, cr.updated_at.isoformat()) for cr in requests])
    version = version or _demands_version()
    key = "queue-verdicts:" + hashlib.sha256(f"{version}|{rows}".encode()).hexdigest()[:40]

    def verdicts() -> dict[int, capacity.Verdict]:
        checks = capacity.requests_checks(requests)
        return {cr.pk: capacity.Verdict.of(RequestSpec.from_json(cr.spec), checks[cr.pk]) for cr in requests}

    return cast(dict[int, capacity.Verdict], cache.get_or_set(key, verdicts, DEMANDS_SECONDS))


def request_check_kept(cr: ChangeRequest, spec: RequestSpec) -> capacity.Check:
    """``capacity.request_check`` of a waiting request, kept per version of what checks read and of the
    request itself (its last change): a request's page is read far more often than its figures change."""
    version = f"{_demands_version()}|{cr.pk}|{cr.updated_at.isoformat()}"
    key = "request-check:" + hashlib.sha256(version.encode()).hexdigest()[:40]
    check = partial(capacity.request_check, spec, workspace=cr.workspace, request_id=cr.pk)
    return cast(capacity.Check, cache.get_or_set(key, check, DEMANDS_SECONDS))


@dataclass(frozen=True)
class _Usages:
    """Azure's usages of a region, read once: (used, limit) by (scope, family), summed over the
    subscriptions, which subscriptions reported, and when the latest was read."""

    figures: dict[tuple[str, str], tuple[int, int]]
    subscriptions: list[str]
    refreshed_at: datetime | None


def _usages(region: str, subscriptions: list[str]) -> _Usages:
    found: dict[tuple[str, str], tuple[int, int]] = {}
    seen: set[str] = set()
    latest: datetime | None = None
    for row in CoreUsage.objects.filter(region=region, subscription_id__in=subscriptions):
        used, limit = found.get((row.scope, row.family), (0, 0))
        found[(row.scope, row.family)] = (used + row.current, limit + row.limit)
        seen.add(row.subscription_id)
        latest = row.refreshed_at if latest is None else max(latest, row.refreshed_at)
    return _Usages(found, sorted(seen), latest)


def _budgets(region: str) -> dict[tuple[str, str], int]:
    """Cores given to teams in the region, by (family, priority), summed in the database."""
    found: dict[tuple[str, str], int] = {}
    sums = (
        TeamBudget.objects.filter(region=region)
        .order_by()
        .values("family")
        .annotate(dedicated=Sum("dedicated_cores"), low_priority=Sum("low_priority_cores"))
    )
    for row in sums:
        found[(row["family"], DEDICATED)] = row["dedicated"]
        found[(row["family"], LOW_PRIORITY)] = row["low_priority"]
    return found


def _total(
    key: str, label: str, priority: str, usage: tuple[int, int] | None, lines: Iterable[Figures]
) -> Figures:
    lines = list(lines)
    return Figures(
        key=key,
        label=label,
        priority=priority,
        used=usage[0] if usage else None,
        limit=usage[1] if usage else None,
        allocated=sum(f.allocated for f in lines),
        held=sum(f.held for f in lines),
        pending=sum(f.pending for f in lines),
    )


def region_capacity(region: AllowedRegion, found: Demands, subscriptions: list[str]) -> RegionCapacity:
    """The figures of one region (``found``: the portal's held and pending cores, computed once)."""
    read = _usages(region.name, subscriptions)
    usages = read.figures
    budgets = _budgets(region.name)
    held = found.in_region(found.held, region.name)
    pending = found.in_region(found.pending, region.name)
    family_names = {family for family, _ in [*budgets, *held, *pending]}
    family_names |= {family for scope, family in usages if scope == CoreUsage.Scope.FAMILY}

    def line(family: str, priority: str, usage: tuple[int, int] | None) -> Figures:
        return Figures(
            key=family,
            label=family_label(family),
            priority=priority,
            used=usage[0] if usage else None,
            limit=usage[1] if usage else None,
            allocated=budgets.get((family, priority), 0),
            held=held.get((family, priority), 0),
            pending=pending.get((family, priority), 0),
        )

    ordered = sorted(family_names, key=lambda f: family_label(f).lower())
    dedicated = [line(f, DEDICATED, usages.get((CoreUsage.Scope.FAMILY, f))) for f in ordered]
    low = [line(f, LOW_PRIORITY, None) for f in ordered]
    return RegionCapacity(
        region=region,
        subscriptions=read.subscriptions,
        refreshed_at=read.refreshed_at,
        catalog_refreshed_at=VmSize.objects.filter(region=region.name).aggregate(at=Max("refreshed_at"))[
            "at"
        ],
        families=[f for f in dedicated if f.shown],
        dedicated_total=_total(
            "dedicated_total",
            "All dedicated cores (regional total)",
            DEDICATED,
            usages.get((CoreUsage.Scope.DEDICATED_TOTAL, "")),
            dedicated,
        ),
        low_priority_total=_total(
            "low_priority_total",
            "All low-priority cores (regional total)",
            LOW_PRIORITY,
            usages.get((CoreUsage.Scope.LOW_PRIORITY_TOTAL, "")),
            low,
        ),
        low_priority_families=[f for f in low if f.shown],
    )


def _quota_states(budget: TeamBudget, workspaces: list[Workspace]) -> list[QuotaState]:
    """Azure's quota of the family in each of the team's active workspaces of the region."""
    states = []
    for ws in workspaces:
        quota = next((q for q in ws.quotas.all() if q.family == budget.family), None)
        if quota is None:
            states.append(QuotaState(ws.workspace_name, None, None, "", "", None))
        else:
            states.append(
                QuotaState(
                    ws.workspace_name,
                    quota.requested,
                    quota.applied,
                    quota.status,
                    quota.message,
                    quota.applied_at,
                )
            )
    return states


def budgets_matching(text: str = "") -> QuerySet[TeamBudget]:
    """Team budgets in table order, narrowed to teams whose ``department/team`` contains ``text``."""
    budgets = TeamBudget.objects.order_by("department", "team", "project", "region", "family")
    department, slash, team = text.strip().lower().partition("/")
    team, dot, project = team.partition(".")
    if slash and dot:
        return budgets.filter(department__iendswith=department, team=team, project__istartswith=project)
    if slash:
        return budgets.filter(department__iendswith=department, team__istartswith=team)
    if department:
        return budgets.filter(Q(department__icontains=department) | Q(team__icontains=department))
    return budgets


def budget_rows(found: Demands, budgets: Iterable[TeamBudget] | None = None) -> list[BudgetRow]:
    """Team budgets (every one, or those given: a page of them) with the team's held and pending cores of
    that family and the team's workspace quotas."""
    shown = list(budgets_matching() if budgets is None else budgets)
    keys = {holder_key(b.department, b.team, b.project, b.region) for b in shown}
    workspaces: dict[TeamKey, list[Workspace]] = defaultdict(list)
    purposes: dict[TeamKey, Workspace] = {}  # a live workspace of the holder: what it is for
    live = Workspace.objects.exclude(state__in=(ResourceState.REVOKED, ResourceState.DECOMMISSIONED)).filter(
        department__in={b.department for b in shown},
        team__in={b.team for b in shown},
    )
    for ws in live.order_by("workspace_name").prefetch_related("quotas"):
        key = holder_key(ws.department, ws.team, ws.project, ws.region)
        if key in keys:
            if ws.state == ResourceState.ACTIVE:
                workspaces[key].append(ws)
            if key not in purposes or ws.purpose == Purpose.POOL:
                purposes[key] = ws
    rows = []
    for budget in shown:
        key = holder_key(budget.department, budget.team, budget.project, budget.region)
        held, pending = found.held.get(key, {}), found.pending.get(key, {})
        kind = "project" if budget.project else "team"
        if key in purposes and purposes[key].purpose == Purpose.POOL:
            kind = "pool"
        described = purposes[key].purpose_text if key in purposes else ""
        rows.append(
            BudgetRow(
                budget=budget,
                family_label=family_label(budget.family),
                held_dedicated=held.get((budget.family, DEDICATED), 0),
                held_low_priority=held.get((budget.family, LOW_PRIORITY), 0),
                pending_dedicated=pending.get((budget.family, DEDICATED), 0),
                pending_low_priority=pending.get((budget.family, LOW_PRIORITY), 0),
                quotas=_quota_states(budget, workspaces.get(key, [])),
                kind=kind,
                purpose_text=described,
            )
        )
    return rows


def open_flags() -> list[ClusterFlag]:
    """Clusters in Azure that break policy and have not been fixed, most recently seen first."""
    return list(ClusterFlag.objects.filter(resolved_at__isnull=True).order_by("-last_seen", "workspace_name"))


def capacity_overview(*, budgets: Iterable[TeamBudget] | None = None) -> Overview:
    """The capacity page's figures for every active allowed region, team budgets (every one, or those
    given: the page shown) and open flags."""
    found = demands_kept()
    subscriptions = AllowedSubscription.active_ids()
    regions = AllowedRegion.objects.filter(is_active=True).order_by("display_name")
    return Overview(
        regions=[region_capacity(region, found, subscriptions) for region in regions],
        budgets=budget_rows(found, budgets),
        flags=open_flags(),
    )


def budget_choices_kept(version: str) -> dict[str, list[tuple[str, str]]]:
    """``budget_choices()`` kept per ``page_version()`` (every team's name, from 200 workspaces and 600
    budgets, is read once per change, not per view of the page)."""
    found = cache.get_or_set(f"budget-choices:{version}", budget_choices, DEMANDS_SECONDS)
    return cast(dict[str, list[tuple[str, str]]], found)


def budget_choices() -> dict[str, list[tuple[str, str]]]:
    """What the budget form offers: teams (from workspaces and budgets), active regions, catalog families."""
    holders = set(Workspace.objects.order_by().values_list("department", "team", "project").distinct())
    holders |= set(TeamBudget.objects.order_by().values_list("department", "team", "project").distinct())
    teams = {(d, f"{t}.{p}" if p else t) for d, t, p in holders}
    families = set(VmSize.objects.order_by().values_list("family", flat=True).distinct())
    families |= set(TeamBudget.objects.order_by().values_list("family", flat=True).distinct())
    return {
        "teams": [(f"{d}/{t}", f"{d}/{t}") for d, t in sorted(teams)],
        "regions": [
            (r.name, f"{r.display_name} ({r.name})")
            for r in AllowedRegion.objects.filter(is_active=True).order_by("display_name")
        ],
        "families": sorted(((f, family_label(f)) for f in families), key=lambda c: c[1].lower()),
    }
