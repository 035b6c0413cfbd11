"""``manage.py decommission_workspace NAME --requester UPN --reason TEXT [--keep-data] [--submit]``.

Makes the same request as the workspace page's "Decommission…": a draft, or submitted at once (a worker
then reads Azure for its plan). Exits non-zero with the reason on bad input or a refusal.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.management.commands._cli import (
    from_command_line,
    request_error,
    user_by_name,
    workspace_by_name,
)
from provisioning.workflow import decommission
from provisioning.workflow.transitions import RequestError


class Command(BaseCommand):
    help = "Ask to decommission a workspace (its managed resources and access removed, its history kept)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("workspace", metavar="NAME", help="the workspace's name")
        parser.add_argument(
            "--requester", required=True, help="UPN or username of a team lead of it, or an admin"
        )
        parser.add_argument("--reason", required=True, help="why it is decommissioned")
        parser.add_argument(
            "--keep-data",
            action="store_true",
            help="keep the data storage account and data lake (access removed, tagged as retained)",
        )
        parser.add_argument("--submit", action="store_true", help="submit it for approval at once")

    @from_command_line
    def handle(self, *args: Any, **options: Any) -> None:
        requester = user_by_name(options["requester"], role="requester")
        workspace = workspace_by_name(options["workspace"])
        try:
            cr = decommission.decommission_request(
                workspace_id=workspace.pk,
                requester=requester,
                reason=options["reason"],
                keep_data=options["keep_data"],
                submit=options["submit"],
            )
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except RequestError as exc:
            raise request_error(exc) from exc
        kept = " keeping its data" if options["keep_data"] else ""
        self.stdout.write(
            f"Request #{cr.pk}: decommission {cr.workspace_name}{kept}, {cr.get_status_display().lower()}"
        )
