"""``manage.py access_reviews [--dry-run] [--json]``: start the access reviews due, close the overdue ones.

The work of the scheduled ``provisioning.jobs.access_reviews``: a campaign starts for every active, managed
workspace whose last review (or its making) is an interval of its environment's policy ago; an open campaign
past its deadline closes (its unreviewed members removed or escalated to an admin, as its policy said).
``--dry-run`` prints what it would do and saves nothing. ``--json`` prints ``{"dry_run": bool, "started":
[workspace ids], "closed": [review ids]}``. Running it twice does nothing the second time.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from provisioning.workflow.reviews import reviews_due


class Command(BaseCommand):
    help = "Start the access reviews due and close the overdue ones (--dry-run: only print them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print what would happen; change nothing")
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        done = reviews_due(dry_run=dry_run)
        if options["json"]:
            self.stdout.write(json.dumps({"dry_run": dry_run, **done}, indent=2))
            return
        would = "would " if dry_run else ""
        self.stdout.write(
            f"{would}start {len(done['started'])} access review(s) (workspaces {done['started'] or 'none'}); "
            f"{would}close {len(done['closed'])} past their deadline (reviews {done['closed'] or 'none'})"
        )
