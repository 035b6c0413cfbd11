"""The audit trail: hash-chained, append-only on PostgreSQL, and ``audit_verify`` finds any edit."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.utils import Error as DatabaseError
from django.utils import timezone

from provisioning.audit import GENESIS_HASH, audit_record, audit_verify_chain, audit_via
from provisioning.models import AuditEvent
from tests.factories import ChangeRequestFactory, UserFactory, tutorial_spec

pytestmark = pytest.mark.django_db

TRIGGER = "provisioning_auditevent_append_only"
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the append-only trigger exists on PostgreSQL only"
)


@pytest.fixture
def trail(policy, alice, bob, charlie) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    """Events written by the services: alice's request approved, charlie's rejected (six events)."""
    ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    ChangeRequestFactory(
        requester=charlie,
        approver=bob,
        spec=tutorial_spec(team="other"),
        reason="duplicate of alice's",
        rejected=True,
    )
    return list(AuditEvent.objects.order_by("id"))


@contextmanager
def behind_the_triggers_back() -> Iterator[None]:
    """What a database superuser could do: switch the append-only trigger off for a moment."""
    if connection.vendor != "postgresql":
        yield  # SQLite has no trigger; the chain is the only guard there
        return
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE provisioning_auditevent DISABLE TRIGGER {TRIGGER}")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE provisioning_auditevent ENABLE TRIGGER {TRIGGER}")


def verify() -> str:
    """``manage.py audit_verify``'s verdict on the chain (its first line; the anchor follows, see
    test_audit_anchor.py); raises CommandError when the chain is broken."""
    from io import StringIO

    out = StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue().splitlines()[0]


# --- the chain ---------------------------------------------------------------------------------------------


def test_services_write_one_linked_chain(trail):
    assert [e.action for e in trail] == [
        "request.created",
        "request.submitted",
        "request.approved",
        "request.created",
        "request.submitted",
        "request.rejected",
    ]
    assert trail[0].prev_hash == GENESIS_HASH
    for previous, event in itertools.pairwise(trail):
        assert event.prev_hash == previous.hash
    assert all(e.hash == e.compute_hash() for e in trail)
    assert audit_verify_chain() == (6, None)


def test_events_record_who_what_and_when(trail, alice, bob):
    approved = trail[2]
    assert (approved.actor, approved.action, approved.object_type) == (
        bob.username,
        "request.approved",
        "change_request",
    )
    assert approved.request_id == int(approved.object_id)
    assert approved.workspace_name == "bgmrbluegranite2devws"
    assert (approved.before["status"], approved.after["status"]) == ("submitted", "approved")
    assert approved.created_at.utcoffset().total_seconds() == 0
    assert trail[5].message == "duplicate of alice's"


def test_audit_verify_says_ok(trail):
    assert verify() == "OK: 6 events, chain intact"


def test_audit_verify_on_an_empty_trail(db):
    assert verify() == "OK: 0 events, chain intact"


def test_audit_record_refuses_to_run_outside_a_transaction(transactional_db):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit_record(actor="system", action="test.note", object_type="note", object_id=1)
    assert not AuditEvent.objects.exists()


# --- the database refuses changes (PostgreSQL) ------------------------------------------------------------


@postgres_only
def test_the_append_only_trigger_is_installed(db):
    with connection.cursor() as cursor:
        cursor.execute("SELECT tgenabled FROM pg_trigger WHERE tgname = %s", [TRIGGER])
        assert cursor.fetchall() == [("O",)]


@postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE provisioning_auditevent SET actor = 'mallory' WHERE id = %s",
        "DELETE FROM provisioning_auditevent WHERE id = %s",
    ],
    ids=["update", "delete"],
)
def test_raw_update_and_delete_are_refused(trail, sql: str):
    target = trail[2]
    with (
        pytest.raises(DatabaseError, match="append-only"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [target.pk])
    target.refresh_from_db()
    assert target.actor == "bob"
    assert AuditEvent.objects.count() == 6


@postgres_only
def test_truncate_is_refused_where_the_database_does_not_allow_it(trail):
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL portal.allow_audit_truncate = 'off'")  # as on every real database
        with pytest.raises(DatabaseError, match="append-only: TRUNCATE"), transaction.atomic():
            cursor.execute("TRUNCATE provisioning_auditevent CASCADE")
    assert AuditEvent.objects.count() == 6


@postgres_only
def test_orm_update_and_delete_are_refused(trail):
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=trail[0].pk).update(message="nothing happened")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.count() == 6
    assert verify() == "OK: 6 events, chain intact"


# --- audit_verify finds edits made behind the database's back ---------------------------------------------


def test_an_altered_event_is_found(trail):
    target = trail[2]
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk=target.pk).update(actor="mallory")
    with pytest.raises(CommandError) as exc:
        verify()
    assert str(exc.value) == (
        f"BROKEN at event #{target.pk} ({target.created_at.isoformat()}, request.approved): "
        "its content does not match its hash (row altered)"
    )
    assert audit_verify_chain()[1].event_id == target.pk


def test_an_altered_and_rehashed_event_breaks_the_next_link(trail):
    """Recomputing the altered event's hash does not help: the next event still links to the old one."""
    target, following = trail[1], trail[2]
    target.message = "approved by phone"
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk=target.pk).update(message=target.message, hash=target.compute_hash())
    with pytest.raises(
        CommandError,
        match=rf"^BROKEN at event #{following.pk} \(.*, request\.approved\): "
        r"its link to the previous event does not match",
    ):
        verify()


def test_a_deleted_event_is_found(trail):
    removed, following = trail[3], trail[4]
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk=removed.pk).delete()
    with pytest.raises(CommandError) as exc:
        verify()
    assert str(exc.value) == (
        f"BROKEN at event #{following.pk} ({following.created_at.isoformat()}, request.submitted): "
        "its link to the previous event does not match (row removed or reordered)"
    )


def test_a_broken_chain_makes_manage_py_exit_non_zero(trail, capsys):
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk=trail[0].pk).update(action="request.approved")
    with pytest.raises(SystemExit) as exc:
        ManagementUtility(["manage.py", "audit_verify", "--skip-checks"]).execute()
    assert exc.value.code != 0
    assert f"BROKEN at event #{trail[0].pk} " in capsys.readouterr().err


def test_an_intact_chain_makes_manage_py_exit_zero(trail, capsys):
    ManagementUtility(["manage.py", "audit_verify", "--skip-checks"]).execute()
    assert capsys.readouterr().out.splitlines()[0] == "OK: 6 events, chain intact"


# --- who, by name, and how the action came ----------------------------------------------------------------


@pytest.fixture
def ada(db):  # type: ignore[no-untyped-def]
    return UserFactory(
        username="entra.t1.0b1d", first_name="Ada", last_name="Lovelace", upn="ada@contoso.com", email=""
    )


def _note(actor, **kwargs) -> AuditEvent:  # type: ignore[no-untyped-def]
    with transaction.atomic():
        return audit_record(actor=actor, action="test.note", object_type="note", object_id=1, **kwargs)


def _old_shaped(prev_hash: str) -> AuditEvent:
    """An event as the code before migration 0026 wrote it, hashed as that code hashed it."""
    now = timezone.now()
    body = {
        "created_at": now.isoformat(),
        "actor": "entra.t1.0b1d",
        "action": "test.old",
        "object_type": "note",
        "object_id": "1",
        "request_id": None,
        "workspace_name": "",
        "before": None,
        "after": {"n": 1},
        "message": "",
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)
    event = AuditEvent(
        **{**body, "created_at": now},
        prev_hash=prev_hash,
        hash=hashlib.sha256((prev_hash + text).encode()).hexdigest(),
    )
    event.save(force_insert=True)
    return event


def test_events_keep_the_actors_name_and_upn_as_they_were(ada):
    event = _note(ada)
    ada.first_name, ada.upn = "Ada", "ada.king@contoso.com"
    ada.save()

    event.refresh_from_db()
    assert (event.actor, event.actor_name, event.actor_upn, event.via) == (
        "entra.t1.0b1d",
        "Ada Lovelace",
        "ada@contoso.com",
        "web",
    )


def test_names_fall_back_to_the_email_and_a_system_actor_is_its_own_name(db):
    mailed = UserFactory(username="m", upn="", email="m@contoso.com")
    assert (_note(mailed).actor_name, _note(mailed).actor_upn) == ("m@contoso.com", "m@contoso.com")
    assert (_note(None).actor, _note(None).actor_name) == ("system", "system")
    worker = _note("worker")
    assert (worker.actor, worker.actor_name, worker.actor_upn, worker.via) == (
        "worker",
        "worker",
        "",
        "system",
    )


def test_the_channel_comes_from_the_keyword_or_the_entry_point(ada):
    assert _note(ada, via="api").via == "api"
    with audit_via("cli"):
        assert (_note(ada).via, _note(None).via) == ("cli", "cli")
    assert _note(ada).via == "web"
    with pytest.raises(ValueError, match="unknown audit channel"), audit_via("fax"):
        pass


def test_names_cost_no_query(ada, django_assert_num_queries):
    with transaction.atomic():
        with django_assert_num_queries(3) as for_a_person:
            audit_record(actor=ada, action="test.note", object_type="note", object_id=1)
        with django_assert_num_queries(len(for_a_person.captured_queries)):
            audit_record(actor="system", action="test.note", object_type="note", object_id=1)


def test_the_chain_verifies_across_old_and_new_events(ada):
    with transaction.atomic():
        first = _old_shaped(GENESIS_HASH)
    second = _note(ada)
    with transaction.atomic():
        third = _old_shaped(second.hash)
    _note(None)

    assert first.hash == first.compute_hash() and third.hash == third.compute_hash()
    assert "actor_name" not in first.canonical() and '"actor_name":"Ada Lovelace"' in second.canonical()
    assert verify() == "OK: 4 events, chain intact"


def test_a_rewritten_name_is_found(ada):
    event = _note(ada)
    with behind_the_triggers_back():
        AuditEvent.objects.filter(pk=event.pk).update(actor_name="Someone Else")
    with pytest.raises(CommandError, match=f"BROKEN at event #{event.pk} "):
        verify()
