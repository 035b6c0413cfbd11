"""``manage.py approve_request ID --approver UPN``: approve a submitted request (provisioning follows)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.management.commands._cli import from_command_line, request_error, user_by_name
from provisioning.workflow import services


class Command(BaseCommand):
    help = "Approve a submitted request as an admin; provisioning is queued once it is saved."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request_id", type=int)
        parser.add_argument("--approver", required=True, help="UPN or username of the approving admin")

    @from_command_line
    def handle(self, *args: Any, **options: Any) -> None:
        approver = user_by_name(options["approver"], role="approver")
        try:
            cr = services.request_approve(request_id=options["request_id"], approver=approver)
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except services.RequestError as exc:
            raise request_error(exc) from exc
        self.stdout.write(
            f"Request #{cr.pk} ({cr.workspace_name}) approved by {approver.principal_name}; "
            f"status {cr.status}, provisioning queued"
        )
