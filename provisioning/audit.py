"""The audit trail: append-only, hash-chained events written in the caller's transaction."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from provisioning.models import AuditCheckpoint, AuditEvent

logger = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# Each step of a run is an event ("step.succeeded", "step.failed"): some sixty a request. The audit page and
# its exports leave them out unless asked; the page folds them under the event that started their run (every
# run starts with its request becoming provisioning, or rolling back: engine.runs, workflow.recovery).
STEP_PREFIX = "step."
RUN_STARTS = ("request.provisioning", "request.rolling_back")
# Any constant works: it names the lock that serializes appends to the chain on PostgreSQL.
_CHAIN_LOCK_KEY = 0x41554449  # "AUDI"


# How the actions being recorded came, when the entry point says so (a management command: "cli").
_via: ContextVar[str] = ContextVar("audit_via", default="")


@contextmanager
def audit_via(via: str) -> Iterator[None]:
    """Record the events written inside the block as having come ``via`` this channel (e.g. "cli").

    The entry point knows how an action came; the services below it do not need a parameter for it."""
    if via not in AuditEvent.Via.values:
        raise ValueError(f"unknown audit channel: {via!r}")
    token = _via.set(via)
    try:
        yield
    finally:
        _via.reset(token)


def _actor_id(actor: Any) -> str:
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return str(getattr(actor, "username", actor))


def _is_person(actor: Any) -> bool:
    return actor is not None and not isinstance(actor, str) and hasattr(actor, "get_full_name")


def _actor_names(actor: Any) -> tuple[str, str]:
    """The actor's display name and UPN as they are now (read from the object: no query).

    A non-person actor ("system", "worker", "discovery") is its own name: one blanket "system" would make
    a search for "system" find every worker's event too."""
    if not _is_person(actor):
        return _actor_id(actor), ""
    upn = getattr(actor, "upn", "") or getattr(actor, "email", "") or ""
    return actor.get_full_name() or upn or _actor_id(actor), upn


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
    via: str = "",
) -> AuditEvent:
    """Append one event to the chain. Must run inside the transaction of the change it records.

    The actor's name and UPN are copied from the user given (a non-person actor is named by itself); ``via``
    defaults to the channel ``audit_via`` set, else "web" for a person and "system" otherwise."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audit_record must run inside the transaction of the change it records")
    if obj is not None:
        object_type = object_type or obj._meta.model_name
        object_id = object_id or obj.pk
    via = via or _via.get() or (AuditEvent.Via.WEB if _is_person(actor) else AuditEvent.Via.SYSTEM)
    actor_name, actor_upn = _actor_names(actor)
    _lock_chain()
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    event = AuditEvent(
        created_at=timezone.now(),
        actor=_actor_id(actor),
        actor_name=actor_name[:300],
        actor_upn=actor_upn[:254],
        via=via,
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


def audit_verify_chain(
    events: Iterator[AuditEvent] | None = None, *, start_hash: str = GENESIS_HASH
) -> tuple[int, ChainBreak | None]:
    """Walk the chain in order; return how many events were checked and the first break, if any.

    ``start_hash``: the hash the first event links to (the genesis, or a checkpointed event's)."""
    if events is None:
        events = AuditEvent.objects.order_by("id").iterator(chunk_size=2000)
    expected_prev = start_hash
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


# --- the anchor: the chain's head, signed with a key the database does not hold ---------------------------


def _anchor_key() -> bytes:
    key = settings.AUDIT_ANCHOR_KEY
    if not key:
        raise ImproperlyConfigured(
            "AUDIT_ANCHOR_KEY is not set: audit checkpoints are signed with it (required when DEBUG is off; "
            "the workers and audit_verify need it, the web does not)"
        )
    return str(key).encode()


def _sign(checkpoint: AuditCheckpoint) -> str:
    return hmac.new(_anchor_key(), checkpoint.message().encode(), hashlib.sha256).hexdigest()


def audit_anchor_problem(checkpoint: AuditCheckpoint | None = None) -> str | None:
    """What is wrong with the newest checkpoint (or the one given) against the audit table; None if sound.

    It must carry a valid signature, and its event must still be in the table with the same hash and the
    same number of events up to it: deleting the newest events (below it) fails here.
    """
    checkpoint = checkpoint or AuditCheckpoint.objects.order_by("-id").first()
    if checkpoint is None:
        return None
    if not hmac.compare_digest(_sign(checkpoint), checkpoint.signature):
        return f"checkpoint #{checkpoint.pk} has an invalid signature (forged or altered, or another key)"
    event_hash = AuditEvent.objects.filter(pk=checkpoint.event_id).values_list("hash", flat=True).first()
    if event_hash is None:
        return (
            f"event #{checkpoint.event_id}, the chain's head at checkpoint #{checkpoint.pk} "
            f"({checkpoint.created_at.isoformat()}), is missing: the newest events were removed"
        )
    if event_hash != checkpoint.event_hash:
        return f"event #{checkpoint.event_id} no longer has the hash checkpoint #{checkpoint.pk} signed"
    held = AuditEvent.objects.filter(pk__lte=checkpoint.event_id).count()
    if held != checkpoint.events:
        return (
            f"checkpoint #{checkpoint.pk} signed {checkpoint.events} events up to event #{checkpoint.event_id}; "
            f"the table holds {held}"
        )
    return None


def audit_checkpoint() -> AuditCheckpoint | None:
    """Sign the chain's head and store it (and log it); None on an empty trail.

    The events since the previous checkpoint are verified first (their links from its event and their
    hashes), so a checkpoint never blesses an edit; a head already checkpointed is not signed again.
    Raises ``RuntimeError`` when the chain or the previous checkpoint does not hold.
    """
    with transaction.atomic():
        _lock_chain()  # the head cannot move while it is read and signed
        previous = AuditCheckpoint.objects.order_by("-id").first()
        problem = audit_anchor_problem(previous) if previous else None
        if problem is None:
            since = AuditEvent.objects.order_by("id")
            start = GENESIS_HASH
            if previous is not None:
                since, start = since.filter(pk__gt=previous.event_id), previous.event_hash
            _, broken = audit_verify_chain(since.iterator(chunk_size=2000), start_hash=start)
            if broken is not None:
                problem = f"event #{broken.event_id}: {broken.reason}"
        if problem:
            logger.error("audit checkpoint refused: %s", problem)
            raise RuntimeError(f"audit checkpoint refused: {problem}")
        head = AuditEvent.objects.order_by("-id").values_list("pk", "hash").first()
        if head is None:
            return None
        if previous is not None and previous.event_id == head[0]:
            return previous
        checkpoint = AuditCheckpoint(
            created_at=timezone.now(),
            event_id=head[0],
            event_hash=head[1],
            events=AuditEvent.objects.filter(pk__lte=head[0]).count(),
        )
        checkpoint.signature = _sign(checkpoint)
        checkpoint.save(force_insert=True)
    # The log is the second place the anchor lives: whoever rewrites the table does not rewrite it.
    logger.info(
        "audit checkpoint #%s: event #%s hash %s, %s events, at %s, hmac %s",
        checkpoint.pk,
        checkpoint.event_id,
        checkpoint.event_hash,
        checkpoint.events,
        checkpoint.created_at.isoformat(),
        checkpoint.signature,
    )
    return checkpoint
