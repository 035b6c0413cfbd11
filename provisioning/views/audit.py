"""The audit trail for admins: a filtered, paginated list and the same events as CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts import personas
from provisioning.models import AuditEvent
from provisioning.workflow import selectors

PAGE_SIZE = 50
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
    "prev_hash",
    "hash",
)
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MAX_CHANGES_SHOWN = 3


class AuditFilterForm(forms.Form):
    """The audit page's filters; every field is optional and they combine with AND."""

    actor = forms.CharField(label="Actor", required=False, max_length=254)
    workspace = forms.CharField(label="Workspace", required=False, max_length=33)
    request = forms.IntegerField(
        label="Request #",
        required=False,
        min_value=1,
        widget=forms.TextInput,
        error_messages={"invalid": "Enter a request number, e.g. 42."},
    )
    date_from = forms.DateField(
        label="From (UTC)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    date_to = forms.DateField(
        label="To (UTC, inclusive)", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filter_events(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Narrow ``events`` to the valid filters (call after ``is_valid``)."""
        data = self.cleaned_data
        if data.get("actor"):
            events = events.filter(actor__icontains=data["actor"])
        if data.get("workspace"):
            events = events.filter(workspace_name__icontains=data["workspace"])
        if data.get("request"):
            events = events.filter(request_id=data["request"])
        if data.get("date_from"):
            events = events.filter(created_at__gte=_utc_midnight(data["date_from"]))
        if data.get("date_to"):
            events = events.filter(created_at__lt=_utc_midnight(data["date_to"] + timedelta(days=1)))
        return events


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only portal administrators can read the audit trail")


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    """The filter form bound to the query string, and the events it selects (none while it is invalid)."""
    form = AuditFilterForm(request.GET)
    events = selectors.audit_events_visible_to(request.user)
    if not form.is_valid():
        return form, events.none()
    return form, form.filter_events(events).order_by("-id")


def _scalar(value: Any) -> str:
    if value is None:
        return "—"
    return value if isinstance(value, str) else json.dumps(value, cls=DjangoJSONEncoder)


def _field_change(key: str, old: Any, new: Any) -> str:
    if isinstance(old, dict | list) or isinstance(new, dict | list):
        return f"{key} changed"
    return f"{key}: {_scalar(old)} → {_scalar(new)}"


def change_summary(before: Any, after: Any) -> str:
    """A one-line reading of before/after: the status change if there is one, else the changed fields."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ""
    if "status" in before and before.get("status") != after.get("status"):
        return f"{before['status']} → {_scalar(after.get('status'))}"
    changed = [key for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]
    text = "; ".join(
        _field_change(key, before.get(key), after.get(key)) for key in changed[:MAX_CHANGES_SHOWN]
    )
    more = len(changed) - MAX_CHANGES_SHOWN
    return f"{text}; {more} more" if more > 0 else text


def _pretty(value: Any) -> str:
    return "" if value is None else json.dumps(value, indent=2, sort_keys=True, cls=DjangoJSONEncoder)


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """Every recorded change, newest first, filtered by actor, workspace, request and dates."""
    _require_admin(request.user)
    form, events = _filtered(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "event": e,
            "summary": change_summary(e.before, e.after),
            "before": _pretty(e.before),
            "after": _pretty(e.after),
        }
        for e in page
    ]
    context = {
        "nav": "audit",
        "form": form,
        "page_obj": page,
        "rows": rows,
        "filtered": any(request.GET.get(name) for name in form.fields),
    }
    return render(request, "provisioning/audit_list.html", context)


def csv_safe(cell: Any) -> Any:
    """Quote a text cell a spreadsheet would otherwise run as a formula."""
    if isinstance(cell, str) and cell.startswith(FORMULA_PREFIXES):
        return "'" + cell
    return cell


def _json_cell(value: Any) -> str:
    return "" if value is None else json.dumps(value, sort_keys=True, cls=DjangoJSONEncoder)


def csv_row(event: AuditEvent) -> list[Any]:
    """One event as the CSV export's columns (``CSV_COLUMNS``)."""
    cells = [
        event.pk,
        event.created_at.astimezone(UTC).isoformat(),
        event.actor,
        event.action,
        event.object_type,
        event.object_id,
        "" if event.request_id is None else event.request_id,
        event.workspace_name,
        _json_cell(event.before),
        _json_cell(event.after),
        event.message,
        event.prev_hash,
        event.hash,
    ]
    return [csv_safe(cell) for cell in cells]


class _Echo:
    """A file-like object whose ``write`` hands back the line, so csv.writer can feed a stream."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events:
        yield writer.writerow(csv_row(event))


@login_required
@require_GET
def audit_csv(request: HttpRequest) -> HttpResponseBase:
    """The filtered events as CSV, streamed so a long trail never sits in memory."""
    _require_admin(request.user)
    form, events = _filtered(request)
    if not form.is_valid():
        errors = "; ".join(
            f"{field}: {' '.join(str(m) for m in msgs)}" for field, msgs in form.errors.items()
        )
        return HttpResponse(f"Invalid filters: {errors}\n", status=400, content_type="text/plain")
    response = StreamingHttpResponse(_csv_lines(events.iterator(chunk_size=2000)), content_type="text/csv")
    filename = f"audit-{timezone.now():%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
