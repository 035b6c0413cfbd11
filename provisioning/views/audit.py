"""The audit trail for admins: a filtered, paginated list, and exports of it written by a worker."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Max, QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_POST

from accounts import personas
from provisioning import arm, exports
from provisioning.models import AuditEvent, AuditExport
from provisioning.views import fragments
from provisioning.views.paging import keyset_page
from provisioning.workflow import selectors

PAGE_SIZE = 50
MAX_CHANGES_SHOWN = 3
EXPORTS_SHOWN = 20


class AuditFilterForm(forms.Form):
    """The audit page's filters; every field is optional and they combine with AND."""

    actor = forms.CharField(
        label="Actor", required=False, max_length=254, help_text="Part of a name, a UPN or an id"
    )
    action = forms.CharField(
        label="Action",
        required=False,
        max_length=60,
        help_text="Its start, e.g. request. or request.approved",
    )
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
    steps = forms.BooleanField(label="Show steps", required=False, help_text="Each step of a run as a row")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            self.add_error("date_to", "The end date is before the start date.")
        return data

    def filter_events(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        """Narrow ``events`` to the valid filters (call after ``is_valid``)."""
        return exports.events_matching(events, self.export_filters())

    def export_filters(self) -> dict[str, Any]:
        """The valid filters as an export stores them."""
        return exports.filters_clean(
            {k: v for k, v in self.cleaned_data.items() if v not in (None, "", False)}
        )


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only portal administrators can read the audit trail")


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet[AuditEvent]]:
    """The filter form bound to the query string, and the events it selects (none while it is invalid)."""
    form = AuditFilterForm(request.GET)
    events = selectors.audit_events_visible_to(request.user)
    if not form.is_valid():
        return form, events.none()
    return form, form.filter_events(events)  # keyset_page orders them


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


def actor_label(event: AuditEvent) -> str:
    """Who did it, in words: the name recorded then (the id for older events and system actors), and the
    channel when it was not the web, e.g. "Ada Lovelace (command line)"."""
    name = event.actor_name if event.actor_name and event.via != AuditEvent.Via.SYSTEM else event.actor
    if event.via in (AuditEvent.Via.CLI, AuditEvent.Via.API):
        return f"{name} ({AuditEvent.Via(event.via).label})"
    return name


def azure_links(event: AuditEvent) -> list[dict[str, str]]:
    """The Azure objects the event names (valid ARM ids in its object id, before and after), each with its
    link to the Azure portal (``AZURE_PORTAL_URL``: sovereign clouds have their own)."""
    ids = arm.resource_ids_in([event.object_id, event.before, event.after])
    base = settings.AZURE_PORTAL_URL
    return [{"id": i, "name": i.rsplit("/", 1)[-1], "url": f"{base}/#resource{i}"} for i in ids]


def _row(event: AuditEvent, steps: list[AuditEvent] | None = None) -> dict[str, Any]:
    return {
        "event": event,
        "actor": actor_label(event),
        "summary": change_summary(event.before, event.after),
        "before": _pretty(event.before),
        "after": _pretty(event.after),
        "azure": azure_links(event),
        "steps": [_step(s) for s in steps or []],
        "failed_steps": sum(s.action == "step.failed" for s in steps or []),
    }


def _step(event: AuditEvent) -> dict[str, Any]:
    after = event.after if isinstance(event.after, dict) else {}
    return {"event": event, "target": after.get("step", ""), "azure": azure_links(event)}


@login_required
@require_GET
def audit_list(request: HttpRequest) -> HttpResponse:
    """Every recorded change, newest first, filtered by actor, action, workspace, request and dates; the
    steps of a run folded under the event that started it unless asked for as rows."""
    _require_admin(request.user)
    form, events = _filtered(request)
    page = SimpleLazyObject(lambda: keyset_page(events, request.GET, size=PAGE_SIZE))
    folded = form.is_valid() and not exports.steps_shown(form.export_filters())

    def rows() -> list[Any]:
        steps = selectors.audit_run_steps(request.user, page.rows) if folded else {}
        return [_row(e, steps.get(e.pk)) for e in page.rows]

    context = {
        "nav": "audit",
        "form": form,
        "page": page,
        "rows": SimpleLazyObject(rows),
        "filtered": any(request.GET.get(name) for name in form.fields),
        # The trail is only ever appended to: a page asked for the same way shows the same events until
        # the next one is recorded. Kept rendered under the newest event's id (views.fragments).
        "kept_for": fragments.FRAGMENT_SECONDS,
        "trail_version": AuditEvent.objects.aggregate(newest=Max("id"))["newest"],
    }
    return render(request, "provisioning/audit_list.html", context)


@login_required
@require_POST
def audit_export_create(request: HttpRequest) -> HttpResponse:
    """Ask a worker to write the filtered trail to a file (CSV or JSON lines); its page offers it when ready."""
    _require_admin(request.user)
    form = AuditFilterForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Fix the filters before exporting.")
        return redirect(f"{reverse('provisioning:audit')}?{request.POST.urlencode()}")
    try:
        export = exports.audit_export_request(
            requester=request.user, filters=form.export_filters(), fmt=request.POST.get("format", "")
        )
    except exports.ExportError as exc:
        messages.error(request, str(exc))
        return redirect("provisioning:audit_exports")
    messages.success(request, f"Export #{export.pk} is being written; it appears below when ready.")
    return redirect("provisioning:audit_exports")


@login_required
@require_GET
def audit_exports(request: HttpRequest) -> HttpResponse:
    """The admin's own exports, newest first; the page refreshes itself while one is being written."""
    _require_admin(request.user)
    recent = list(exports.exports_of(request.user)[:EXPORTS_SHOWN])
    context = {
        "nav": "audit",
        "exports": recent,
        "pending": any(e.status in (AuditExport.Status.QUEUED, AuditExport.Status.RUNNING) for e in recent),
        "hours": exports.EXPORT_HOURS,
    }
    template = (
        "provisioning/_audit_exports.html"
        if request.headers.get("HX-Request")
        else "provisioning/audit_exports.html"
    )
    return render(request, template, context)


@login_required
@require_GET
def audit_export_download(request: HttpRequest, pk: int) -> HttpResponseBase:
    """The file of a ready export, to its requester only (another admin's export is a 404)."""
    try:
        export, file = exports.audit_export_open(export_id=pk, user=request.user)
    except AuditExport.DoesNotExist as exc:
        raise Http404("no such export") from exc
    except exports.ExportError as exc:
        messages.error(request, str(exc))
        return redirect("provisioning:audit_exports")
    content_type = "text/csv" if export.format == AuditExport.Format.CSV else "application/x-ndjson"
    return FileResponse(file, as_attachment=True, filename=export.download_name, content_type=content_type)
