"""``manage.py purge_key_vault NAME --admin UPN``: purge a soft-deleted key vault now, freeing its name.

Run in this process like a worker (its own Azure clients from settings). Azure refuses while the vault's
purge protection is on: the command prints Azure's reason and exits non-zero. Purging one already purged
changes nothing. Audited as the admin's, like the workspace page's button.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.engine.key_vaults import deleted_vault_purge
from provisioning.management.commands._cli import from_command_line, request_error, user_by_name
from provisioning.workflow import key_vaults
from provisioning.workflow.transitions import RequestError


class Command(BaseCommand):
    help = "Purge a soft-deleted key vault the portal knows (admins); its name is free at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", metavar="NAME", help="the deleted key vault's name")
        parser.add_argument("--admin", required=True, help="UPN or username of the admin purging it")

    @from_command_line
    def handle(self, *args: Any, **options: Any) -> None:
        admin = user_by_name(options["admin"], role="admin")
        try:
            vault = key_vaults.key_vault_purge_check(name=options["name"], actor=admin)
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except RequestError as exc:
            raise request_error(exc) from exc
        if vault.purged_at is not None:
            self.stdout.write(f"Key vault {vault.name} was purged already; its name is free.")
            return
        vault = deleted_vault_purge(vault_id=vault.pk, actor_id=admin.pk)
        if vault.purged_at is None:
            raise CommandError(f"Azure refused to purge key vault {vault.name}: {vault.purge_error}")
        self.stdout.write(f"Key vault {vault.name} purged by {admin.principal_name}; its name is free.")
