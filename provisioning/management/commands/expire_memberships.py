"""``manage.py expire_memberships [--dry-run] [--json]``: end the memberships whose end date has passed.

The work of the scheduled ``provisioning.jobs.memberships_expire``: one ``revoke_access`` request per workspace,
made by its owner and approved by the system, whose run a worker makes (the role assignments removed from Azure);
each membership audited ``membership.expired``. ``--dry-run`` prints what it would do and saves nothing.
``--json`` prints ``{"dry_run": bool, "memberships": [{"membership_id": ..., "principal": ..., "persona": ...,
"workspace": ..., "expires_at": ..., "request_id": ... | null}]}``. Running it twice makes nothing the second
time (the memberships are revoking).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from provisioning.workflow.expiry import memberships_expire


class Command(BaseCommand):
    help = "Remove from Azure the memberships whose end date has passed (--dry-run: only print them)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="print what would expire; change nothing")
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        dry_run = options["dry_run"]
        ended = memberships_expire(dry_run=dry_run)
        if options["json"]:
            self.stdout.write(
                json.dumps({"dry_run": dry_run, "memberships": [e.as_dict() for e in ended]}, indent=2)
            )
            return
        if not ended:
            self.stdout.write("No membership is past its end date.")
            return
        verb = "would expire" if dry_run else "expired"
        for e in ended:
            queued = "" if e.request_id is None else f": request #{e.request_id} removes its role assignments"
            self.stdout.write(
                f"{verb} {e.principal} ({e.persona}) on {e.workspace}, ended {e.expires_at}{queued}"
            )
