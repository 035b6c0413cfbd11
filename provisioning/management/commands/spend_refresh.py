"""``manage.py spend_refresh [--workspace NAME] [--json]``: read this month's spend from Cost Management now.

The work of the daily ``provisioning.jobs.spend_refresh``, run in this process like a worker (its own Azure
clients from settings; no queue needed): each active workspace's month to date, per day and resource, read
with one Cost Management query per subscription and stored; a workspace over its spend threshold flagged
(and its admins and team leads told, once a month). ``--json`` prints ``{"workspaces": [{"workspace",
"team", "month", "month_to_date", "currency", "estimate", "budget", "team_month_to_date", "alert_percent",
"over_threshold", "read_at", "error"}], "errors": [...]}`` (amounts are numbers, to the cent). The exit status is
non-zero only when a workspace could not be read.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.engine.spend import spend_refresh
from provisioning.management.commands._cli import workspace_by_name


class Command(BaseCommand):
    help = (
        "Read every active workspace's month-to-date spend from Cost Management; flag those over threshold."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workspace", metavar="NAME", help="only this workspace (default: every active one)"
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        ids = [workspace_by_name(options["workspace"]).pk] if options["workspace"] else None
        summary = spend_refresh(workspace_ids=ids)
        if options["json"]:
            self.stdout.write(json.dumps(summary, indent=2))
        else:
            for row in summary["workspaces"]:
                budget = f", team budget {row['budget']}" if row["budget"] else ""
                flag = "  OVER THRESHOLD" if row["over_threshold"] else ""
                self.stdout.write(
                    f"{row['workspace']}: {row['month_to_date']} {row['currency']} this month "
                    f"(estimate {row['estimate']}{budget}){flag}"
                )
        if summary["errors"]:
            raise CommandError(
                "some workspaces could not be read:\n" + "\n".join(f"  - {e}" for e in summary["errors"])
            )
