"""``manage.py import_config FILE --requester UPN [--submit]``: a tutorial ``config.yml`` as a request.

For a workspace the portal does not hold, a new-workspace request. For one it holds, the file is its
desired state: a ``change_workspace`` request whose plan is the difference between the file and the
approved state (``plan_config`` prints it without saving); a file that matches changes nothing and
saves nothing. The file is checked like the web form (policy, Azure naming rules, names already in
use); every problem names its line and field. Nothing is written unless the whole import succeeds:
the draft, its submission and their audit events are one transaction.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts import personas
from provisioning.configfile import ConfigError, change_line, desired_state
from provisioning.management.commands._cli import from_command_line, request_error, user_by_name
from provisioning.models import ChangeRequest
from provisioning.workflow import config_requests, services


def read_config(path: str) -> tuple[str, str]:
    """The file's text and the name to use in messages ("-" reads standard input)."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(path).read_text(encoding="utf-8"), Path(path).name
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc


class Command(BaseCommand):
    help = (
        "Turn a tutorial config.yml into a request (a draft, or submitted with --submit): a new workspace, or "
        "the changes that make an existing one match the file."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the config.yml to import ('-' for standard input)")
        parser.add_argument("--requester", required=True, help="UPN or username of the requesting team lead")
        parser.add_argument("--submit", action="store_true", help="submit the request for approval too")

    @from_command_line
    def handle(self, *args: Any, **options: Any) -> None:
        requester = user_by_name(options["requester"], role="requester")
        if not personas.is_team_lead(requester):
            raise CommandError(
                f"{requester.principal_name} is not a team lead; only team leads make requests"
            )
        text, source = read_config(options["file"])
        try:
            desired = desired_state(text, source=source)
            with transaction.atomic():
                made = config_requests.request_from_config(requester=requester, desired=desired)
                if made is None:
                    assert desired.workspace is not None  # nosec B101 # a desired state always has a workspace (mypy narrowing)
                    self.stdout.write(
                        f"No changes: workspace {desired.workspace.workspace_name} matches the file; nothing saved"
                    )
                    return
                cr = made
                if options["submit"]:
                    cr = services.request_submit(request_id=cr.pk, actor=requester)
        except ConfigError as exc:
            raise CommandError(exc.message) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except services.RequestError as exc:
            raise request_error(exc) from exc
        for note in desired.notes:
            self.stdout.write(f"  note: {note}")
        self._report(cr, desired.spec)

    def _report(self, cr: ChangeRequest, spec: Any) -> None:
        self.stdout.write(
            f"Request #{cr.pk}: {cr.get_kind_display().lower()} {cr.workspace_name}, status {cr.status}"
        )
        if spec.workspace is not None:
            names = spec.workspace.names()
            self.stdout.write(
                f"  resource group {names.resource_group}; {len(spec.clusters)} cluster(s); "
                f"{len(spec.all_members())} member(s)"
            )
        else:
            for change in services.request_plan(cr)["changes"]:
                self.stdout.write(f"  {change_line(change)}")
        if cr.status == ChangeRequest.Status.DRAFT:
            self.stdout.write("  it is a draft: submit it in the portal, or import again with --submit")
