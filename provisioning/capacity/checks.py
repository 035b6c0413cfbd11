"""Quota and budget arithmetic: what a request's clusters would take, and what is left.

A cluster can take ``max nodes x vCPUs`` cores at worst. That worst case is checked against two
limits, dedicated and low-priority apart:

- the team's budget in the region and VM family (``TeamBudget``), less the worst case of the team's
  clusters the portal already holds there (approved, provisioning or active). The holder is the workspace's
  team, or its project for a project workspace (``Team.project``: the project's own budget, its clusters
  never counted against the team's); a pool is a team named for the pool;
- the subscription's quota in the region as Azure last reported it (``CoreUsage``): the VM family's
  dedicated limit and the regional dedicated total, or the regional low-priority total, less what is
  in use now.

Over either limit, the environment's policy either refuses the cluster (a problem on its max nodes
field, with the numbers) or lets it through with a second admin's approval. No Azure call is made
here: the catalog and usages are refreshed by workers (``provisioning.engine.capacity_sync``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from functools import reduce
from operator import or_

from django.db.models import Q

from provisioning.arm import family_label
from provisioning.models import (
    ChangeRequest,
    Cluster,
    CoreUsage,
    EnvironmentPolicy,
    OverBudget,
    Priority,
    ResourceState,
    TeamBudget,
    VmSize,
    Workspace,
)
from provisioning.models.quota_requests import LOW_PRIORITY_RESOURCE
from provisioning.problems import Problem
from provisioning.spec import ClusterSpec, RequestSpec

HOLDING = (ResourceState.PENDING, ResourceState.PROVISIONING, ResourceState.ACTIVE)
PRIORITY_WORDS = {Priority.DEDICATED: "dedicated", Priority.LOW_PRIORITY: "low-priority"}


@dataclass(frozen=True)
class Team:
    """A budget holder: a team as the naming convention has it, or one of its projects (``project``: a
    project workspace holds against its project's budget, never the team's); a pool is a team (its name).
    Budgets are per holder, region and family."""

    department: str
    team: str
    region: str
    project: str = ""

    def __str__(self) -> str:
        return f"{self.department}/{self.team}" + (f".{self.project}" if self.project else "")

    @property
    def whose(self) -> str:
        """The holder in words: "team bgmr/blue" or "project churn of team bgmr/blue"."""
        if self.project:
            return f"project {self.project} of team {self.department}/{self.team}"
        return f"team {self.department}/{self.team}"


@dataclass(frozen=True)
class Demand:
    """One cluster's worst case: every node up.

    ``at`` is the request field it comes from (``clusters.0``, or ``cluster_updates.0`` for an existing
    cluster's new settings); ``was`` is such a cluster's old worst case in the same family and priority
    (0 otherwise), which the subscription's quota, counting what runs now, already carries.
    """

    index: int
    name: str
    vm_size: str
    family: str
    vcpus: int
    gpus: int
    priority: str
    max_nodes: int
    at: str = ""
    was: int = 0

    @property
    def cores(self) -> int:
        return self.max_nodes * self.vcpus

    @property
    def growth(self) -> int:
        """The cores this cluster adds to its family's worst case (all of them for a new cluster)."""
        return max(self.cores - self.was, 0)


@dataclass(frozen=True)
class Line:
    """One limit checked: who holds it, how many cores the request asks, how many are used, the limit."""

    holder: str  # "team" or "subscription"
    label: str  # e.g. "Standard DSv2 Family, dedicated" or "all dedicated cores"
    asked: int
    used: int
    limit: int
    clusters: tuple[int, ...] = ()
    # The Quota API's resource name for a subscription line more quota can be asked for (a VM family, or
    # TotalLowPriorityCores); "" for a team's budget and the regional dedicated total.
    family: str = ""

    @property
    def left(self) -> int:
        return max(self.limit - self.used, 0)

    @property
    def shortfall(self) -> int:
        """How many cores past the limit the request would go (0 when it fits)."""
        return max(self.asked + self.used - self.limit, 0)

    @property
    def fits(self) -> bool:
        return self.asked <= self.limit - self.used

    def sentence(self, team: Team) -> str:
        whose = f"{team.whose}'s budget" if self.holder == "team" else "the subscription's quota"
        return (
            f"asks {self.asked} {self.label} cores in {team.region}; {whose} has {self.used} of "
            f"{self.limit} used, {self.left} left"
        )


@dataclass
class Check:
    """The outcome of checking a request's clusters against budgets and quotas."""

    team: Team | None
    policy: EnvironmentPolicy | None
    demands: list[Demand] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # What the check read, for the rest of the action to use rather than read again; None when it did not
    # read them (no team, or no clusters), and then ``policy`` was not read either.
    sizes: dict[str, VmSize] | None = None
    budgets: list[TeamBudget] | None = None
    # Existing clusters a change request updates or deletes (their old worst case no longer counts).
    replaced: tuple[int, ...] = ()

    @property
    def over(self) -> list[Line]:
        return [line for line in self.lines if not line.fits]

    @property
    def needs_second_approval(self) -> bool:
        return (
            bool(self.over)
            and self.policy is not None
            and self.policy.over_budget == OverBudget.SECOND_APPROVAL
        )

    def problems(self) -> list[Problem]:
        """The lines over their limit, as problems on the clusters' max nodes (when policy refuses)."""
        if self.team is None or not self.over or self.needs_second_approval:
            return []
        return self.over_problems()

    def over_problems(self) -> list[Problem]:
        """Every line over its limit, as a problem per cluster taking part in it."""
        assert self.team is not None  # nosec B101 # the team is set whenever budgets are checked (mypy narrowing)
        found = []
        fields = {d.index: d.at or f"clusters.{d.index}" for d in self.demands}
        for line in self.over:
            for index in line.clusters:
                found.append(
                    Problem(f"{fields.get(index, f'clusters.{index}')}.max_nodes", line.sentence(self.team))
                )
        return found


def catalog_known(region: str) -> bool:
    """Whether the size catalog of the region has been read from Azure."""
    return VmSize.objects.filter(region=region).exists()


def region_sizes(region: str) -> dict[str, VmSize]:
    """The size catalog of a region, by name."""
    return {s.name: s for s in VmSize.objects.filter(region=region)}


def sizes_by_region() -> dict[str, dict[str, VmSize]]:
    """Every region's size catalog, by region and name, in one query."""
    found: dict[str, dict[str, VmSize]] = defaultdict(dict)
    for size in VmSize.objects.all():
        found[size.region][size.name] = size
    return found


def cluster_demands(
    clusters: Iterable[ClusterSpec], region: str, sizes: dict[str, VmSize], notes: list[str]
) -> list[Demand]:
    """The worst case of each cluster whose size the region's catalog (``sizes``) knows; a note for the rest."""
    found = []
    for i, c in enumerate(clusters):
        size = sizes.get(c.vm_size.upper())
        if size is None:
            notes.append(
                f"{c.vm_size.upper()} is not in the size catalog of {region}: its cores are not counted"
            )
            continue
        found.append(
            Demand(i, c.name, size.name, size.family, size.vcpus, size.gpus, c.priority, c.max_nodes)
        )
    return found


@dataclass(frozen=True)
class HeldCluster:
    """A cluster the portal holds (approved, provisioning or active), as a capacity check reads it."""

    pk: int
    workspace_id: int
    change_request_id: int | None
    name: str
    vm_size: str
    priority: str
    max_nodes: int


def _team_filter(teams: Collection[Team], prefix: str = "") -> Q:
    """Rows of any of ``teams`` and possibly a few more: each of department, team, project and region in
    the teams' values (``prefix``: through a relation). Callers keep the rows of ``teams`` only.

    Four IN lists rather than one OR of a condition per team: the same rows found by the same indexes,
    but a page of 25 teams no longer spends more time compiling its SQL than running it."""
    return Q(
        **{
            f"{prefix}department__in": sorted({t.department for t in teams}),
            f"{prefix}team__in": sorted({t.team for t in teams}),
            f"{prefix}project__in": sorted({t.project for t in teams}),
            f"{prefix}region__in": sorted({t.region for t in teams}),
        }
    )


def _held_clusters(teams: Collection[Team]) -> dict[Team, list[HeldCluster]]:
    """The clusters the portal holds for each of ``teams`` (one query)."""
    found: dict[Team, list[HeldCluster]] = defaultdict(list)
    rows = (
        Cluster.objects.filter(state__in=HOLDING)
        .filter(_team_filter(teams, "workspace__"))
        .values_list(
            "pk",
            "workspace_id",
            "change_request_id",
            "name",
            "vm_size",
            "priority",
            "max_nodes",
            "workspace__department",
            "workspace__team",
            "workspace__region",
            "workspace__project",
        )
    )
    wanted = set(teams)
    for pk, workspace_id, request_id, name, vm_size, priority, max_nodes, *holder in rows:
        team = Team(*holder)
        if team in wanted:
            found[team].append(HeldCluster(pk, workspace_id, request_id, name, vm_size, priority, max_nodes))
    return found


def _held(
    clusters: Iterable[HeldCluster],
    sizes: dict[str, VmSize],
    exclude_request_id: int | None,
    exclude_clusters: Iterable[int],
) -> dict[tuple[str, str], int]:
    held: dict[tuple[str, str], int] = defaultdict(int)
    excluded = set(exclude_clusters)
    for c in clusters:
        if c.pk in excluded or (exclude_request_id is not None and c.change_request_id == exclude_request_id):
            continue
        add_holding(held, (c.vm_size, c.priority, c.max_nodes), sizes)
    return held


def add_holding(
    held: dict[tuple[str, str], int], cluster: tuple[str, str, int], sizes: dict[str, VmSize]
) -> None:
    """Add a cluster's worst case, given as (VM size, priority, max nodes), to ``held`` (nothing when the
    catalog does not know its size)."""
    vm_size, priority, max_nodes = cluster
    size = sizes.get(vm_size.upper())
    if size is not None:
        held[(size.family, priority)] += max_nodes * size.vcpus


def team_budgets(team: Team) -> list[TeamBudget]:
    """The team's budgets in its region, by family."""
    budgets = TeamBudget.objects.filter(
        department=team.department, team=team.team, project=team.project, region=team.region
    )
    return list(budgets.order_by("family"))


def _team_lines(
    check: Check,
    groups: dict[tuple[str, str], list[Demand]],
    request_id: int | None,
    clusters: list[HeldCluster],
) -> list[Line]:
    team = check.team
    assert team is not None and check.budgets is not None and check.sizes is not None  # nosec B101 # a check made for a team carries its budgets and sizes (mypy narrowing)
    budgets = {b.family: b for b in check.budgets}
    held = _held(clusters, check.sizes, request_id, check.replaced)
    lines = []
    for (family, priority), demands in sorted(groups.items()):
        budget = budgets.get(family)
        if budget is None:
            continue
        limit = budget.dedicated_cores if priority == Priority.DEDICATED else budget.low_priority_cores
        lines.append(
            Line(
                "team",
                f"{family_label(family)} {PRIORITY_WORDS[Priority(priority)]}",
                sum(d.cores for d in demands),
                held[(family, priority)],
                limit,
                tuple(d.index for d in demands),
            )
        )
    return lines


def _subscription_lines(
    usage: dict[tuple[str, str], CoreUsage],
    region: str,
    groups: dict[tuple[str, str], list[Demand]],
    notes: list[str],
) -> list[Line]:
    if not usage:
        notes.append(
            f"the subscription's usage in {region} has not been read from Azure yet: quota not checked"
        )
        return []
    lines = []
    dedicated = [d for (_, priority), ds in groups.items() if priority == Priority.DEDICATED for d in ds]
    low = [d for (_, priority), ds in groups.items() if priority == Priority.LOW_PRIORITY for d in ds]
    for (family, priority), demands in sorted(groups.items()):
        row = usage.get((CoreUsage.Scope.FAMILY, family))
        if priority == Priority.DEDICATED and row is not None:
            lines.append(_usage_line(row, f"{family_label(family)} dedicated", demands, family))
        elif priority == Priority.DEDICATED:
            notes.append(f"Azure reported no quota for {family_label(family)} in {region}")
    totals = (
        (CoreUsage.Scope.DEDICATED_TOTAL, "dedicated (regional total)", dedicated, ""),
        (CoreUsage.Scope.LOW_PRIORITY_TOTAL, "low-priority (regional total)", low, LOW_PRIORITY_RESOURCE),
    )
    for scope, label, demands, resource in totals:
        row = usage.get((scope, ""))
        if demands and row is not None:
            lines.append(_usage_line(row, label, demands, resource))
    return lines


def _usage_line(row: CoreUsage, label: str, demands: list[Demand], family: str) -> Line:
    return Line(
        "subscription",
        label,
        sum(d.growth for d in demands),
        row.current,
        row.limit,
        tuple(d.index for d in demands),
        family,
    )


def request_team(spec: RequestSpec, workspace: Workspace | None) -> Team | None:
    """The team a request's clusters belong to (no query: from the spec, else the workspace)."""
    where = _where(spec, workspace)
    return where[0] if where else None


Where = tuple[Team, str, str]  # the team, its subscription and its environment


def _where(spec: RequestSpec, workspace: Workspace | None) -> Where | None:
    """The team, subscription and environment a request's clusters belong to."""
    if spec.workspace is not None:
        inp = spec.workspace.naming_input()  # a project only for a project workspace
        team = Team(inp.department, inp.team, inp.region, inp.project)
        return team, spec.workspace.subscription_id, inp.environment
    if workspace is not None:
        return (
            Team(workspace.department, workspace.team, workspace.region, workspace.project),
            workspace.subscription_id,
            workspace.environment,
        )
    return None


@dataclass
class Readings:
    """What checking requests reads, each table once for every team checked (``read``)."""

    sizes: dict[str, dict[str, VmSize]] = field(default_factory=dict)  # by region, then size name
    policies: dict[str, EnvironmentPolicy] = field(default_factory=dict)  # by environment
    budgets: dict[Team, list[TeamBudget]] = field(default_factory=dict)  # in family order
    clusters: dict[Team, list[HeldCluster]] = field(default_factory=dict)
    usage: dict[tuple[str, str], dict[tuple[str, str], CoreUsage]] = field(default_factory=dict)


def read(wheres: Collection[Where]) -> Readings:
    """The catalogs, policies, budgets, held clusters and usages that checking requests of ``wheres``
    needs: five queries, however many requests, teams and regions."""
    if not wheres:
        return Readings()
    teams = {team for team, _, _ in wheres}
    found = Readings(clusters=_held_clusters(teams))
    for size in VmSize.objects.filter(region__in={t.region for t in teams}):
        found.sizes.setdefault(size.region, {})[size.name] = size
    environments = {environment for _, _, environment in wheres}
    found.policies = {
        p.environment: p for p in EnvironmentPolicy.objects.filter(environment__in=environments)
    }
    for budget in TeamBudget.objects.filter(_team_filter(teams)).order_by("family"):
        holder = Team(budget.department, budget.team, budget.region, budget.project)
        if holder in teams:
            found.budgets.setdefault(holder, []).append(budget)
    places = {(subscription, team.region) for team, subscription, _ in wheres}
    usages = CoreUsage.objects.filter(reduce(or_, (Q(subscription_id=s, region=r) for s, r in places)))
    for u in usages:
        found.usage.setdefault((u.subscription_id, u.region), {})[(u.scope, u.family)] = u
    return found


def asks_cores(spec: RequestSpec) -> bool:
    """Whether a request asks for cores: new clusters, or new settings of existing ones."""
    return bool(spec.clusters or spec.cluster_updates)


def request_check(
    spec: RequestSpec, *, workspace: Workspace | None = None, request_id: int | None = None
) -> Check:
    """Check a request's clusters against its team's budget and its subscription's quota."""
    where = _where(spec, workspace)
    if where is None or not asks_cores(spec):
        return Check(team=where[0] if where else None, policy=None)
    return _check(spec, where, workspace, request_id, read([where]))


def requests_checks(requests: Iterable[ChangeRequest]) -> dict[int, Check]:
    """``request_check`` of each request (their workspaces loaded), in a fixed number of queries."""
    asked: list[tuple[ChangeRequest, RequestSpec, Where | None]] = []
    for cr in requests:
        spec = RequestSpec.from_json(cr.spec)
        asked.append((cr, spec, _where(spec, cr.workspace)))
    readings = read({where for _, spec, where in asked if where is not None and asks_cores(spec)})
    checks = {}
    for cr, spec, where in asked:
        if where is None or not asks_cores(spec):
            checks[cr.pk] = Check(team=where[0] if where else None, policy=None)
        else:
            checks[cr.pk] = _check(spec, where, cr.workspace, cr.pk, readings)
    return checks


@dataclass(frozen=True)
class Verdict:
    """What the approval queue's row needs of a request's capacity check."""

    asks: bool  # the request asks for cores
    over: bool  # a line goes over its budget or quota
    refused: bool  # the environment's policy refuses it (``Check.problems()``)
    notes: bool  # capacity could not be checked in full

    @classmethod
    def of(cls, spec: RequestSpec, check: Check) -> Verdict:
        return cls(asks_cores(spec), bool(check.over), bool(check.problems()), bool(check.notes))


def _check(
    spec: RequestSpec, where: Where, workspace: Workspace | None, request_id: int | None, readings: Readings
) -> Check:
    team, subscription, environment = where
    sizes = readings.sizes.get(team.region, {})
    clusters = readings.clusters.get(team, [])
    check = Check(
        team=team,
        policy=readings.policies.get(environment),
        sizes=sizes,
        budgets=readings.budgets.get(team, []),
    )
    check.demands = cluster_demands(spec.clusters, team.region, sizes, check.notes)
    if workspace is not None and (spec.cluster_updates or spec.cluster_deletes):
        check.demands += _change_demands(spec, workspace, sizes, check, clusters)
    groups: dict[tuple[str, str], list[Demand]] = defaultdict(list)
    for demand in check.demands:
        groups[(demand.family, demand.priority)].append(demand)
    check.lines = _team_lines(check, groups, request_id, clusters) + _subscription_lines(
        readings.usage.get((subscription, team.region), {}), team.region, groups, check.notes
    )
    if not any(line.holder == "team" for line in check.lines) and groups:
        check.notes.append(f"{team.whose} has no budget in {team.region} for these VM families")
    return check


def _change_demands(
    spec: RequestSpec,
    workspace: Workspace,
    sizes: dict[str, VmSize],
    check: Check,
    clusters: list[HeldCluster],
) -> list[Demand]:
    """The new worst case of each cluster a change updates, in place of its old one."""
    changed = {c.name.lower() for c in spec.cluster_updates} | {n.lower() for n in spec.cluster_deletes}
    rows = {
        c.name.lower(): c for c in clusters if c.workspace_id == workspace.pk and c.name.lower() in changed
    }
    check.replaced = tuple(c.pk for c in rows.values())
    offset = len(spec.clusters)
    found = []
    for demand in cluster_demands(spec.cluster_updates, workspace.region, sizes, check.notes):
        old = rows.get(demand.name.lower())
        was = 0
        if old is not None:
            size = sizes.get(old.vm_size.upper())
            if size is not None and (size.family, old.priority) == (demand.family, demand.priority):
                was = old.max_nodes * size.vcpus
        found.append(
            replace(demand, index=offset + demand.index, at=f"cluster_updates.{demand.index}", was=was)
        )
    return found
