"""``manage.py remediate_drift --workspace NAME --admin UPN [--item ID ...] [--accept --reason TEXT]``.

Acts on a workspace's open drift as an admin, like the drift page: every open item of the workspace, or
those named with ``--item`` (repeatable). Without ``--accept`` a remediation request is made, approved by
that admin and queued for a worker, which restores the approved state; access someone added by hand is
removed only when its item is named with ``--item``, and what lacks the portal's managed-by tag is never
touched. With ``--accept --reason TEXT`` the items are accepted: the approved state becomes what Azure has.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.management.commands._cli import request_error, user_by_name, workspace_by_name
from provisioning.models import DriftItem
from provisioning.workflow import drift
from provisioning.workflow.transitions import RequestError


class Command(BaseCommand):
    help = "Remediate (or, with --accept, accept) a workspace's open drift as an admin."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", required=True, metavar="NAME", help="the workspace's name")
        parser.add_argument("--admin", required=True, help="UPN or username of the admin who acts")
        parser.add_argument(
            "--item",
            type=int,
            action="append",
            metavar="ID",
            help="a drift item (repeatable; default: every open one)",
        )
        parser.add_argument(
            "--accept", action="store_true", help="accept instead: the approved state becomes Azure's"
        )
        parser.add_argument("--reason", default="", help="why the drift is accepted (required with --accept)")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["accept"] and not options["reason"].strip():
            raise CommandError("--accept needs --reason: say why the drift is accepted")
        if options["reason"] and not options["accept"]:
            raise CommandError("--reason goes with --accept")
        admin = user_by_name(options["admin"], role="admin")
        workspace = workspace_by_name(options["workspace"])
        try:
            if options["accept"]:
                self._accept(workspace, admin, options["item"], options["reason"])
            else:
                self._remediate(workspace, admin, options["item"])
        except PermissionDenied as exc:
            raise CommandError(str(exc)) from exc
        except RequestError as exc:
            raise request_error(exc) from exc

    def _accept(self, workspace: Any, admin: Any, ids: list[int] | None, reason: str) -> None:
        if ids is None:
            ids = list(
                workspace.drift_items.filter(status=DriftItem.Status.OPEN).values_list("pk", flat=True)
            )
            if not ids:
                raise CommandError(f"workspace {workspace.workspace_name} has no open drift")
        else:
            self._require_workspace(workspace, ids)
        items = drift.drift_accept(item_ids=ids, actor=admin, reason=reason)
        self.stdout.write(f"Accepted {len(items)} drift item{'s' if len(items) != 1 else ''} of {workspace}:")
        for item in items:
            self.stdout.write(f"  #{item.pk} {item.kind}: {item.target_name} {item.field}".rstrip())

    def _remediate(self, workspace: Any, admin: Any, ids: list[int] | None) -> None:
        cr = drift.drift_remediate(workspace_id=workspace.pk, actor=admin, item_ids=ids)
        items = list(cr.remediated_drift.order_by("pk"))
        self.stdout.write(
            f"Request #{cr.pk} remediates {len(items)} drift item{'s' if len(items) != 1 else ''} of {workspace}; "
            "queued for a worker"
        )
        for item in items:
            self.stdout.write(f"  #{item.pk} {item.kind}: {item.target_name} {item.field}".rstrip())
        left = workspace.drift_items.filter(status=DriftItem.Status.OPEN).order_by("pk")
        for item in left:
            why = drift.refusal(item) or "access added by hand: name its item with --item to remove it"
            self.stdout.write(f"  left open: #{item.pk} {item.kind}: {why}")

    @staticmethod
    def _require_workspace(workspace: Any, ids: list[int]) -> None:
        foreign = set(ids) - set(workspace.drift_items.filter(pk__in=ids).values_list("pk", flat=True))
        if foreign:
            raise CommandError(f"drift item #{min(foreign)} is not an item of workspace {workspace}")
