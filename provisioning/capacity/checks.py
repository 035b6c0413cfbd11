"""Quota and budget arithmetic: what a request's clusters would take, and what is left.

A cluster can take ``max nodes x vCPUs`` cores at worst. That worst case is checked against two
limits, dedicated and low-priority apart:

- the team's budget in the region and VM family (``TeamBudget``), less the worst case of the team's
  clusters the portal already holds there (approved, provisioning or active);
- the subscription's quota in the region as Azure last reported it (``CoreUsage``): the VM family's
  dedicated limit and the regional dedicated total, or the regional low-priority total, less what is
  in use now.

Over either limit, the environment's policy either refuses the cluster (a problem on its max nodes
field, with the numbers) or lets it through with a second admin's approval. No Azure call is made
here: the catalog and usages are refreshed by workers (``provisioning.engine.capacity_sync``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

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
from provisioning.problems import Problem
from provisioning.spec import ClusterSpec, RequestSpec

HOLDING = (ResourceState.PENDING, ResourceState.PROVISIONING, ResourceState.ACTIVE)
PRIORITY_WORDS = {Priority.DEDICATED: "dedicated", Priority.LOW_PRIORITY: "low-priority"}


@dataclass(frozen=True)
class Team:
    """A team as the naming convention has it; budgets are per team, region and family."""

    department: str
    team: str
    region: str

    def __str__(self) -> str:
        return f"{self.department}/{self.team}"


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
        whose = f"team {team}'s budget" if self.holder == "team" else "the subscription's quota"
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


def team_holding(
    team: Team,
    *,
    exclude_request_id: int | None = None,
    sizes: dict[str, VmSize] | None = None,
    exclude_clusters: Iterable[int] = (),
) -> dict[tuple[str, str], int]:
    """Worst-case cores of the clusters the portal holds for a team in its region, by (family, priority).

    ``sizes``: the region's catalog when the caller has read it already. ``exclude_clusters``: clusters a
    change request updates or deletes (their new worst case is the request's demand, not an addition).
    """
    sizes = region_sizes(team.region) if sizes is None else sizes
    held: dict[tuple[str, str], int] = defaultdict(int)
    clusters = Cluster.objects.filter(
        workspace__department=team.department,
        workspace__team=team.team,
        workspace__region=team.region,
        state__in=HOLDING,
    )
    if exclude_request_id is not None:
        clusters = clusters.exclude(change_request_id=exclude_request_id)
    if exclude_clusters:
        clusters = clusters.exclude(pk__in=list(exclude_clusters))
    for vm_size, priority, max_nodes in clusters.values_list("vm_size", "priority", "max_nodes"):
        add_holding(held, (vm_size, priority, max_nodes), sizes)
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
    budgets = TeamBudget.objects.filter(department=team.department, team=team.team, region=team.region)
    return list(budgets.order_by("family"))


def _team_lines(
    check: Check, groups: dict[tuple[str, str], list[Demand]], request_id: int | None
) -> list[Line]:
    team = check.team
    assert team is not None and check.budgets is not None and check.sizes is not None  # nosec B101 # a check made for a team carries its budgets and sizes (mypy narrowing)
    budgets = {b.family: b for b in check.budgets}
    held = team_holding(
        team, exclude_request_id=request_id, sizes=check.sizes, exclude_clusters=check.replaced
    )
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
    subscription: str, region: str, groups: dict[tuple[str, str], list[Demand]], notes: list[str]
) -> list[Line]:
    usage = {
        (u.scope, u.family): u for u in CoreUsage.objects.filter(subscription_id=subscription, region=region)
    }
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
            lines.append(_usage_line(row, f"{family_label(family)} dedicated", demands))
        elif priority == Priority.DEDICATED:
            notes.append(f"Azure reported no quota for {family_label(family)} in {region}")
    totals = (
        (CoreUsage.Scope.DEDICATED_TOTAL, "dedicated (regional total)", dedicated),
        (CoreUsage.Scope.LOW_PRIORITY_TOTAL, "low-priority (regional total)", low),
    )
    for scope, label, demands in totals:
        row = usage.get((scope, ""))
        if demands and row is not None:
            lines.append(_usage_line(row, label, demands))
    return lines


def _usage_line(row: CoreUsage, label: str, demands: list[Demand]) -> Line:
    return Line(
        "subscription",
        label,
        sum(d.growth for d in demands),
        row.current,
        row.limit,
        tuple(d.index for d in demands),
    )


def request_team(spec: RequestSpec, workspace: Workspace | None) -> Team | None:
    """The team a request's clusters belong to (no query: from the spec, else the workspace)."""
    where = _where(spec, workspace)
    return where[0] if where else None


def _where(spec: RequestSpec, workspace: Workspace | None) -> tuple[Team, str, str] | None:
    """The team, subscription and environment a request's clusters belong to."""
    if spec.workspace is not None:
        inp = spec.workspace.naming_input()
        return Team(inp.department, inp.team, inp.region), spec.workspace.subscription_id, inp.environment
    if workspace is not None:
        return (
            Team(workspace.department, workspace.team, workspace.region),
            workspace.subscription_id,
            workspace.environment,
        )
    return None


def request_check(
    spec: RequestSpec, *, workspace: Workspace | None = None, request_id: int | None = None
) -> Check:
    """Check a request's clusters against its team's budget and its subscription's quota."""
    where = _where(spec, workspace)
    if where is None or not (spec.clusters or spec.cluster_updates):
        return Check(team=where[0] if where else None, policy=None)
    team, subscription, environment = where
    sizes = region_sizes(team.region)
    check = Check(
        team=team,
        policy=EnvironmentPolicy.objects.filter(environment=environment).first(),
        sizes=sizes,
        budgets=team_budgets(team),
    )
    check.demands = cluster_demands(spec.clusters, team.region, sizes, check.notes)
    if workspace is not None and (spec.cluster_updates or spec.cluster_deletes):
        check.demands += _change_demands(spec, workspace, sizes, check)
    groups: dict[tuple[str, str], list[Demand]] = defaultdict(list)
    for demand in check.demands:
        groups[(demand.family, demand.priority)].append(demand)
    check.lines = _team_lines(check, groups, request_id) + _subscription_lines(
        subscription, team.region, groups, check.notes
    )
    if not any(line.holder == "team" for line in check.lines) and groups:
        check.notes.append(f"team {team} has no budget in {team.region} for these VM families")
    return check


def _change_demands(
    spec: RequestSpec, workspace: Workspace, sizes: dict[str, VmSize], check: Check
) -> list[Demand]:
    """The new worst case of each cluster a change updates, in place of its old one (one query)."""
    changed = {c.name.lower() for c in spec.cluster_updates} | {n.lower() for n in spec.cluster_deletes}
    rows = {
        c.name.lower(): c
        for c in Cluster.objects.filter(workspace=workspace, state__in=HOLDING)
        if c.name.lower() in changed
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


def change_request_check(cr: ChangeRequest) -> Check:
    return request_check(RequestSpec.from_json(cr.spec), workspace=cr.workspace, request_id=cr.pk)
