"""The audit chain's anchor: removing the newest events, which leaves a valid shorter chain, is found.

A checkpoint signs the chain's head with ``AUDIT_ANCHOR_KEY`` (a key the database does not hold);
``audit_verify`` fails when the checkpointed event is gone or changed, or the checkpoint is forged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from provisioning import jobs
from provisioning.audit import audit_anchor_problem, audit_checkpoint, audit_record
from provisioning.management.commands.provisioning_scheduler import CHECKPOINT_JOB_ID
from provisioning.models import AuditCheckpoint, AuditEvent
from tests.provisioning.test_audit import behind_the_triggers_back, postgres_only

pytestmark = pytest.mark.django_db


def _events(count: int, start: int = 0) -> list[AuditEvent]:
    events = []
    for i in range(start, start + count):
        with transaction.atomic():
            events.append(audit_record(actor="alice", action="test.note", object_type="note", object_id=i))
    return events


def verify() -> str:
    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def _delete_newest(count: int) -> None:
    """What the table's owner (or a superuser) could do: switch the trigger off and delete the newest rows."""
    newest = list(AuditEvent.objects.order_by("-id").values_list("pk", flat=True)[:count])
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk__in=newest).delete()


def test_audit_verify_checkpoints_an_intact_chain() -> None:
    events = _events(3)
    out = verify()
    assert out.splitlines()[:2] == ["OK: 3 events, chain intact", "anchor: no checkpoint yet"]
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.event_id, checkpoint.event_hash, checkpoint.events) == (
        events[-1].pk,
        events[-1].hash,
        3,
    )
    assert f"checkpoint #{checkpoint.pk} written at event #{events[-1].pk}" in out
    again = verify()
    assert f"anchor: checkpoint #{checkpoint.pk}" in again and "already checkpointed" in again
    assert AuditCheckpoint.objects.count() == 1


def test_deleting_the_newest_events_below_a_checkpoint_fails_audit_verify() -> None:
    events = _events(5)
    checkpoint = audit_checkpoint()
    assert checkpoint is not None and checkpoint.event_id == events[-1].pk

    _delete_newest(2)

    with pytest.raises(CommandError, match=rf"^ANCHOR BROKEN: event #{events[-1].pk}, the chain's head at"):
        verify()
    # The shorter chain itself is valid: only the anchor shows the cut.
    assert "removed" in (audit_anchor_problem() or "")


def test_new_events_after_the_cut_do_not_hide_it() -> None:
    _events(4)
    audit_checkpoint()
    _delete_newest(1)
    _events(3, start=10)  # the chain goes on from the new head, every link valid

    with pytest.raises(CommandError, match=r"ANCHOR BROKEN: .* is missing: the newest events were removed"):
        verify()
    with pytest.raises(RuntimeError, match="audit checkpoint refused"):
        audit_checkpoint()  # never signs over the cut


def test_a_forged_checkpoint_fails_audit_verify() -> None:
    events = _events(3)
    audit_checkpoint()
    _delete_newest(1)
    forged = AuditCheckpoint(
        created_at=timezone.now(), event_id=events[1].pk, event_hash=events[1].hash, events=2
    )
    forged.signature = hmac.new(
        b"a key the forger has", forged.message().encode(), hashlib.sha256
    ).hexdigest()
    forged.save()

    with pytest.raises(
        CommandError, match=rf"ANCHOR BROKEN: checkpoint #{forged.pk} has an invalid signature"
    ):
        verify()


def test_a_checkpoint_signed_with_another_key_fails(settings: Any) -> None:
    _events(2)
    audit_checkpoint()
    settings.AUDIT_ANCHOR_KEY = "the production key"
    with pytest.raises(CommandError, match="invalid signature"):
        verify()


def test_without_the_key_nothing_is_signed_or_verified(settings: Any) -> None:
    _events(1)
    settings.AUDIT_ANCHOR_KEY = ""
    with pytest.raises(CommandError, match="AUDIT_ANCHOR_KEY is not set"):
        verify()
    assert not AuditCheckpoint.objects.exists()


def test_an_edit_since_the_last_checkpoint_is_never_signed() -> None:
    events = _events(3)
    audit_checkpoint()
    later = _events(2, start=3)
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk=later[0].pk).update(actor="mallory")
    with pytest.raises(RuntimeError, match=rf"event #{later[0].pk}: its content does not match"):
        audit_checkpoint()
    assert AuditCheckpoint.objects.get().event_id == events[-1].pk


def test_the_checkpoint_job_is_queued_by_the_scheduler_and_logged(rq_queue: Any, caplog: Any) -> None:
    events = _events(2)
    call_command("provisioning_scheduler", "--once")
    job = rq_queue.fetch_job(CHECKPOINT_JOB_ID)
    assert job.func_name == "provisioning.jobs.audit_checkpoint" and job.func_name in jobs.JOB_FUNCTIONS

    with caplog.at_level(logging.INFO, logger="provisioning.audit"):
        assert jobs.audit_checkpoint() == events[-1].pk
    checkpoint = AuditCheckpoint.objects.get()
    assert f"audit checkpoint #{checkpoint.pk}: event #{events[-1].pk} hash {events[-1].hash}" in caplog.text
    assert checkpoint.signature in caplog.text


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE provisioning_auditcheckpoint SET events = 1",
        "DELETE FROM provisioning_auditcheckpoint",
    ],
    ids=["update", "delete"],
)
def test_the_database_refuses_to_rewrite_checkpoints(sql: str) -> None:
    _events(2)
    audit_checkpoint()
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL portal.allow_audit_truncate = 'off'")  # as on every real database
        with pytest.raises(DatabaseError, match="append-only: TRUNCATE"), transaction.atomic():
            cursor.execute("TRUNCATE provisioning_auditcheckpoint")
    assert AuditCheckpoint.objects.get().events == 2
