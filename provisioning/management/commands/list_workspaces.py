"""``manage.py list_workspaces [--json]``: every workspace the portal holds, with owner, state and access."""

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
        "region": ws.region,
        "owner": ws.owner.principal_name,
        "state": ws.state,
        "clusters": [f"{c.name} ({c.vm_size}, {c.state})" for c in clusters],
        "members": [f"{m.principal_name} ({m.persona}, {m.state})" for m in members],
    }


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
            self.stdout.write(f"  clusters: {', '.join(row['clusters']) or '-'}")
            self.stdout.write(f"  members:  {', '.join(row['members']) or '-'}")
