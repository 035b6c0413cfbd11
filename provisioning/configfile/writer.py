"""A workspace written as the tutorial's ``config.yml``; ``parse_config`` of the export gives back its spec
(clusters and members in the order they were requested)."""

from __future__ import annotations

import json
import re

from provisioning.models import Membership, Persona, ResourceState, Workspace
from provisioning.spec import DEFAULT_IDLE_SECONDS, DEFAULT_MIN_NODES

_GONE = (ResourceState.REVOKING, ResourceState.REVOKED)
# What export may write unquoted: YAML reads it back as the same plain string (a comma list included).
_PLAIN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_@.+-]*(?:, [A-Za-z0-9][A-Za-z0-9_@.+-]*)*")


def _scalar(value: str) -> str:
    """A value as YAML that reads back as the same string (double-quoted when plain would not)."""
    if value == "" or (_PLAIN.fullmatch(value) and value.lower() != "null"):
        return value
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def _section(name: str, values: dict[str, str]) -> list[str]:
    return [
        f"{name}:",
        *(
            f"  {key}: {value if key == 'justification' else _scalar(value)}".rstrip()
            for key, value in values.items()
        ),
    ]


def _compute_values(workspace: Workspace) -> dict[str, str]:
    clusters = list(workspace.clusters.exclude(state__in=_GONE).order_by("pk"))
    values = {
        "nodes": ", ".join(str(c.max_nodes) for c in clusters),
        "priority": ", ".join(c.priority.replace("_", "") for c in clusters),
        "vm_sku": ", ".join(c.vm_size for c in clusters),
        "cluster_name": ", ".join(c.name for c in clusters),
    }
    if any(c.min_nodes != DEFAULT_MIN_NODES or c.idle_seconds != DEFAULT_IDLE_SECONDS for c in clusters):
        values["min_nodes"] = ", ".join(str(c.min_nodes) for c in clusters)
        values["idle_seconds"] = ", ".join(str(c.idle_seconds) for c in clusters)
    if any(c.justification for c in clusters):
        values["justification"] = json.dumps([c.justification for c in clusters])  # a YAML flow list
    return values


def _roles(workspace: Workspace) -> tuple[list[str], list[str], list[str]]:
    """Live team leads, data scientists (users) and groups, in the order they were requested."""
    live = list(workspace.memberships.exclude(state__in=_GONE).order_by("pk"))
    users = [m for m in live if m.principal_type == Membership.PrincipalType.USER]
    leads = [m.principal_name for m in users if m.persona == Persona.TEAM_LEAD]
    scientists = [m.principal_name for m in users if m.persona == Persona.DATA_SCIENTIST]
    groups = [m.principal_name for m in live if m.principal_type == Membership.PrincipalType.GROUP]
    return leads, scientists, groups


def _purpose_values(workspace: Workspace) -> dict[str, str]:
    """A project's or a pool's keys; none for a team workspace (the tutorial's file, unchanged)."""
    if workspace.purpose == "project":
        return {"purpose": "project", "project": workspace.project}
    if workspace.purpose == "pool":
        return {"purpose": "pool", "pool_teams": ", ".join(workspace.pool_teams)}
    return {}


def export_config(workspace: Workspace) -> str:
    """The workspace as the tutorial's ``config.yml``; ``parse_config`` of it gives back its spec.

    The admin is the owner when the owner is a team lead, else the first team lead.
    """
    leads, scientists, groups = _roles(workspace)
    owner = workspace.owner.principal_name
    admin = owner if owner in leads or not leads else leads[0]
    security_group = workspace.security_group if workspace.security_group in groups else ""
    lines = [
        f"# {workspace.workspace_name} (resource group {workspace.resource_group})",
        "# exported by the AzureML portal in the tutorial's config.yml layout",
        *(
            f"# Group '{name}' also has access; this layout has no place for it."
            for name in groups
            if name != security_group
        ),
    ]
    lines += _section(
        "workspace",
        {
            "subscription": workspace.subscription_id,
            "custom_name": workspace.custom_name,
            "department": workspace.department,
            "team": workspace.team,
            "region": workspace.region,
            "region_abbv": workspace.region_abbv,
            "environment": workspace.environment,
            "admin": admin,
            "security_group": security_group,
            "create_dls": "y" if workspace.data_lake else "n",
            **_purpose_values(workspace),
        },
    )
    lines += _section("compute", _compute_values(workspace))
    lines += _section("roles", {"team_leads": ", ".join(leads), "data_scientists": ", ".join(scientists)})
    return "\n".join(lines) + "\n"
