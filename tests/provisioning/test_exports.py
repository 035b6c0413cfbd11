"""Audit exports: asked for by an admin, written by a job, downloaded by that admin alone, expired."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import personas
from provisioning import exports
from provisioning.audit import audit_record
from provisioning.models import AuditEvent, AuditExport
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def trail(db: None) -> None:
    with transaction.atomic():
        for n in range(5):
            audit_record(
                actor=f"actor{n}", action="test.note", object_type="note", object_id=n, after={"n": n}
            )


def _ask(user, fmt: str = "csv", **filters: object) -> AuditExport:  # type: ignore[no-untyped-def]
    return exports.audit_export_request(requester=user, filters=filters, fmt=fmt)


def _file(export: AuditExport) -> str:
    export.refresh_from_db()
    with exports.export_storage().open(export.file_name, "rb") as raw:
        return raw.read().decode()


def test_a_json_lines_export_holds_one_event_per_line(trail, bob) -> None:
    export = _ask(bob, "jsonl", actor="actor")
    assert exports.audit_export_run(export_id=export.pk) == AuditExport.Status.READY

    lines = [json.loads(line) for line in _file(export).splitlines()]

    assert [line["actor"] for line in lines] == [f"actor{n}" for n in range(5)]
    assert lines[2]["after"] == {"n": 2}
    assert lines[1]["prev_hash"] == lines[0]["hash"]
    export.refresh_from_db()
    assert (export.rows, export.size_bytes) == (5, len(_file(export).encode()))
    assert export.expires_at == export.finished_at + timedelta(hours=exports.EXPORT_HOURS)


def test_asking_is_audited_and_the_file_is_the_trail_as_it_stood(trail, bob) -> None:
    export = _ask(bob)
    with transaction.atomic():
        audit_record(actor="later", action="test.later", object_type="note", object_id=9)
    exports.audit_export_run(export_id=export.pk)

    text = _file(export)

    assert "test.later" not in text
    assert "audit.export_requested" not in text
    asked = AuditEvent.objects.get(action="audit.export_requested")
    assert (asked.actor, asked.object_id, asked.after["format"]) == ("bob", str(export.pk), "csv")


def test_a_second_delivery_of_the_job_finds_nothing_to_do(trail, bob) -> None:
    export = _ask(bob)
    assert exports.audit_export_run(export_id=export.pk) == AuditExport.Status.READY
    name = AuditExport.objects.get(pk=export.pk).file_name

    assert exports.audit_export_run(export_id=export.pk) == "nothing to do"
    assert AuditExport.objects.get(pk=export.pk).file_name == name


def test_only_admins_export_and_only_the_requester_downloads(client, trail, alice, bob) -> None:
    with pytest.raises(PermissionDenied):
        _ask(alice)
    export = _ask(bob)
    exports.audit_export_run(export_id=export.pk)
    other_admin = factories.UserFactory(persona=personas.ADMIN)
    url = reverse("provisioning:audit_export_download", args=[export.pk])

    client.force_login(other_admin)
    assert client.get(url).status_code == 404
    assert url not in client.get(reverse("provisioning:audit_exports")).content.decode()
    client.force_login(bob)
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    assert b"test.note" in b"".join(response.streaming_content)
    downloaded = AuditEvent.objects.get(action="audit.export_downloaded")
    assert (downloaded.actor, downloaded.object_id) == ("bob", str(export.pk))


def test_the_exports_page_offers_a_ready_file_and_polls_while_one_is_written(client, trail, bob) -> None:
    client.force_login(bob)
    waiting = _ask(bob)
    page = client.get(reverse("provisioning:audit_exports")).content.decode()
    assert 'hx-trigger="every 2s"' in page
    assert "Queued" in page

    exports.audit_export_run(export_id=waiting.pk)
    page = client.get(reverse("provisioning:audit_exports")).content.decode()

    assert 'hx-trigger="every 2s"' not in page
    assert reverse("provisioning:audit_export_download", args=[waiting.pk]) in page


def test_an_admin_has_at_most_three_exports_being_written(bob) -> None:
    for _ in range(exports.MAX_OPEN_PER_USER):
        _ask(bob)
    with pytest.raises(exports.ExportError, match="already have 3"):
        _ask(bob)
    assert AuditExport.objects.count() == exports.MAX_OPEN_PER_USER


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"password": "x"}, "unknown filters: password"),
        ({"actor": "a" * 255}, "actor: at most 254"),
        ({"workspace": "w" * 34}, "workspace: at most 33"),
        ({"request": "-1"}, "request: a request number"),
        ({"request": "1 OR 1=1"}, "request: a request number"),
        ({"date_from": "yesterday"}, "date_from: not a date"),
        ({"date_from": "2026-12-04", "date_to": "2026-12-01"}, "before the start date"),
    ],
)
def test_the_service_bounds_its_filters_itself(bob, filters, message) -> None:
    with pytest.raises(exports.ExportError, match=message):
        exports.audit_export_request(requester=bob, filters=filters, fmt="csv")
    assert not AuditExport.objects.exists()


def test_an_unknown_format_is_refused(bob) -> None:
    with pytest.raises(exports.ExportError, match="format"):
        _ask(bob, "xlsx")


def test_the_sweep_deletes_expired_files(trail, bob) -> None:
    export = _ask(bob)
    exports.audit_export_run(export_id=export.pk)
    export.refresh_from_db()
    storage = exports.export_storage()
    assert storage.exists(export.file_name)

    swept = exports.audit_exports_sweep(now=export.expires_at + timedelta(seconds=1))

    assert swept["expired"] == 1
    assert not storage.exists(export.file_name)
    export.refresh_from_db()
    assert (export.status, export.file_name) == (AuditExport.Status.EXPIRED, "")


def test_the_sweep_queues_again_an_export_redis_lost_or_a_dead_worker_left(trail, bob, rq_queue) -> None:
    lost = _ask(bob)  # its on-commit enqueue never ran: as if Redis had lost it
    stalled = _ask(bob)
    AuditExport.objects.filter(pk=stalled.pk).update(
        status=AuditExport.Status.RUNNING, started_at=timezone.now() - timedelta(hours=2)
    )

    swept = exports.audit_exports_sweep(now=timezone.now() + timedelta(minutes=5))

    assert swept["requeued"] == 2
    assert set(rq_queue.job_ids) == {lost.job_id, stalled.job_id}
    assert AuditExport.objects.get(pk=stalled.pk).status == AuditExport.Status.QUEUED
    assert exports.audit_export_run(export_id=stalled.pk) == AuditExport.Status.READY
