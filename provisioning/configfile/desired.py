"""A ``config.yml`` as desired state: the changes that make the portal's approved state match the file.

For a workspace the portal holds (the file's names give its workspace name), the plan is a diff:
clusters in the file and not in the workspace are created, those in both with other settings are
updated in place or replaced, those only in the workspace are deleted; members likewise (created, role
changed, removed). For a workspace the portal does not hold, it is the new-workspace request.

What the tutorial's layout cannot say is left alone: groups other than the security group (the export
writes them as comments), and the workspace's own settings, which name it (a file for another
subscription, or that adds or drops the data lake, is refused: that is another workspace).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from provisioning.configfile.reader import ConfigError, parse_config
from provisioning.models import ChangeRequest, Membership, ResourceState, Workspace
from provisioning.plan import cluster_diff, cluster_settings
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec

Kind = ChangeRequest.Kind
_GONE = (ResourceState.REVOKING, ResourceState.REVOKED, ResourceState.DECOMMISSIONED)


@dataclass(frozen=True)
class DesiredState:
    """What a file asks: a new workspace, or changes to one the portal holds (``workspace``)."""

    kind: str
    spec: RequestSpec
    workspace: Workspace | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changes_nothing(self) -> bool:
        s = self.spec
        return self.workspace is not None and not (
            s.clusters or s.members or s.revoke or s.cluster_updates or s.cluster_deletes or s.persona_changes
        )


def _refuse_other_workspace(ws: Workspace, wanted: Any, source: str) -> None:
    """A file naming this workspace but asking it elsewhere, or with(out) a data lake, is another one."""
    differences = []
    if wanted.subscription_id.strip().lower() != ws.subscription_id.lower():
        differences.append(f"subscription {ws.subscription_id} -> {wanted.subscription_id}")
    if bool(wanted.data_lake) != ws.data_lake:
        differences.append(f"create_dls {'y' if ws.data_lake else 'n'} -> {'y' if wanted.data_lake else 'n'}")
    if differences:
        raise ConfigError(
            f"{source}: workspace {ws.workspace_name} exists with other settings ({'; '.join(differences)}): "
            "the portal changes clusters and members of an existing workspace, not where it lives or its "
            "data lake; ask for a new workspace (another team or custom name) instead"
        )


def _cluster_edits(
    ws: Workspace, wanted: tuple[ClusterSpec, ...]
) -> tuple[list[ClusterSpec], list[ClusterSpec], list[str]]:
    """Clusters to create, update (their whole new settings) and delete (names)."""
    # Only active rows: the day-2 plan is computed against them (``changes.approved_state``); a cluster an
    # open request is still making is not the workspace's yet.
    live = {c.name.lower(): c for c in ws.clusters.filter(state=ResourceState.ACTIVE)}
    creates, updates = [], []
    for c in wanted:
        current = live.get(c.name.lower())
        if current is None:
            creates.append(c)
            continue
        settings = cluster_settings(current.as_spec())
        if cluster_diff(settings, c) or c.justification.strip() != current.justification:
            updates.append(replace(c, name=current.name))
    named = {c.name.lower() for c in wanted}
    deletes = [c.name for c in live.values() if c.name.lower() not in named]
    return creates, updates, sorted(deletes)


def _member_edits(
    ws: Workspace, wanted: tuple[MemberSpec, ...]
) -> tuple[list[MemberSpec], list[MemberSpec], list[int], list[str]]:
    """Members to add, whose persona changes, to revoke (membership ids), and notes on what is left alone."""
    live = list(ws.memberships.filter(state=ResourceState.ACTIVE).order_by("pk"))
    by_name = {m.principal_name.lower(): m for m in live}
    adds, changes = [], []
    for m in wanted:
        current = by_name.get(m.principal.lower())
        if current is None:
            adds.append(m)
        elif current.persona != m.persona:
            changes.append(MemberSpec(current.principal_name, m.persona, current.principal_type))
    named = {m.principal.lower() for m in wanted}
    revoke: list[int] = []
    notes: list[str] = []
    for row in live:
        if row.principal_name.lower() in named:
            continue
        group = row.principal_type == Membership.PrincipalType.GROUP
        if group and row.principal_name != ws.security_group:
            notes.append(
                f"group '{row.principal_name}' keeps its access: the file's layout has no place for it"
            )
        else:
            revoke.append(row.pk)
    return adds, changes, revoke, notes


def desired_state(text: str, *, source: str = "config.yml") -> DesiredState:
    """What the file asks of the portal. Raises ``ConfigError`` (line and field) for a file that is wrong."""
    spec = parse_config(text, source=source, validate=False)
    assert spec.workspace is not None  # nosec B101 # a config file always yields a workspace (mypy narrowing)
    name = spec.workspace.names().workspace
    ws = (
        Workspace.objects.select_related("owner")
        .filter(workspace_name__iexact=name)
        .exclude(state__in=_GONE)
        .first()
    )
    if ws is None:
        return DesiredState(Kind.NEW_WORKSPACE, parse_config(text, source=source))
    _refuse_other_workspace(ws, spec.workspace, source)
    creates, updates, deletes = _cluster_edits(ws, spec.clusters)
    adds, persona_changes, revoke, notes = _member_edits(ws, spec.all_members())
    change = RequestSpec(
        clusters=tuple(creates),
        members=tuple(adds),
        revoke=tuple(revoke),
        cluster_updates=tuple(updates),
        cluster_deletes=tuple(deletes),
        persona_changes=tuple(persona_changes),
    )
    return DesiredState(Kind.CHANGE_WORKSPACE, change, ws, tuple(notes))


def change_line(change: dict[str, Any]) -> str:
    """One change of a plan as a line for people, Terraform-like (``~`` update, ``-/+`` replace)."""
    symbol = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}[change["action"]]
    fields = change.get("fields") or {}
    shown = []
    for key, (old, new) in fields.items():
        if change["action"] == "create":
            shown.append(f"{key} {new}")
        elif change["action"] == "delete":
            continue
        else:
            shown.append(f"{key} {old} -> {new}")
    line = f"{symbol} {change['action']} {change['object'].replace('_', ' ')} {change['name']}"
    if shown:
        line += ": " + ", ".join(shown)
    if change.get("why"):
        line += f" ({change['why']})"
    return line
