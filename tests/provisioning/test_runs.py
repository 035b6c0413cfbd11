"""Leases on runs: one worker at a time holds a run, a stalled one is replaced, and only the holder closes it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from provisioning.engine import runs
from provisioning.models import AuditEvent, ChangeRequest, Run
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status


@pytest.fixture
def approved(policy: Any, alice: Any, bob: Any, rq_queue: Any) -> ChangeRequest:
    return ChangeRequestFactory(requester=alice, approver=bob, approved=True)


def _expire(run: Run) -> None:
    Run.objects.filter(pk=run.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))


def test_a_second_delivery_while_the_lease_is_held_does_nothing(approved) -> None:
    run = runs.run_claim(request_id=approved.pk, worker="a")

    assert run is not None and run.lease_owner == "a" and run.deliveries == 1
    assert runs.run_claim(request_id=approved.pk, worker="b") is None
    assert runs.run_heartbeat(run_id=run.pk, worker="a")


def test_a_stalled_worker_is_replaced_and_cannot_close_the_run_it_lost(approved) -> None:
    first = runs.run_claim(request_id=approved.pk, worker="a")
    assert first is not None
    _expire(first)

    second = runs.run_claim(request_id=approved.pk, worker="b")

    assert second is not None and second.pk == first.pk and second.deliveries == 2
    assert not runs.run_heartbeat(run_id=first.pk, worker="a")  # a finds out at its next beat...
    kept = runs.run_finish(run_id=first.pk, worker="a")  # ...or when it tries to close the run
    assert (kept.status, kept.lease_owner) == (Run.Status.RUNNING, "b")
    approved.refresh_from_db()
    assert approved.status == Status.PROVISIONING
    assert not AuditEvent.objects.filter(request_id=approved.pk, action="request.succeeded").exists()

    closed = runs.run_finish(run_id=first.pk, worker="b")

    assert closed.status == Run.Status.SUCCEEDED
    approved.refresh_from_db()
    assert approved.status == Status.SUCCEEDED
    assert runs.run_finish(run_id=first.pk, worker="b").status == Run.Status.SUCCEEDED  # closing twice: no-op
    assert AuditEvent.objects.filter(request_id=approved.pk, action="request.succeeded").count() == 1
