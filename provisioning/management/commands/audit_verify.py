"""``manage.py audit_verify``: walk the audit hash chain and check its anchor; say whether anyone edited it.

PostgreSQL refuses UPDATE and DELETE on the audit table, but a superuser or the table's owner can disable
the trigger (or edit the files); the chain is what shows an edit afterwards. Removing the newest events
leaves a valid, shorter chain: the newest signed checkpoint (``AuditCheckpoint``, HMAC with
``AUDIT_ANCHOR_KEY``) is what shows that. Exit status 0 means intact; anything else names the first
event whose content or link does not match, or what the anchor found missing. Unless
``--no-checkpoint``, an intact chain is then checkpointed (so it needs the key, like the workers).
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from provisioning.audit import audit_anchor_problem, audit_checkpoint, audit_verify_chain
from provisioning.models import AuditCheckpoint, AuditEvent


class Command(BaseCommand):
    help = (
        "Verify the audit trail's hash chain and its signed checkpoint; exit non-zero at the first altered "
        "or missing event; then checkpoint the head."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--no-checkpoint", action="store_true", help="only verify; write no new checkpoint"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_verify_chain()
        if broken is not None:
            event = AuditEvent.objects.get(pk=broken.event_id)
            raise CommandError(
                f"BROKEN at event #{event.pk} ({event.created_at.isoformat()}, {event.action}): {broken.reason}"
            )
        self.stdout.write(f"OK: {checked} events, chain intact")
        try:
            problem = audit_anchor_problem()
            if problem is not None:
                raise CommandError(f"ANCHOR BROKEN: {problem}")
            newest = AuditCheckpoint.objects.order_by("-id").first()
            if newest is not None:
                self.stdout.write(
                    f"anchor: checkpoint #{newest.pk} ({newest.created_at.isoformat()}) signed event "
                    f"#{newest.event_id} and {newest.events} events: still there"
                )
            elif checked:
                self.stdout.write("anchor: no checkpoint yet")
            if not options["no_checkpoint"]:
                self._checkpoint(newest)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc

    def _checkpoint(self, newest: AuditCheckpoint | None) -> None:
        checkpoint = audit_checkpoint()
        if checkpoint is None:
            return
        if newest is not None and checkpoint.pk == newest.pk:
            self.stdout.write("checkpoint: the head is already checkpointed")
        else:
            self.stdout.write(f"checkpoint #{checkpoint.pk} written at event #{checkpoint.event_id}")
