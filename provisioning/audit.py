"""The audit trail: append-only, hash-chained events written in the caller's transaction."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from provisioning.models import AuditEvent

GENESIS_HASH = "0" * 64
# Any constant works: it names the lock that serializes appends to the chain on PostgreSQL.
_CHAIN_LOCK_KEY = 0x41554449  # "AUDI"


def _actor_name(actor: Any) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return str(getattr(actor, "username", actor))


def _plain(value: Any) -> Any:
    """JSON-safe copy, so the hash is the same before and after the database round trip."""
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _lock_chain() -> None:
    """Serialize appends so two transactions never link to the same previous event.

    PostgreSQL: a transaction-scoped advisory lock. SQLite: the portal opens transactions with
    BEGIN IMMEDIATE, which already serializes writers.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_KEY])


def audit_record(
    *,
    actor: Any,
    action: str,
    obj: Any = None,
    object_type: str = "",
    object_id: str | int = "",
    request_id: int | None = None,
    workspace_name: str = "",
    before: Any = None,
    after: Any = None,
    message: str = "",
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change it records."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    _lock_chain()
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    event = AuditEvent(
        created_at=timezone.now(),
        actor=_actor_name(actor),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        request_id=request_id,
        workspace_name=workspace_name,
        before=_plain(before),
        after=_plain(after),
        message=message,
        prev_hash=last or GENESIS_HASH,
    )
    event.hash = event.compute_hash()
    event.save(force_insert=True)
    return event


@dataclass(frozen=True)
class ChainBreak:
    """The first event whose stored hash or link does not match its content."""

    event_id: int
    reason: str


def audit_verify_chain(events: Iterator[AuditEvent] | None = None) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many events were checked and the first break, if any."""
    if events is None:
        events = AuditEvent.objects.order_by("id").iterator(chunk_size=2000)
    expected_prev = GENESIS_HASH
    checked = 0
    for event in events:
        checked += 1
        if event.prev_hash != expected_prev:
            return checked, ChainBreak(
                event.pk, "its link to the previous event does not match (row removed or reordered)"
            )
        if event.compute_hash() != event.hash:
            return checked, ChainBreak(event.pk, "its content does not match its hash (row altered)")
        expected_prev = event.hash
    return checked, None
