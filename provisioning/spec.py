"""What a change request asks for, as plain data (stored as JSON in ``ChangeRequest.spec``).

The web form, ``import_config`` and the tests all build a ``RequestSpec``; the services validate
it against policy and the naming rules, and ``provisioning.plan`` turns it into every resource and
role assignment to be made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from provisioning import naming

DEFAULT_MIN_NODES = 0
DEFAULT_IDLE_SECONDS = 120
PRIORITIES = ("low_priority", "dedicated")
PERSONAS = ("team_lead", "data_scientist")


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

    def naming_input(self) -> naming.NamingInput:
        return naming.NamingInput(
            department=self.department,
            team=self.team,
            region=self.region,
            region_abbv=self.region_abbv,
            environment=self.environment,
            custom_name=self.custom_name,
        ).normalized()

    def names(self) -> naming.ResourceNames:
        return naming.resource_names(self.naming_input(), data_lake=self.data_lake)


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
    """One user (UPN or email) or group (display name) to grant a persona's roles."""

    principal: str
    persona: str
    principal_type: str = "user"


@dataclass(frozen=True)
class RequestSpec:
    """The whole request: a new workspace, clusters, members to add and memberships to revoke."""

    workspace: WorkspaceSpec | None = None
    clusters: tuple[ClusterSpec, ...] = field(default_factory=tuple)
    members: tuple[MemberSpec, ...] = field(default_factory=tuple)
    revoke: tuple[int, ...] = field(default_factory=tuple)

    def all_members(self) -> tuple[MemberSpec, ...]:
        """Members to grant, with the new workspace's security group (as a data scientist group)."""
        if self.workspace is not None and self.workspace.security_group:
            group = MemberSpec(self.workspace.security_group, "data_scientist", principal_type="group")
            return (*self.members, group)
        return self.members

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["clusters"] = list(data["clusters"])
        data["members"] = list(data["members"])
        data["revoke"] = list(data["revoke"])
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestSpec:
        workspace = data.get("workspace")
        return cls(
            workspace=WorkspaceSpec(**workspace) if workspace else None,
            clusters=tuple(ClusterSpec(**c) for c in data.get("clusters", [])),
            members=tuple(MemberSpec(**m) for m in data.get("members", [])),
            revoke=tuple(int(i) for i in data.get("revoke", [])),
        )
