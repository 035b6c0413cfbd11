"""``manage.py reconcile [--workspace NAME] [--json]``: compare managed workspaces with Azure now, print drift.

The work of the scheduled ``provisioning.jobs.reconcile_all``, run in this process like a worker (its own
Azure clients from settings; no queue needed): every active workspace, or the one named, is read from
Azure, its observed state and drift items recorded, and its open drift printed. ``--json`` prints
``{"workspaces": [{"name": ..., "drift": [{"kind": ..., "resource_id": ..., "field": ..., "expected": ...,
"actual": ..., "id": ...}]}]}``. The exit status is 0 whether or not there is drift; it is non-zero only
when a workspace could not be read (or is unknown, or not active).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.drift import in_words
from provisioning.engine.reconcile import reconcile
from provisioning.management.commands._cli import workspace_by_name
from provisioning.models import ResourceState

ITEM_KEYS = ("id", "kind", "resource_id", "field", "expected", "actual")


class Command(BaseCommand):
    help = "Compare managed workspaces with what Azure holds now; record and print their drift."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workspace", metavar="NAME", help="only this workspace (default: every active one)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = None
        if options["workspace"]:
            workspace = workspace_by_name(options["workspace"])
            if workspace.state != ResourceState.ACTIVE:
                raise CommandError(
                    f"workspace {workspace.workspace_name} is {workspace.get_state_display().lower()}: "
                    "only active workspaces are reconciled"
                )
            ids = [workspace.pk]
        summary = reconcile(workspace_ids=ids)
        if options["json"]:
            shown = [
                {"name": w["name"], "drift": [{k: item[k] for k in ITEM_KEYS} for item in w["drift"]]}
                for w in summary["workspaces"]
            ]
            self.stdout.write(json.dumps({"workspaces": shown}, indent=2))
        else:
            self._print(summary)
        if summary["errors"]:
            raise CommandError(
                "some workspaces could not be read from Azure:\n"
                + "\n".join(f"  - {e}" for e in summary["errors"])
            )

    def _print(self, summary: dict[str, Any]) -> None:
        if not summary["workspaces"] and not summary["errors"]:
            self.stdout.write("No active workspaces to reconcile.")
        for w in summary["workspaces"]:
            count = len(w["drift"])
            state = f"{count} open drift item{'s' if count != 1 else ''}" if count else "in step with Azure"
            self.stdout.write(
                f"{w['name']}: {state} ({w['found']} new, {w['resolved']} resolved; {w['reads']} ARM reads)"
            )
            for item in w["drift"]:
                what = f" {item['field']}" if item["field"] else ""
                self.stdout.write(
                    f"  #{item['id']} {item['kind']}: {item['resource_id']}{what}: "
                    f"{in_words(item['expected'])} -> {in_words(item['actual'])}"
                )
