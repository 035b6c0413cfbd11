"""Exports of the audit trail, written by a worker to a file and downloaded by the admin who asked.

An export of 100,000 events takes seconds to write and tens of megabytes: streamed from a web
worker it would hold that worker for as long, and two at once stop a two-worker site. So asking for
an export only stores what was asked (the audit page's filters, and the newest event then: the file
is the trail as it stood) and queues a job; the job claims
the export with a conditional update, writes the file into the ``exports`` storage and marks it
ready. The requester downloads it until it expires (``EXPORT_HOURS``); the sweeper deletes expired
files and re-queues exports whose job was lost. Asking and downloading are audited.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import tempfile
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import IO, Any

from django.core.exceptions import PermissionDenied
from django.core.files import File
from django.core.files.storage import Storage, storages
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import queue
from provisioning.audit import STEP_PREFIX, audit_record
from provisioning.models import AuditEvent, AuditExport

logger = logging.getLogger(__name__)

JOB_FUNCTION = "provisioning.jobs.audit_export"
EXPORT_HOURS = 24
# Exports one admin may have queued or being written at once.
MAX_OPEN_PER_USER = 3
# A worker that died while writing leaves the export running; after this long it is queued again.
STALE_RUNNING = timedelta(hours=1)
CHUNK = 2000
CSV_COLUMNS = (
    "id",
    "created_at",
    "actor",
    "action",
    "object_type",
    "object_id",
    "request_id",
    "workspace_name",
    "before",
    "after",
    "message",
    # Added with issue #18: before the hashes, so the chain's two columns stay the last.
    "actor_name",
    "actor_upn",
    "via",
    "prev_hash",
    "hash",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# The filters an export may carry, with the longest text each accepts (the audit page's fields).
TEXT_FILTERS = {"actor": 254, "action": 60, "workspace": 33}
DATE_FILTERS = ("date_from", "date_to")


class ExportError(Exception):
    """An export cannot be made or downloaded as asked; the message says why."""


def export_storage() -> Storage:
    """Where export files live (``STORAGES["exports"]``: a directory both web and workers reach)."""
    return storages["exports"]


# --- filters ---------------------------------------------------------------------------------------------


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _date(value: Any, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ExportError(f"{name}: not a date (YYYY-MM-DD)") from exc


def filters_clean(raw: dict[str, Any]) -> dict[str, Any]:
    """The filters as an export stores them: known names only, text bounded, dates ISO, a request number."""
    unknown = set(raw) - {*TEXT_FILTERS, "request", *DATE_FILTERS, "steps"}
    if unknown:
        raise ExportError(f"unknown filters: {', '.join(sorted(unknown))}")
    clean: dict[str, Any] = {}
    for name, longest in TEXT_FILTERS.items():
        value = str(raw.get(name) or "").strip()
        if len(value) > longest:
            raise ExportError(f"{name}: at most {longest} characters")
        if value:
            clean[name] = value
    if raw.get("request") not in (None, ""):
        if not str(raw["request"]).isdigit() or int(raw["request"]) < 1:
            raise ExportError("request: a request number, e.g. 42")
        clean["request"] = int(raw["request"])
    for name in DATE_FILTERS:
        if raw.get(name) not in (None, ""):
            clean[name] = _date(raw[name], name).isoformat()
    if "date_from" in clean and "date_to" in clean and clean["date_from"] > clean["date_to"]:
        raise ExportError("date_to: the end date is before the start date")
    if raw.get("steps") not in (None, "", False, "0", "false", "False"):
        clean["steps"] = True
    return clean


def steps_shown(filters: dict[str, Any]) -> bool:
    """Whether step events are rows of their own: asked for, or named by the action filter."""
    return bool(filters.get("steps")) or str(filters.get("action", "")).lower().startswith("step")


def _actor_matches(text: str) -> Q:
    """The actor's id, recorded name or UPN contains ``text`` (any case); events recorded before names
    were (empty ``actor_name``) match by the user's name today.

    A plain partial match: no index serves it (a trigram index would), and none is needed while the page
    stops at its 51st match; a rare name scans further, as the id filter always did."""
    people = User.objects.filter(
        Q(first_name__icontains=text) | Q(last_name__icontains=text) | Q(upn__icontains=text)
    ).values("username")
    return (
        Q(actor__icontains=text)
        | Q(actor_name__icontains=text)
        | Q(actor_upn__icontains=text)
        | Q(actor_name="", actor__in=people)
    )


def events_matching(events: QuerySet[AuditEvent], filters: dict[str, Any]) -> QuerySet[AuditEvent]:
    """``events`` narrowed by clean filters (they combine with AND; the end date is inclusive, in UTC)."""
    if filters.get("actor"):
        events = events.filter(_actor_matches(filters["actor"]))
    if filters.get("action"):
        events = events.filter(action__startswith=filters["action"].lower())
    if not steps_shown(filters):
        events = events.exclude(action__startswith=STEP_PREFIX)
    if filters.get("workspace"):
        events = events.filter(workspace_name__icontains=filters["workspace"])
    if filters.get("request"):
        events = events.filter(request_id=filters["request"])
    if filters.get("date_from"):
        events = events.filter(created_at__gte=_utc_midnight(_date(filters["date_from"], "date_from")))
    if filters.get("date_to"):
        end = _date(filters["date_to"], "date_to") + timedelta(days=1)
        events = events.filter(created_at__lt=_utc_midnight(end))
    return events


# --- the file's lines ----------------------------------------------------------------------------------------


def csv_safe(cell: Any) -> Any:
    """Quote a text cell a spreadsheet would otherwise run as a formula."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _json_cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, cls=DjangoJSONEncoder)


def event_fields(event: AuditEvent) -> dict[str, Any]:
    """One event as the export's columns (``CSV_COLUMNS``), times in UTC."""
    return {
        "id": event.pk,
        "created_at": event.created_at.astimezone(UTC).isoformat(),
        "actor": event.actor,
        "actor_name": event.actor_name,
        "actor_upn": event.actor_upn,
        "via": event.via,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "request_id": event.request_id,
        "workspace_name": event.workspace_name,
        "before": event.before,
        "after": event.after,
        "message": event.message,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def csv_row(event: AuditEvent) -> list[Any]:
    """One event as a CSV row: JSON cells for before/after, formulas neutralized."""
    fields = event_fields(event)
    fields["request_id"] = "" if fields["request_id"] is None else fields["request_id"]
    fields["before"], fields["after"] = _json_cell(fields["before"]), _json_cell(fields["after"])
    return [csv_safe(fields[column]) for column in CSV_COLUMNS]


def _write_csv(events: Iterable[AuditEvent], out: IO[str]) -> int:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for event in events:
        writer.writerow(csv_row(event))
        count += 1
    return count


def _write_jsonl(events: Iterable[AuditEvent], out: IO[str]) -> int:
    count = 0
    for event in events:
        out.write(json.dumps(event_fields(event), sort_keys=True, cls=DjangoJSONEncoder) + "\n")
        count += 1
    return count


# --- asking, writing, downloading, expiring ------------------------------------------------------------------


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only portal administrators can export the audit trail")


def audit_export_request(*, requester: Any, filters: dict[str, Any], fmt: str) -> AuditExport:
    """Record an admin's export of the filtered trail and queue its job once the transaction commits."""
    _require_admin(requester)
    if fmt not in AuditExport.Format.values:
        raise ExportError(f"format: one of {', '.join(AuditExport.Format.values)}")
    clean = filters_clean(filters)
    with transaction.atomic():
        open_now = AuditExport.objects.select_for_update().filter(
            requester=requester, status__in=(AuditExport.Status.QUEUED, AuditExport.Status.RUNNING)
        )
        if len(open_now) >= MAX_OPEN_PER_USER:
            raise ExportError(f"you already have {MAX_OPEN_PER_USER} exports being written: wait for one")
        newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        export = AuditExport.objects.create(
            requester=requester, format=fmt, filters=clean, last_event_id=newest
        )
        audit_record(
            actor=requester,
            action="audit.export_requested",
            obj=export,
            object_type="audit_export",
            after={"format": fmt, "filters": clean},
        )
        transaction.on_commit(lambda: audit_export_enqueue(export))
    return export


def audit_export_enqueue(export: AuditExport) -> bool:
    """Queue the job that writes the export (after the commit; the sweeper retries if Redis is down)."""
    return queue.job_enqueue(
        JOB_FUNCTION,
        export.pk,
        job_id=export.job_id,
        description=f"write audit export #{export.pk} ({export.format})",
        result_ttl=3600,
    )


def _claim(export_id: int) -> AuditExport | None:
    """Take a queued export for this worker; None when another delivery has it or it is done."""
    claimed = AuditExport.objects.filter(pk=export_id, status=AuditExport.Status.QUEUED).update(
        status=AuditExport.Status.RUNNING, started_at=timezone.now(), error=""
    )
    return AuditExport.objects.get(pk=export_id) if claimed else None


def _write(export: AuditExport) -> tuple[str, int, int]:
    """Write the file into the exports storage; returns its name there, its rows and its size."""
    # Oldest first, as the chain runs (each row's prev_hash is the hash of the row before it).
    events = events_matching(AuditEvent.objects.filter(id__lte=export.last_event_id), export.filters)
    events = events.order_by("id")
    writer = _write_csv if export.format == AuditExport.Format.CSV else _write_jsonl
    with tempfile.TemporaryFile() as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        rows = writer(events.iterator(chunk_size=CHUNK), text)
        text.flush()
        size = raw.tell()
        raw.seek(0)
        storage = export_storage()
        name = f"audit/{export.pk}-{export.started_at:%Y%m%d%H%M%S}.{export.format}"
        if storage.exists(name):  # a second delivery of the same claim: write it afresh
            storage.delete(name)
        name = storage.save(name, File(raw))
        text.detach()
    return name, rows, size


def audit_export_run(*, export_id: int) -> str:
    """Write a queued export (worker side); returns its status, or "nothing to do" for a duplicate."""
    export = _claim(export_id)
    if export is None:
        return "nothing to do"
    try:
        name, rows, size = _write(export)
    except Exception as exc:  # a full disk or a storage error: the admin sees it and asks again
        logger.exception("audit export #%s failed", export_id)
        AuditExport.objects.filter(pk=export_id).update(
            status=AuditExport.Status.FAILED,
            error=f"{exc.__class__.__name__}: {exc}"[:2000],
            finished_at=timezone.now(),
        )
        return AuditExport.Status.FAILED
    now = timezone.now()
    AuditExport.objects.filter(pk=export_id, status=AuditExport.Status.RUNNING).update(
        status=AuditExport.Status.READY,
        file_name=name,
        rows=rows,
        size_bytes=size,
        finished_at=now,
        expires_at=now + timedelta(hours=EXPORT_HOURS),
    )
    return AuditExport.Status.READY


def audit_export_open(*, export_id: int, user: Any) -> tuple[AuditExport, IO[bytes]]:
    """The requester's ready export and its file, opened for download (the download is audited)."""
    _require_admin(user)
    export = AuditExport.objects.filter(pk=export_id, requester=user).first()
    if export is None:
        raise AuditExport.DoesNotExist(f"no export #{export_id} of yours")
    if export.status != AuditExport.Status.READY or (
        export.expires_at and export.expires_at <= timezone.now()
    ):
        raise ExportError(
            f"export #{export.pk} is {export.get_status_display().lower()}, not ready to download"
        )
    with transaction.atomic():
        audit_record(
            actor=user,
            action="audit.export_downloaded",
            obj=export,
            object_type="audit_export",
            after={"rows": export.rows, "format": export.format},
        )
    return export, export_storage().open(export.file_name, "rb")


def exports_of(user: Any) -> QuerySet[AuditExport]:
    """The exports a user asked for, newest first."""
    return AuditExport.objects.filter(requester=user)


def _lost(now: datetime, grace: timedelta) -> QuerySet[AuditExport]:
    queued = Q(status=AuditExport.Status.QUEUED, created_at__lt=now - grace)
    stalled = Q(status=AuditExport.Status.RUNNING, started_at__lt=now - STALE_RUNNING)
    return AuditExport.objects.filter(queued | stalled)


def audit_exports_sweep(*, now: datetime | None = None, grace_seconds: int = 30) -> dict[str, int]:
    """Delete expired export files, and queue again exports whose job was lost or whose worker died."""
    now = now or timezone.now()
    expired = 0
    for export in AuditExport.objects.filter(status=AuditExport.Status.READY, expires_at__lte=now):
        if AuditExport.objects.filter(pk=export.pk, status=AuditExport.Status.READY).update(
            status=AuditExport.Status.EXPIRED, file_name=""
        ):
            export_storage().delete(export.file_name)
            expired += 1
    requeued = 0
    for export in _lost(now, timedelta(seconds=grace_seconds)):
        if export.status == AuditExport.Status.QUEUED and queue.job_pending(export.job_id):
            continue
        AuditExport.objects.filter(pk=export.pk, status=export.status).update(
            status=AuditExport.Status.QUEUED
        )
        requeued += int(audit_export_enqueue(export))
    return {"expired": expired, "requeued": requeued}
