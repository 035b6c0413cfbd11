"""What a change request asks for, as plain data (stored as JSON in ``ChangeRequest.spec``).

The web form, ``import_config`` and the tests all build a ``RequestSpec``; the services validate
it against policy and the naming rules, and ``provisioning.plan`` turns it into every resource and
role assignment to be made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from provisioning import naming

DEFAULT_MIN_NODES = 0
DEFAULT_IDLE_SECONDS = 120
PRIORITIES = ("low_priority", "dedicated")
PERSONAS = ("team_lead", "data_scientist")
# What a workspace is for (the tutorial: a team, a project, or a pool of capacity several teams use).
PURPOSES = ("team", "project", "pool")
POOL_TEAMS_MAX = 50


@dataclass(frozen=True)
class WorkspaceSpec:
    """The workspace part of a new-workspace request."""

    subscription_id: str
    region: str
    department: str
    team: str
    region_abbv: str
    environment: str
    custom_name: str = ""
    security_group: str = ""
    data_lake: bool = False
    # "team" (the default), "project" (``project`` joins the names; its own budget) or "pool" (``team`` is
    # the pool's name; ``pool_teams``, "department/team" strings, may use it).
    purpose: str = "team"
    project: str = ""
    pool_teams: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # JSON and forms give lists; the spec stays hashable and comparable.
        object.__setattr__(self, "pool_teams", tuple(self.pool_teams))

    def naming_input(self) -> naming.NamingInput:
        return naming.NamingInput(
            department=self.department,
            team=self.team,
            region=self.region,
            region_abbv=self.region_abbv,
            environment=self.environment,
            custom_name=self.custom_name,
            project=self.project if self.purpose == "project" else "",
        ).normalized()

    def pool_team_pairs(self) -> tuple[tuple[str, str], ...]:
        """The pool's teams as (department, team), normalized; the malformed ones left out."""
        return pool_team_pairs(self.pool_teams)

    @property
    def purpose_text(self) -> str:
        """What the workspace is for, in words."""
        inp = self.naming_input()
        return purpose_text(
            self.purpose,
            department=inp.department,
            team=inp.team,
            project=inp.project,
            pool_teams=[f"{d}/{t}" for d, t in self.pool_team_pairs()],
        )

    def names(self) -> naming.ResourceNames:
        return naming.resource_names(self.naming_input(), data_lake=self.data_lake)


def pool_team_pairs(teams: tuple[str, ...] | list[str]) -> tuple[tuple[str, str], ...]:
    """ "department/team" strings as (department, team) pairs, trimmed and lowercased, duplicates and
    malformed entries left out (validation reports those)."""
    found: list[tuple[str, str]] = []
    for text in teams:
        department, slash, team = str(text).strip().lower().partition("/")
        pair = (department.strip(), team.strip())
        if slash and all(pair) and pair not in found:
            found.append(pair)
    return tuple(found)


def purpose_text(
    purpose: str, *, department: str, team: str, project: str, pool_teams: tuple[str, ...] | list[str]
) -> str:
    """What a workspace is for, in words: "team d/t", "project p of team d/t", "pool for teams a/b, c/d"."""
    if purpose == "project":
        return f"project {project} of team {department}/{team}"
    if purpose == "pool":
        return f"pool {department}/{team} for teams {', '.join(pool_teams) or '(none)'}"
    return f"team {department}/{team}"


@dataclass(frozen=True)
class ClusterSpec:
    """One AmlCompute cluster to create."""

    name: str
    vm_size: str
    priority: str = "low_priority"
    max_nodes: int = 1
    min_nodes: int = DEFAULT_MIN_NODES
    idle_seconds: int = DEFAULT_IDLE_SECONDS
    justification: str = ""


@dataclass(frozen=True)
class MemberSpec:
    """One user (UPN or email) or group (display name) to grant a persona's roles.

    ``days``: how long the membership lasts from the request's success, when the team lead asks fewer days
    than the environment's policy default (None: the default).
    """

    principal: str
    persona: str
    principal_type: str = "user"
    days: int | None = None


@dataclass(frozen=True)
class RequestSpec:
    """The whole request: a new workspace, clusters, members to add and memberships to revoke.

    Day-2 changes to an existing workspace (kind ``change_workspace``) also hold ``cluster_updates``
    (an existing cluster's whole new settings, by name: the plan says whether Azure changes it in place
    or replaces it), ``cluster_deletes`` (cluster names) and ``persona_changes`` (an existing member, by
    principal, with their new persona).
    """

    workspace: WorkspaceSpec | None = None
    clusters: tuple[ClusterSpec, ...] = field(default_factory=tuple)
    members: tuple[MemberSpec, ...] = field(default_factory=tuple)
    revoke: tuple[int, ...] = field(default_factory=tuple)
    cluster_updates: tuple[ClusterSpec, ...] = field(default_factory=tuple)
    cluster_deletes: tuple[str, ...] = field(default_factory=tuple)
    persona_changes: tuple[MemberSpec, ...] = field(default_factory=tuple)

    def with_lead(self, principal: str) -> RequestSpec:
        """This request with ``principal`` as a team lead first among its members (unchanged when they are
        a member already, in any persona: the request says how they join)."""
        if not principal or any(m.principal.lower() == principal.lower() for m in self.members):
            return self
        return replace(self, members=(MemberSpec(principal, "team_lead"), *self.members))

    def all_members(self) -> tuple[MemberSpec, ...]:
        """Members to grant, with the new workspace's security group (as a data scientist group)."""
        if self.workspace is not None and self.workspace.security_group:
            group = MemberSpec(self.workspace.security_group, "data_scientist", principal_type="group")
            return (*self.members, group)
        return self.members

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["clusters"] = list(data["clusters"])
        # A member without a duration of their own keeps the shape specs had before durations existed.
        data["members"] = [
            {k: v for k, v in m.items() if k != "days" or v is not None} for m in data["members"]
        ]
        data["revoke"] = list(data["revoke"])
        if data["workspace"] is not None:
            ws = data["workspace"]
            ws["pool_teams"] = list(ws["pool_teams"])
            for key, default in (("purpose", "team"), ("project", ""), ("pool_teams", [])):
                if ws[key] == default:  # a team workspace keeps the shape specs had before purposes
                    del ws[key]
        for key in ("cluster_updates", "cluster_deletes", "persona_changes"):
            if data[key]:
                data[key] = list(data[key])
            else:  # specs of the kinds that have none keep the shape they were stored with
                del data[key]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestSpec:
        workspace = data.get("workspace")
        return cls(
            workspace=WorkspaceSpec(**workspace) if workspace else None,
            clusters=tuple(ClusterSpec(**c) for c in data.get("clusters", [])),
            members=tuple(MemberSpec(**m) for m in data.get("members", [])),
            revoke=tuple(int(i) for i in data.get("revoke", [])),
            cluster_updates=tuple(ClusterSpec(**c) for c in data.get("cluster_updates", [])),
            cluster_deletes=tuple(str(n) for n in data.get("cluster_deletes", [])),
            persona_changes=tuple(MemberSpec(**m) for m in data.get("persona_changes", [])),
        )
