"""Races between real database connections: two admins approving at once, many writers of the audit.

These need PostgreSQL's row locks and advisory locks; SQLite serializes every writer, so there is
no race to lose there.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction

from provisioning.audit import audit_record, audit_verify_chain
from provisioning.models import AuditEvent, ChangeRequest, Workspace
from provisioning.queue import provisioning_job_id
from provisioning.workflow import services
from provisioning.workflow.services import TransitionError
from tests import factories
from tests.factories import tutorial_spec

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set DATABASE_URL): SQLite serializes writers, so nothing races",
    ),
    pytest.mark.django_db(transaction=True),
]

TRIALS = 20


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at the same instant, each in its own thread (so its own connection)."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def worker(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[i] = call()
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def test_two_admins_approving_the_same_request_at_once(policy, alice, bob, rq_queue):
    frank = factories.admin("frank")
    for i in range(TRIALS):
        cr = factories.ChangeRequestFactory(
            requester=alice, spec=tutorial_spec(team=f"team{i}"), submitted=True
        )

        outcomes = run_together(
            lambda cr=cr: services.request_approve(request_id=cr.pk, approver=bob),
            lambda cr=cr: services.request_approve(request_id=cr.pk, approver=frank),
        )

        approved = [o for o in outcomes if isinstance(o, ChangeRequest)]
        refused = [o for o in outcomes if isinstance(o, TransitionError)]
        assert (len(approved), len(refused)) == (1, 1), outcomes
        cr.refresh_from_db()
        assert cr.status == ChangeRequest.Status.APPROVED
        assert cr.approver_id == approved[0].approver_id
        assert AuditEvent.objects.filter(request_id=cr.pk, action="request.approved").count() == 1
        assert Workspace.objects.filter(change_requests=cr).count() == 1
        assert rq_queue.job_ids.count(provisioning_job_id(cr.pk)) == 1

    # Submitting also queues a name check per request; count the provisioning jobs.
    assert len([j for j in rq_queue.job_ids if j.startswith("provision-")]) == TRIALS
    assert Workspace.objects.count() == TRIALS
    assert audit_verify_chain() == (AuditEvent.objects.count(), None)


def test_concurrent_audit_writers_keep_one_chain(db):
    writers, events_each = 8, 10

    def write(n: int) -> int:
        for i in range(events_each):
            with transaction.atomic():
                audit_record(actor=f"writer{n}", action="test.note", object_type="note", object_id=i)
        return n

    outcomes = run_together(*[lambda n=n: write(n) for n in range(writers)])
    assert outcomes == list(range(writers))
    assert AuditEvent.objects.count() == writers * events_each
    # Two transactions linking to the same previous event would fork the chain.
    prev_hashes = list(AuditEvent.objects.values_list("prev_hash", flat=True))
    assert len(set(prev_hashes)) == len(prev_hashes)
    assert audit_verify_chain() == (writers * events_each, None)
