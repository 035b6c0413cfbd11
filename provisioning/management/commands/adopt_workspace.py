"""``manage.py adopt_workspace ARM_ID --team-lead UPN [--manage] [--admin UPN]``: what the discover page does.

Adopts the workspace with this ARM id as *observed* (shown, reconciled and reported, never modified),
owned by the team lead (a portal user with the Team Lead persona, signed in at least once), acting as the
admin named by ``--admin``; without it, as the operator at the shell, audited as ``cli:<OS user>``. When the latest discovery did not find the workspace,
Azure is read again first (in this process). With ``--manage`` the portal then takes over its management:
the ``managed-by`` tag is added to every resource of the workspace (here, in this process; the job the
take-over also queues finds nothing left to do) and the workspace becomes managed.
"""

from __future__ import annotations

import getpass
from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.engine.adoption import discovery_run, take_over_run
from provisioning.management.commands._cli import from_command_line, user_by_name
from provisioning.workflow import adoption


class Command(BaseCommand):
    help = "Adopt an AzureML workspace the portal does not hold, as observed (or, with --manage, managed)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("arm_id", help="the workspace's ARM id (/subscriptions/.../workspaces/NAME)")
        parser.add_argument("--team-lead", required=True, help="UPN of the team lead who will own it")
        parser.add_argument(
            "--admin",
            help="UPN or username of the admin who adopts it (default: the shell's operator, cli:<user>)",
        )
        parser.add_argument("--manage", action="store_true", help="take over its management too (tags it)")

    @from_command_line
    def handle(self, *args: Any, **options: Any) -> None:
        admin: Any = (
            user_by_name(options["admin"], role="admin")
            if options["admin"]
            else f"{adoption.CLI_ACTOR_PREFIX}{getpass.getuser()}"
        )
        arm_id = options["arm_id"].strip()
        latest = adoption.discovery_latest()
        if latest is None or latest.workspace(arm_id) is None:
            discovery_run(actor=admin)
        try:
            ws = adoption.workspace_adopt(azure_id=arm_id, team_lead=options["team_lead"], actor=admin)
            self.stdout.write(
                f"Adopted {ws.workspace_name} as observed, owned by {ws.owner.principal_name}: "
                f"{ws.clusters.count()} clusters, {ws.memberships.count()} memberships."
            )
            if options["manage"]:
                adoption.workspace_take_over(workspace_id=ws.pk, actor=admin)
                done = take_over_run(workspace_id=ws.pk, actor_id=getattr(admin, "pk", None))
                self.stdout.write(
                    f"Tagged {len(done['tagged'])} resources; {ws.workspace_name} is managed now."
                )
        except adoption.AdoptionError as exc:
            raise CommandError(exc.message) from exc
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
