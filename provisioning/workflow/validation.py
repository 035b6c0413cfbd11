"""Checks a request spec against policy, Azure's naming rules and what the portal already holds.

Every problem names the field it belongs to, as a path the form and the config importer both
understand: ``workspace.team``, ``clusters.1.name``, ``members.0.principal``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db.models import Q

from provisioning import naming
from provisioning.capacity import checks as capacity
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    ChangeRequest,
    Cluster,
    EnvironmentPolicy,
    Membership,
    Policy,
    Priority,
    Purpose,
    ResourceState,
    TeamBudget,
    VmSize,
    Workspace,
)
from provisioning.problems import Problem, text_problem
from provisioning.spec import (
    PERSONAS,
    POOL_TEAMS_MAX,
    PRIORITIES,
    PURPOSES,
    ClusterSpec,
    MemberSpec,
    RequestSpec,
    WorkspaceSpec,
)
from provisioning.workflow import changes, key_vaults

# A UPN or an email address: local part, "@", a domain with at least one dot.
PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9._%+'#-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
GROUP_RE = re.compile(r"^[^\x00-\x1f]{1,256}$")
MAX_IDLE_SECONDS = 7 * 24 * 3600
MIN_JUSTIFICATION = 15


# Hard bounds of one request, enforced when it is saved (a draft too), whatever sent it: the form, the
# config import, the command line, the API. Policy's own limits (fewer clusters, nodes) come on top.
MAX_MEMBERS_PER_REQUEST = 200
MAX_CLUSTERS_PER_REQUEST = 50
MAX_COUNT = 1_000_000
WORKSPACE_FIELD_MAX = {
    "subscription_id": 64,
    "region": 64,
    "department": 32,
    "team": 64,
    "region_abbv": 8,
    "environment": 8,
    "custom_name": 64,
    "security_group": 256,
    "purpose": 16,
    "project": 32,
}
POOL_TEAM_MAX = 64  # one "department/team" of a pool, before the naming rules apply
CLUSTER_FIELD_MAX = {"name": 64, "vm_size": 64, "priority": 32}
MAX_JUSTIFICATION = 1000
MAX_PRINCIPAL = 256
# A membership asked for longer than ten years is a typo, whatever the policy.
MAX_MEMBER_DAYS = 3650


def _count_problems(spec: RequestSpec) -> list[Problem]:
    counts = (
        ("members", len(spec.members) + len(spec.persona_changes), MAX_MEMBERS_PER_REQUEST, "members"),
        ("revoke", len(spec.revoke), MAX_MEMBERS_PER_REQUEST, "revocations"),
        ("clusters", len(spec.clusters) + len(spec.cluster_updates), MAX_CLUSTERS_PER_REQUEST, "clusters"),
        ("cluster_deletes", len(spec.cluster_deletes), MAX_CLUSTERS_PER_REQUEST, "cluster deletions"),
    )
    return [
        Problem(field, f"{count} {what} in one request: at most {limit}; split it into several requests")
        for field, count, limit, what in counts
        if count > limit
    ]


def bounds_problems(spec: RequestSpec) -> list[Problem]:
    """What no request may hold, even as a draft: too many rows, too long or unsafe text, absurd numbers."""
    problems = _count_problems(spec)
    if problems:
        return problems  # the rows are not read one by one
    found: list[Problem | None] = []
    if spec.workspace is not None:
        for name, limit in WORKSPACE_FIELD_MAX.items():
            found.append(
                text_problem(f"workspace.{name}", str(getattr(spec.workspace, name)), max_length=limit)
            )
        found += _pool_teams_bounds(spec.workspace.pool_teams)
    for prefix, clusters in (("clusters", spec.clusters), ("cluster_updates", spec.cluster_updates)):
        for i, c in enumerate(clusters):
            for name, limit in CLUSTER_FIELD_MAX.items():
                found.append(text_problem(f"{prefix}.{i}.{name}", str(getattr(c, name)), max_length=limit))
            found.append(
                text_problem(
                    f"{prefix}.{i}.justification",
                    c.justification,
                    max_length=MAX_JUSTIFICATION,
                    multiline=True,
                )
            )
            for name in ("max_nodes", "min_nodes", "idle_seconds"):
                value = getattr(c, name)
                if not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                    found.append(
                        Problem(f"{prefix}.{i}.{name}", f"{name.replace('_', ' ')} must be 0 to {MAX_COUNT}")
                    )
    for i, name in enumerate(spec.cluster_deletes):
        found.append(
            text_problem(
                f"cluster_deletes.{i}", name, max_length=CLUSTER_FIELD_MAX["name"], label="cluster name"
            )
        )
    for prefix, members in (("members", spec.members), ("persona_changes", spec.persona_changes)):
        for i, m in enumerate(members):
            found.append(
                text_problem(f"{prefix}.{i}.principal", m.principal, max_length=MAX_PRINCIPAL, label="member")
            )
            found.append(text_problem(f"{prefix}.{i}.persona", m.persona, max_length=32, label="persona"))
            if m.days is not None and (
                isinstance(m.days, bool) or not isinstance(m.days, int) or not 1 <= m.days <= MAX_MEMBER_DAYS
            ):
                found.append(Problem(f"{prefix}.{i}.days", f"days must be 1 to {MAX_MEMBER_DAYS}"))
    return [p for p in found if p is not None]


def _pool_teams_bounds(pool_teams: tuple[str, ...]) -> list[Problem | None]:
    if len(pool_teams) > POOL_TEAMS_MAX:
        return [
            Problem("workspace.pool_teams", f"{len(pool_teams)} teams: a pool names at most {POOL_TEAMS_MAX}")
        ]
    return [
        text_problem(f"workspace.pool_teams.{i}", str(t), max_length=POOL_TEAM_MAX, label="team")
        for i, t in enumerate(pool_teams)
    ]


DEPARTMENT_RE = re.compile(r"[a-z][a-z0-9]{0,3}")
TEAM_RE = re.compile(r"[a-z0-9]{1,24}")


def _purpose_problems(ws: WorkspaceSpec) -> list[Problem]:
    """What the workspace is for: a project needs its short name (the naming rules check it), a pool its
    teams (each "department/team", known to the portal); the other purposes' fields stay empty."""
    if ws.purpose not in PURPOSES:
        return [Problem("workspace.purpose", f"a workspace is for one of: {', '.join(PURPOSES)}")]
    problems = []
    if ws.purpose == "project" and not ws.project.strip():
        problems.append(Problem("workspace.project", "a project workspace needs the project's short name"))
    if ws.purpose != "project" and ws.project.strip():
        problems.append(Problem("workspace.project", "only a project workspace has a project's short name"))
    if ws.purpose != "pool" and ws.pool_teams:
        problems.append(Problem("workspace.pool_teams", "only a shared pool names the teams that use it"))
    if ws.purpose == "pool":
        problems += _pool_team_problems(ws)
    return problems


def _pool_team_problems(ws: WorkspaceSpec) -> list[Problem]:
    """A pool's teams: at least one, each "department/team", each a team the portal knows (one with a
    workspace or a budget), never the pool itself."""
    if not ws.pool_teams:
        return [Problem("workspace.pool_teams", "a pool needs at least one team that may use it")]
    problems, asked = [], {}
    pool = (ws.department.strip().lower(), ws.team.strip().lower())
    for i, text in enumerate(ws.pool_teams):
        department, slash, team = str(text).strip().lower().partition("/")
        if not (slash and DEPARTMENT_RE.fullmatch(department) and TEAM_RE.fullmatch(team)):
            problems.append(
                Problem(
                    f"workspace.pool_teams.{i}", f"'{text}' is not department/team (e.g. bgmr/bluegranit)"
                )
            )
        elif (department, team) == pool:
            problems.append(Problem(f"workspace.pool_teams.{i}", "a pool is not one of its own teams"))
        else:
            asked[(department, team)] = i
    if asked:
        known = known_teams(asked)
        problems += [
            Problem(
                f"workspace.pool_teams.{i}",
                f"'{d}/{t}' is not a team the portal knows (no workspace and no budget)",
            )
            for (d, t), i in asked.items()
            if (d, t) not in known
        ]
    return problems


def known_teams(teams: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Those of ``teams`` (department, team) the portal knows: a live workspace of theirs, or a budget."""
    q = Q()
    for department, team in teams:
        q |= Q(department=department, team=team)
    found = set(
        Workspace.objects.filter(q)
        .exclude(state__in=(ResourceState.REVOKED, ResourceState.DECOMMISSIONED))
        .values_list("department", "team")
    )
    return found | set(TeamBudget.objects.filter(q).values_list("department", "team"))


def _pool_member_problems(members: Iterable[MemberSpec], workspace: Workspace | None) -> list[Problem]:
    """Access to a pool: only members (any persona, live) of a workspace of one of its teams, or of the
    pool already."""
    members = list(members)
    if workspace is None or workspace.purpose != Purpose.POOL or not members:
        return []
    q = Q(pk=workspace.pk)
    for department, team in workspace.pool_team_pairs():
        q |= Q(department=department, team=team)
    allowed = {
        n.lower()
        for n in Membership.objects.filter(workspace__in=Workspace.objects.filter(q))
        .exclude(state=ResourceState.REVOKED)
        .values_list("principal_name", flat=True)
    }
    teams = ", ".join(workspace.pool_teams) or "(none)"
    return [
        Problem(
            f"members.{i}.principal",
            f"'{m.principal}' is not a member of a workspace of the pool's teams ({teams}): "
            "only their people may use the pool",
        )
        for i, m in enumerate(members)
        if m.principal.lower() not in allowed
    ]


def _member_days_problems(members: Iterable[MemberSpec], environment: str) -> list[Problem]:
    """A member may ask fewer days than the environment's default for their persona, never more."""
    asking = [(i, m) for i, m in enumerate(members) if m.days is not None]
    if not asking or not environment:
        return []
    policy = EnvironmentPolicy.read(environment)
    problems = []
    for i, m in asking:
        default, _ = policy.membership_days(m.persona)
        if isinstance(m.days, int) and m.days > default:
            problems.append(
                Problem(
                    f"members.{i}.days",
                    f"at most {default} days for a {m.persona.replace('_', ' ')} in {environment}: "
                    "the team lead renews it later",
                )
            )
    return problems


def _workspace_problems(spec: RequestSpec) -> list[Problem]:
    ws = spec.workspace
    assert ws is not None  # nosec B101 # called only for specs with a workspace (mypy narrowing)
    problems: list[Problem] = []
    if not AllowedSubscription.objects.filter(subscription_id=ws.subscription_id, is_active=True).exists():
        problems.append(
            Problem(
                "workspace.subscription_id",
                f"subscription '{ws.subscription_id}' is not one the portal allows",
            )
        )
    region = AllowedRegion.objects.filter(name=ws.region, is_active=True).first()
    if region is None:
        problems.append(Problem("workspace.region", f"region '{ws.region}' is not one the portal allows"))
    elif wrong := region_abbreviation_problem(region, ws.region_abbv):
        problems.append(Problem(f"workspace.{wrong.field}", wrong.message))
    for p in naming.naming_problems(ws.naming_input(), data_lake=ws.data_lake):
        problems.append(Problem(f"workspace.{p.field}", p.message))
    if ws.security_group and not GROUP_RE.match(ws.security_group):
        problems.append(Problem("workspace.security_group", "security group name is not valid"))
    return problems + _purpose_problems(ws)


def region_abbreviation_problem(region: AllowedRegion | None, abbreviation: str) -> Problem | None:
    """The region's abbreviation is the one the portal knows for it.

    Names carry the region: ``we`` in an eastus2 workspace's names would tell everyone the wrong place.
    """
    typed = abbreviation.strip().lower()
    if region is None or not region.abbreviation or not typed or typed == region.abbreviation.lower():
        return None
    return Problem(
        "region_abbv",
        f"{region.display_name} is abbreviated '{region.abbreviation}' in resource names, not '{typed}'",
    )


def names_in_use(
    names: naming.ResourceNames, *, field: str = "workspace.team", exclude_request_id: int | None = None
) -> list[Problem]:
    """Names already held by a workspace in the portal or by another pending request."""
    problems: list[Problem] = []
    unique = {"workspace": names.workspace, **names.globally_unique()}
    lowered = {v.lower() for v in unique.values()}
    existing = Workspace.objects.filter(
        Q(workspace_name__in=lowered)
        | Q(storage_work__in=lowered)
        | Q(storage_data__in=lowered)
        | Q(key_vault__in=lowered)
        | Q(registry__in=lowered)
        | Q(data_lake_name__in=lowered)
    ).exclude(
        state__in=(ResourceState.REVOKED, ResourceState.DECOMMISSIONED)
    )  # decommissioned: names given back
    if exclude_request_id is not None:  # the workspace an amended request already made is its own
        existing = existing.exclude(change_requests__id=exclude_request_id)
    for workspace in existing:
        taken = {
            workspace.workspace_name,
            workspace.storage_work,
            workspace.storage_data,
            workspace.key_vault,
            workspace.registry,
            workspace.data_lake_name,
        } & lowered
        problems.append(
            Problem(
                field,
                f"name already used by workspace '{workspace.workspace_name}' in the portal: "
                f"{', '.join(sorted(taken))}; choose another team name or a custom name",
            )
        )
    for vault in key_vaults.names_held([names.key_vault]):  # Azure keeps a deleted vault's name
        problems.append(
            Problem(
                field,
                f"key vault name '{vault.name}' is held by a soft-deleted key vault until "
                f"{key_vaults.held_until(vault)}; choose another team name or a custom name, or ask an admin "
                "to purge it",
            )
        )
    pending = ChangeRequest.objects.filter(
        kind=ChangeRequest.Kind.NEW_WORKSPACE,
        status__in=ChangeRequest.PENDING_OR_LIVE,
        workspace_name__iexact=names.workspace,
    )
    if exclude_request_id is not None:
        pending = pending.exclude(pk=exclude_request_id)
    for other in pending:
        problems.append(
            Problem(
                field,
                f"workspace name '{names.workspace}' is already requested by request #{other.pk}; "
                "choose another team name or a custom name",
            )
        )
    return problems


def _environment_and_catalog(
    environment: str, region: str, check: capacity.Check | None
) -> tuple[EnvironmentPolicy | None, dict[str, VmSize]]:
    """The environment's policy and the region's size catalog: as the capacity check read them, if it did."""
    if check is not None and check.sizes is not None:
        return (check.policy if environment else None), (check.sizes if region else {})
    env = EnvironmentPolicy.objects.filter(environment=environment).first() if environment else None
    return env, capacity.region_sizes(region) if region else {}


def _cluster_problems(
    clusters: Iterable[ClusterSpec],
    workspace: Workspace | None,
    *,
    environment: str,
    region: str,
    check: capacity.Check | None = None,
    request_id: int | None = None,
    prefix: str = "clusters",
) -> list[Problem]:
    """Policy and naming on clusters to create (``prefix`` "clusters"), or on the new settings of clusters
    a change updates ("cluster_updates": the name is the existing cluster's, checked by ``changes``)."""
    clusters = list(clusters)
    if not clusters:
        return []
    creating = prefix == "clusters"
    policy = Policy.current()
    env, catalog = _environment_and_catalog(environment, region, check)
    allowed_sizes = {
        s.upper() for s in AllowedVmSize.objects.filter(is_active=True).values_list("name", flat=True)
    }
    env_sizes = {s.upper() for s in env.allowed_sizes.values_list("name", flat=True)} if env else set()
    max_nodes = min(policy.max_nodes_per_cluster, env.max_nodes) if env else policy.max_nodes_per_cluster
    existing = set()
    if workspace is not None and creating:
        existing = {
            n.lower()
            for n in Cluster.objects.filter(workspace=workspace)
            .exclude(state=ResourceState.REVOKED)
            .exclude(change_request_id=request_id)  # an amended request's own clusters
            .values_list("name", flat=True)
        }
    problems: list[Problem] = []
    seen: set[str] = set()
    if len(clusters) > policy.max_clusters_per_request:
        problems.append(Problem(prefix, f"at most {policy.max_clusters_per_request} clusters per request"))
    for i, c in enumerate(clusters):
        at = f"{prefix}.{i}"
        message = naming.cluster_name_problem(c.name) if creating else None
        if message:
            problems.append(Problem(f"{at}.name", message))
        if creating and c.name.lower() in seen:
            problems.append(Problem(f"{at}.name", f"cluster name '{c.name}' appears twice in this request"))
        elif creating and c.name.lower() in existing:
            problems.append(Problem(f"{at}.name", f"the workspace already has a cluster named '{c.name}'"))
        seen.add(c.name.lower())
        problems += _size_problems(c, at, allowed_sizes, env_sizes, catalog, environment, region)
        if c.priority not in PRIORITIES:
            problems.append(Problem(f"{at}.priority", "priority must be low_priority or dedicated"))
        elif c.priority == Priority.DEDICATED and env is not None and not env.dedicated_allowed:
            problems.append(
                Problem(
                    f"{at}.priority",
                    f"dedicated nodes are not allowed in {environment} workspaces (policy): use low priority",
                )
            )
        if not 1 <= c.max_nodes <= max_nodes:
            where = f" in {environment} workspaces" if env else ""
            problems.append(
                Problem(f"{at}.max_nodes", f"max nodes must be between 1 and {max_nodes}{where} (policy)")
            )
        if c.min_nodes < 0 or c.min_nodes > c.max_nodes:
            problems.append(Problem(f"{at}.min_nodes", "min nodes must be between 0 and max nodes"))
        elif c.min_nodes > 0 and len(c.justification.strip()) < MIN_JUSTIFICATION:
            problems.append(
                Problem(
                    f"{at}.justification",
                    "min nodes above 0 keeps nodes (and their cost) up while idle: say why in a sentence "
                    f"(at least {MIN_JUSTIFICATION} characters), or set min nodes to 0",
                )
            )
        longest = min(MAX_IDLE_SECONDS, env.max_idle_seconds) if env else MAX_IDLE_SECONDS
        if not 0 <= c.idle_seconds <= longest:
            where = f" in {environment} workspaces (policy)" if env else ""
            problems.append(
                Problem(f"{at}.idle_seconds", f"idle seconds must be between 0 and {longest}{where}")
            )
    return problems


def _size_problems(
    c: ClusterSpec,
    at: str,
    allowed: set[str],
    env_sizes: set[str],
    catalog: dict[str, VmSize],
    environment: str,
    region: str,
) -> list[Problem]:
    """A size must be allowed by the portal and the environment, and offered in the region."""
    size = c.vm_size.upper()
    if size not in allowed:
        return [Problem(f"{at}.vm_size", f"VM size '{c.vm_size}' is not one the portal allows")]
    if env_sizes and size not in env_sizes:
        return [
            Problem(
                f"{at}.vm_size",
                f"VM size '{c.vm_size}' is not allowed in {environment} workspaces; "
                f"choose one of {', '.join(sorted(env_sizes))}",
            )
        ]
    if catalog and size not in catalog:
        return [Problem(f"{at}.vm_size", f"Azure does not offer {size} for AzureML compute in {region}")]
    offered = catalog.get(size)
    if offered is not None and c.priority == Priority.LOW_PRIORITY and not offered.low_priority_capable:
        return [Problem(f"{at}.priority", f"{size} has no low-priority nodes in {region}: choose dedicated")]
    return []


def _member_problems(
    members: Iterable[MemberSpec], workspace: Workspace | None, *, request_id: int | None = None
) -> list[Problem]:
    members = list(members)
    live: set[str] = set()
    if workspace is not None and members:
        live = {
            n.lower()
            for n in Membership.objects.filter(workspace=workspace)
            .exclude(state=ResourceState.REVOKED)
            .exclude(change_request_id=request_id)  # an amended request's own members are not others'
            .values_list("principal_name", flat=True)
        }
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, m in enumerate(members):
        at = f"members.{i}"
        if m.persona not in PERSONAS:
            problems.append(Problem(f"{at}.persona", "persona must be team_lead or data_scientist"))
        if m.principal_type == "user" and not PRINCIPAL_RE.match(m.principal):
            problems.append(
                Problem(f"{at}.principal", f"'{m.principal}' is not an email address or user principal name")
            )
        if m.principal_type == "group" and not GROUP_RE.match(m.principal):
            problems.append(Problem(f"{at}.principal", "group name is not valid"))
        key = m.principal.lower()
        if key in seen:
            problems.append(Problem(f"{at}.principal", f"'{m.principal}' appears twice in this request"))
        elif key in live:
            problems.append(
                Problem(f"{at}.principal", f"'{m.principal}' is already a member of the workspace")
            )
        seen.add(key)
    return problems


def _revoke_problems(revoke: Iterable[int], workspace: Workspace | None) -> list[Problem]:
    revoke = list(revoke)
    active: set[int] = set()
    if workspace is not None and revoke:
        active = set(
            Membership.objects.filter(
                pk__in=revoke, workspace=workspace, state=ResourceState.ACTIVE
            ).values_list("pk", flat=True)
        )
    return [
        Problem(f"revoke.{i}", f"membership {membership_id} is not an active member")
        for i, membership_id in enumerate(revoke)
        if membership_id not in active
    ]


def _environment_and_region(spec: RequestSpec, workspace: Workspace | None) -> tuple[str, str]:
    if spec.workspace is not None:
        return spec.workspace.environment.strip().lower(), spec.workspace.region.strip().lower()
    if workspace is not None:
        return workspace.environment, workspace.region
    return "", ""


def _capacity_check(
    spec: RequestSpec,
    problems: list[Problem],
    *,
    workspace: Workspace | None,
    request_id: int | None,
    check: capacity.Check | None,
) -> capacity.Check | None:
    """The request's capacity check (``check`` when given, else made now); None when it does not apply:
    no clusters made or changed, or workspace details with problems (the team or region is not known)."""
    if not capacity.asks_cores(spec) or any(p.field.startswith("workspace") for p in problems):
        return None
    return (
        check
        if check is not None
        else capacity.request_check(spec, workspace=workspace, request_id=request_id)
    )


def spec_problems(
    spec: RequestSpec,
    *,
    kind: str,
    workspace: Workspace | None = None,
    request_id: int | None = None,
    check: capacity.Check | None = None,
) -> list[Problem]:
    """Everything wrong with a request; an empty list means it may be submitted or approved.

    ``check``: the request's capacity check when the caller has made it already (it is not made again).
    """
    bounds = bounds_problems(spec)
    if bounds:
        return bounds  # nothing else is read of a request past the bounds
    problems: list[Problem] = []
    if kind == ChangeRequest.Kind.NEW_WORKSPACE:
        if spec.workspace is None:
            return [Problem("workspace", "a new-workspace request needs its workspace details")]
        problems += _workspace_problems(spec)
        if not any(p.field.startswith("workspace.") for p in problems):
            field = "workspace.custom_name" if spec.workspace.custom_name else "workspace.team"
            problems += names_in_use(spec.workspace.names(), field=field, exclude_request_id=request_id)
    elif workspace is None:
        return [Problem("workspace", "choose the workspace this request changes")]
    elif workspace.state in (ResourceState.REVOKED, ResourceState.DECOMMISSIONED):
        problems.append(Problem("workspace", f"workspace '{workspace}' is retired"))
    elif workspace.state in (ResourceState.REVOKING, ResourceState.DECOMMISSIONED):  # takes no new request
        problems.append(
            Problem("workspace", f"workspace '{workspace}' is {workspace.get_state_display().lower()}")
        )
    if kind == ChangeRequest.Kind.ADD_CLUSTERS and not spec.clusters:
        problems.append(Problem("clusters", "add at least one cluster"))
    if kind == ChangeRequest.Kind.GRANT_ACCESS and not spec.members:
        problems.append(Problem("members", "add at least one member"))
    if kind == ChangeRequest.Kind.REVOKE_ACCESS and not spec.revoke:
        problems.append(Problem("revoke", "choose at least one member to revoke"))
    if kind == ChangeRequest.Kind.CHANGE_WORKSPACE and not changes.has_changes(spec):
        problems.append(Problem("changes", "the request changes nothing: change, add or remove something"))
    if workspace is not None and workspace.is_observed:
        problems.append(changes.observed_problem(workspace))
    elif workspace is not None and changes.edits_existing(spec):
        problems += changes.change_problems(spec, workspace, request_id=request_id)
    environment, region = _environment_and_region(spec, workspace)
    check = _capacity_check(spec, problems, workspace=workspace, request_id=request_id, check=check)
    problems += _cluster_problems(
        spec.clusters, workspace, environment=environment, region=region, check=check, request_id=request_id
    )
    problems += _cluster_problems(
        spec.cluster_updates,
        workspace,
        environment=environment,
        region=region,
        check=check,
        request_id=request_id,
        prefix="cluster_updates",
    )
    if check is not None:
        problems += check.problems()
    problems += _member_problems(spec.members, workspace, request_id=request_id)
    problems += _pool_member_problems(spec.members, workspace)
    problems += _member_days_problems(spec.members, environment)
    problems += _revoke_problems(spec.revoke, workspace)
    return problems
