"""``manage.py import_config FILE --requester UPN [--submit]``: a tutorial ``config.yml`` as a request.

The file is checked like the web form (policy, Azure naming rules, names already in use); every
problem names its line and field. Nothing is written unless the whole import succeeds: the draft,
its submission and their audit events are one transaction.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts import personas
from provisioning.configfile import ConfigError, parse_config
from provisioning.management.commands._cli import request_error, user_by_name
from provisioning.models import ChangeRequest
from provisioning.workflow import services


def _read(path: str) -> tuple[str, str]:
    """The file's text and the name to use in messages ("-" reads standard input)."""
    if path == "-":
        return sys.stdin.read(), "<stdin>"
    try:
        return Path(path).read_text(encoding="utf-8"), Path(path).name
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}") from exc


class Command(BaseCommand):
    help = "Turn a tutorial config.yml into a new-workspace request (a draft, or submitted with --submit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the config.yml to import ('-' for standard input)")
        parser.add_argument("--requester", required=True, help="UPN or username of the requesting team lead")
        parser.add_argument("--submit", action="store_true", help="submit the request for approval too")

    def handle(self, *args: Any, **options: Any) -> None:
        requester = user_by_name(options["requester"], role="requester")
        if not personas.is_team_lead(requester):
            raise CommandError(
                f"{requester.principal_name} is not a team lead; only team leads make requests"
            )
        text, source = _read(options["file"])
        try:
            spec = parse_config(text, source=source)
            with transaction.atomic():
                cr = services.request_create(
                    requester=requester, kind=ChangeRequest.Kind.NEW_WORKSPACE, spec=spec
                )
                if options["submit"]:
                    cr = services.request_submit(request_id=cr.pk, actor=requester)
        except ConfigError as exc:
            raise CommandError(exc.message) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except services.RequestError as exc:
            raise request_error(exc) from exc
        self._report(cr, spec)

    def _report(self, cr: ChangeRequest, spec: Any) -> None:
        names = spec.workspace.names()
        self.stdout.write(
            f"Request #{cr.pk}: {cr.get_kind_display().lower()} {cr.workspace_name}, status {cr.status}"
        )
        self.stdout.write(
            f"  resource group {names.resource_group}; {len(spec.clusters)} cluster(s); "
            f"{len(spec.all_members())} member(s)"
        )
        if cr.status == ChangeRequest.Status.DRAFT:
            self.stdout.write("  it is a draft: submit it in the portal, or import again with --submit")
