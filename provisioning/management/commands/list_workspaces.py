"""``manage.py list_workspaces [--json]``: every workspace the portal holds, with owner, state and access.

``--json`` prints a list of objects: the workspace's names, region, environment, owner and state, its live
clusters (name, vm_size, priority, min_nodes, max_nodes, idle_seconds, state) and members (principal: the
UPN or group name, principal_type, persona, state, expires_at), for scripts to read without parsing text.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from provisioning.models import ResourceState, Workspace

_GONE = (ResourceState.REVOKING, ResourceState.REVOKED)


def workspace_rows() -> list[dict[str, Any]]:
    """One row per workspace: names, owner, state, and its live clusters and members."""
    workspaces = Workspace.objects.select_related("owner").prefetch_related("clusters", "memberships")
    return [_row(ws) for ws in workspaces]


def _row(ws: Workspace) -> dict[str, Any]:
    clusters = [c for c in ws.clusters.all() if c.state not in _GONE]
    members = [m for m in ws.memberships.all() if m.state not in _GONE]
    return {
        "workspace_name": ws.workspace_name,
        "resource_group": ws.resource_group,
        "subscription_id": ws.subscription_id,
        "region": ws.region,
        "environment": ws.environment,
        "owner": ws.owner.principal_name,
        "state": ws.state,
        "clusters": [
            {
                "name": c.name,
                "vm_size": c.vm_size,
                "priority": c.priority,
                "min_nodes": c.min_nodes,
                "max_nodes": c.max_nodes,
                "idle_seconds": c.idle_seconds,
                "state": c.state,
            }
            for c in clusters
        ],
        "members": [
            {
                "principal": m.principal_name,
                "principal_type": m.principal_type,
                "persona": m.persona,
                "state": m.state,
                "expires_at": m.expires_at.isoformat() if m.expires_at else None,
            }
            for m in members
        ],
    }


def _clusters_line(row: dict[str, Any]) -> str:
    return ", ".join(f"{c['name']} ({c['vm_size']}, {c['state']})" for c in row["clusters"]) or "-"


def _members_line(row: dict[str, Any]) -> str:
    return ", ".join(f"{m['principal']} ({m['persona']}, {m['state']})" for m in row["members"]) or "-"


class Command(BaseCommand):
    help = "List every workspace: owner, state, clusters and members."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print a JSON list (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        rows = workspace_rows()
        if options["json"]:
            self.stdout.write(json.dumps(rows, indent=2))
            return
        if not rows:
            self.stdout.write("No workspaces yet.")
        for row in rows:
            self.stdout.write(
                f"{row['workspace_name']}  {row['state']}  owner {row['owner']}  "
                f"resource group {row['resource_group']} ({row['region']})"
            )
            self.stdout.write(f"  clusters: {_clusters_line(row)}")
            self.stdout.write(f"  members:  {_members_line(row)}")
