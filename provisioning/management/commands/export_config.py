"""``manage.py export_config WORKSPACE_NAME [--output FILE]``: a workspace as a tutorial ``config.yml``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.configfile import export_config
from provisioning.models import Workspace


class Command(BaseCommand):
    help = "Write a workspace (its live clusters and members) as a tutorial config.yml."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace_name", help="e.g. bgmrbluegranite2devws")
        parser.add_argument("--output", help="write to this file instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["workspace_name"]
        workspace = Workspace.objects.select_related("owner").filter(workspace_name__iexact=name).first()
        if workspace is None:
            raise CommandError(f"no workspace named '{name}' in the portal")
        text = export_config(workspace)
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["output"]).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot write {options['output']}: {exc}") from exc
        self.stdout.write(f"Wrote {workspace.workspace_name} to {options['output']}")
