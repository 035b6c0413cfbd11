"""``manage.py admin_roles [--json]``: define the two administration roles and assign them (docs/roles.md).

The work of the hourly ``provisioning.jobs.admin_roles``: in every active allowed subscription, *AzureML Capacity
Admin* and *AzureML Workspace Admin* are created, or brought back to their documented permissions (audited
``admin_role.updated``), and assigned to the groups the subscription names (``capacity_admin_group`` at the
subscription, ``workspace_admin_group`` at each managed workspace's resource group; audited
``admin_role.assigned``). Prints one line per definition and assignment (``--json``: ``{"changes": [{"subscription",
"what", "role", "outcome", "scope", "group", "message"}]}``); exit 1 when a subscription failed. Idempotent.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.engine.admin_roles import admin_roles_ensure


class Command(BaseCommand):
    help = "Define the AzureML Capacity Admin and Workspace Admin roles and assign them to the admin groups."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        changes = admin_roles_ensure()
        if options["json"]:
            self.stdout.write(json.dumps({"changes": [c.as_dict() for c in changes]}, indent=2))
        else:
            for c in changes:
                where = f" for {c.group} on {c.scope}" if c.group else ""
                self.stdout.write(
                    f"{c.subscription}: {c.what} {c.role}{where}: {c.outcome} {c.message}".rstrip()
                )
        failed = [c for c in changes if c.outcome == "failed"]
        if failed:
            raise CommandError(f"{len(failed)} subscription(s) failed: {failed[0].message}")
