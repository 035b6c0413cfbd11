"""``manage.py audit_verify``: walk the audit hash chain and say whether anyone edited it.

PostgreSQL refuses UPDATE and DELETE on the audit table, but a superuser can disable the trigger
(or edit the files); the chain is what shows it afterwards. Exit status 0 means intact, anything
else names the first event whose content or link does not match.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from provisioning.audit import audit_verify_chain
from provisioning.models import AuditEvent


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit non-zero at the first altered or missing event."

    def handle(self, *args: Any, **options: Any) -> None:
        checked, broken = audit_verify_chain()
        if broken is None:
            self.stdout.write(f"OK: {checked} events, chain intact")
            return
        event = AuditEvent.objects.get(pk=broken.event_id)
        raise CommandError(
            f"BROKEN at event #{event.pk} ({event.created_at.isoformat()}, {event.action}): {broken.reason}"
        )
