"""``manage.py plan_config FILE [--json]``: what importing a ``config.yml`` would change; saves nothing.

For a workspace the portal holds, the plan is the difference between the file and the approved state
(clusters and members created, updated in place, replaced, deleted); otherwise it is the new workspace.
One line per change (``+`` create, ``~`` update, ``-/+`` replace, ``-`` delete); ``--json`` prints
``{"changes": [{"action", "object", "name", "fields": {field: [old, new]}}]}``, members named by UPN.
Problems the request would have (policy, budgets) are printed on standard error; the exit status is 0
unless the file itself cannot be read.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.configfile import ConfigError, change_line, desired_state
from provisioning.management.commands.import_config import read_config
from provisioning.workflow import services

JSON_KEYS = ("action", "object", "name", "fields")


class Command(BaseCommand):
    help = "Print what importing a config.yml would change (a line per change, or --json); saves nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the config.yml ('-' for standard input)")
        parser.add_argument("--json", action="store_true", help='print {"changes": [...]}')

    def handle(self, *args: Any, **options: Any) -> None:
        text, source = read_config(options["file"])
        try:
            desired = desired_state(text, source=source)
        except ConfigError as exc:
            raise CommandError(exc.message) from exc
        plan, problems = services.request_preview(
            kind=desired.kind, spec=desired.spec, workspace=desired.workspace
        )
        changes = [{key: change[key] for key in JSON_KEYS} for change in plan["changes"]]
        if options["json"]:
            self.stdout.write(json.dumps({"changes": changes}, indent=2))
        else:
            self._print(desired, plan["changes"], plan["names"]["workspace"])
        for note in desired.notes:
            self.stderr.write(f"note: {note}")
        for problem in [] if desired.changes_nothing else problems:
            self.stderr.write(f"problem: {problem.field}: {problem.message}")

    def _print(self, desired: Any, changes: list[dict[str, Any]], name: str) -> None:
        if desired.workspace is None:
            self.stdout.write(f"New workspace {name}: {len(changes)} to create")
        elif not changes:
            self.stdout.write(f"No changes: workspace {name} matches the file.")
            return
        else:
            self.stdout.write(f"Workspace {name}: {len(changes)} change(s)")
        for change in changes:
            self.stdout.write(change_line(change))
