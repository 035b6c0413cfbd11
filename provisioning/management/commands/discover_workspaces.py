"""``manage.py discover_workspaces [--json]``: the AzureML workspaces of the allowed subscriptions the portal
does not hold, read from Azure now (in this process, like a worker; the scan is recorded, so the discover
page and ``adopt_workspace`` use it too).

``--json`` prints one document::

    {"workspaces": [{"azure_id", "name", "subscription_id", "resource_group", "region", "tags",
                     "managed_by_portal": bool,
                     "convention": {"follows": bool, "department", "team", "region", "environment",
                                    "region_abbv", "reason"},
                     "dependent_resources": {"storage_account", "key_vault", "container_registry",
                                             "app_insights"},   (ARM ids; absent keys: none named)
                     "group": {"azure_id", "tags"},
                     "resources": [{"azure_id", "name", "type", "tags"}],   (everything in the group)
                     "clusters": [{"azure_id", "name", "vm_size", "priority", "min_nodes", "max_nodes",
                                   "idle_seconds", "tags"}],
                     "role_assignments": [{"azure_id", "scope", "role", "role_definition_id",
                                           "principal_id", "principal_type", "principal_name"}]}],
     "errors": ["what could not be read"]}

The convention's fields are empty strings when ``follows`` is false (``reason`` says why). The exit status
is non-zero only when a subscription or workspace could not be read (the rest is printed all the same).
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.engine.adoption import discovery_run


class Command(BaseCommand):
    help = "List the AzureML workspaces in the allowed subscriptions that the portal does not hold."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        scan = discovery_run()
        if scan.error:
            raise CommandError(f"discovery failed: {scan.error}")
        result = scan.result
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2))
        else:
            self._print(result)
        if result.get("errors"):
            raise CommandError(
                "some of Azure could not be read:\n" + "\n".join(f"  - {e}" for e in result["errors"])
            )

    def _print(self, result: dict[str, Any]) -> None:
        if not result["workspaces"]:
            self.stdout.write("No workspace outside the portal in the allowed subscriptions.")
        for ws in result["workspaces"]:
            c = ws["convention"]
            convention = (
                f"{c['department']}/{c['team']} {c['region']} ({c['region_abbv']}) {c['environment']}"
                if c["follows"]
                else f"does not follow the convention ({c['reason']})"
            )
            tagged = ", tagged managed-by the portal" if ws["managed_by_portal"] else ""
            self.stdout.write(f"{ws['name']}  {ws['region']}  {convention}{tagged}")
            self.stdout.write(f"  {ws['azure_id']}")
            for cluster in ws["clusters"]:
                self.stdout.write(
                    f"  cluster {cluster['name']}: {cluster['vm_size']} {cluster['priority']}, "
                    f"{cluster['min_nodes']}-{cluster['max_nodes']} nodes, {cluster['idle_seconds']} s idle"
                )
            for a in ws["role_assignments"]:
                who = a["principal_name"] or a["principal_id"]
                self.stdout.write(f"  {a['role'] or a['role_definition_id']} for {who} at {a['scope']}")
