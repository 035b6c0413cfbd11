"""Drift: the admins' page of differences between the approved state and Azure, the actions on them, and
the workspace page's reconcile button and "what Azure holds now".

The page pages by 50 and filters by workspace, kind, status (open by default) and age (first seen more
than N days ago); its queries do not grow with the items. Accepting and remediating go through
``provisioning.workflow.drift``, asking for a reconcile through ``provisioning.workflow.reconcile``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from accounts import personas
from provisioning.models import DriftItem, ResourceState, Workspace
from provisioning.workflow import drift, reconcile, selectors
from provisioning.workflow.transitions import RequestError

PAGE_SIZE = 50
FILTERS = ("workspace", "kind", "status", "older_than")
RECONCILE_MESSAGES = {
    "queued": (messages.SUCCESS, "Reconcile with Azure queued: drift shows here in a minute or two."),
    "already queued": (messages.INFO, "A reconcile with Azure is already queued for this workspace."),
    "not active": (messages.INFO, "Only active workspaces are compared with Azure: this one is not active."),
    "unavailable": (
        messages.ERROR,
        "The reconcile could not be queued (the queue is unreachable): the scheduled one reads it later.",
    ),
}


class DriftFilterForm(forms.Form):
    """The drift page's filters; every field is optional and they combine with AND."""

    workspace = forms.CharField(label="Workspace", required=False, max_length=33)
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *DriftItem.Kind.choices]
    )
    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *DriftItem.Status.choices]
    )
    older_than = forms.IntegerField(
        label="First seen more than (days) ago", required=False, min_value=0, max_value=3650
    )

    def __init__(self, data: Any, *args: Any, **kwargs: Any) -> None:
        data = data.copy()
        if "status" not in data:  # open items unless asked otherwise ("Any status" is an empty value)
            data["status"] = DriftItem.Status.OPEN
        super().__init__(data, *args, **kwargs)
        for field in self.fields.values():
            css = (
                "form-select form-select-sm"
                if isinstance(field, forms.ChoiceField)
                else "form-control form-control-sm"
            )
            field.widget.attrs["class"] = css

    def filter_items(self, items: QuerySet[DriftItem]) -> QuerySet[DriftItem]:
        """``items`` narrowed to the valid filters (none while the form is invalid)."""
        if not self.is_valid():
            return items.none()
        data = self.cleaned_data
        if data.get("workspace"):
            items = items.filter(workspace__workspace_name__icontains=data["workspace"])
        if data.get("kind"):
            items = items.filter(kind=data["kind"])
        if data.get("status"):
            items = items.filter(status=data["status"])
        if data.get("older_than") is not None:
            items = items.filter(first_seen__lt=timezone.now() - timedelta(days=data["older_than"]))
        return items


class ItemIdsField(forms.Field):
    """The ticked drift items: a list of numbers (at most ``drift.MAX_ITEMS``)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        try:
            ids = [int(v) for v in value or []]
        except (TypeError, ValueError) as exc:
            raise ValidationError("drift items are named by their numbers") from exc
        if len(ids) > drift.MAX_ITEMS:
            raise ValidationError(f"at most {drift.MAX_ITEMS} drift items at once")
        return ids


class DriftActionForm(forms.Form):
    """What an action on drift names: one item (a row's button), the ticked items, or a whole workspace."""

    item = forms.IntegerField(required=False, min_value=1)
    items = ItemIdsField(required=False)
    workspace = forms.IntegerField(required=False, min_value=1)
    reason = forms.CharField(required=False, max_length=drift.MAX_REASON, strip=True)
    back = forms.CharField(required=False, max_length=500)

    def item_ids(self) -> list[int]:
        data = self.cleaned_data
        return [data["item"]] if data.get("item") else list(data.get("items") or [])

    def back_url(self) -> str:
        """The drift page with the filters the admin acted from (only the page's own parameters)."""
        wanted = (*FILTERS, "page")
        params = {k: v for k, v in parse_qsl(self.cleaned_data.get("back") or "") if k in wanted and v}
        query = urlencode(params)
        return reverse("provisioning:drift") + (f"?{query}" if query else "")


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("the drift page is for admins")


@login_required
@require_GET
def drift_list(request: HttpRequest) -> HttpResponse:
    """Admins: drift items, open first by default, newest seen first, filtered and paged."""
    _require_admin(request.user)
    form = DriftFilterForm(request.GET)
    items = form.filter_items(drift.drift_items_visible_to(request.user)).order_by("-last_seen", "-id")
    page = Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = {name: request.GET.get(name, "") for name in (*FILTERS, "page") if request.GET.get(name)}
    workspace = None
    if form.is_valid() and form.cleaned_data.get("workspace"):
        workspace = Workspace.objects.filter(workspace_name__iexact=form.cleaned_data["workspace"]).first()
    context = {
        "nav": "drift",
        "form": form,
        "page_obj": page,
        "items": page.object_list,
        "back": urlencode(shown),
        "workspace": workspace,
        "filtered": any(request.GET.get(name) for name in FILTERS),
    }
    return render(request, "provisioning/drift_list.html", context)


def _act(request: HttpRequest, act: Any) -> HttpResponse:
    form = DriftActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "The drift action was not understood: " + form.errors.as_text())
        return redirect("provisioning:drift")
    try:
        text = act(form)
    except RequestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, text)
    return redirect(form.back_url())


@login_required
@require_POST
def drift_accept(request: HttpRequest) -> HttpResponse:
    """Accept the named items with a reason: the approved state becomes what Azure has."""
    _require_admin(request.user)

    def accept(form: DriftActionForm) -> str:
        items = drift.drift_accept(
            item_ids=form.item_ids(), actor=request.user, reason=form.cleaned_data["reason"]
        )
        count = len(items)
        return (
            f"Accepted {count} drift item{'s' if count != 1 else ''}: the approved state now follows Azure."
        )

    return _act(request, accept)


@login_required
@require_POST
def drift_remediate(request: HttpRequest) -> HttpResponse:
    """Remediate the named items (one workspace's), or every open item of a workspace that needs no choice."""
    _require_admin(request.user)

    def remediate(form: DriftActionForm) -> str:
        ids = form.item_ids()
        workspace_id = form.cleaned_data.get("workspace")
        if ids:
            workspaces = set(
                drift.drift_items_visible_to(request.user)
                .filter(pk__in=ids)
                .values_list("workspace_id", flat=True)
            )
            if len(workspaces) > 1:
                raise RequestError("remediate one workspace's drift at a time")
            workspace_id = next(iter(workspaces), workspace_id)
        if workspace_id is None:
            raise RequestError("choose drift items, or a workspace")
        cr = drift.drift_remediate(workspace_id=workspace_id, actor=request.user, item_ids=ids or None)
        count = cr.remediated_drift.count()
        return (
            f"Request #{cr.pk} queued: a worker restores the approved state of {count} "
            f"drift item{'s' if count != 1 else ''} of {cr.workspace_name}."
        )

    return _act(request, remediate)


@login_required
@require_POST
def workspace_reconcile(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue a reconcile of the workspace with Azure now (admins, and team leads who manage it)."""
    workspace = get_object_or_404(selectors.workspaces_visible_to(request.user), pk=pk)
    level, text = RECONCILE_MESSAGES[
        reconcile.reconcile_request(workspace_id=workspace.pk, actor=request.user)
    ]
    messages.add_message(request, level, text)
    return redirect("provisioning:workspace_detail", pk=workspace.pk)


# Requests whose objects exist (or existed) in Azure: the request page shows what Azure holds of them.
SHOWN_OBSERVED = frozenset({"succeeded", "failed", "abandoned", "rolled_back"})


def workspace_drift_context(user: Any, workspace: Workspace, *, can_change: bool) -> dict[str, Any]:
    """What the workspace page shows of drift: the badge (``open_drift`` annotated on the workspace), what
    Azure held at the last reconcile, and whether this user may ask for a reconcile now."""
    observed = reconcile.observed_of(workspace)
    times = [row.observed_at for rows in observed.values() for row in rows]
    return {
        "observed": observed,
        "observed_at": max(times, default=None),
        "reconcile_minutes": round(settings.RECONCILE_INTERVAL_MINUTES),
        "can_reconcile": workspace.state == ResourceState.ACTIVE and (personas.is_admin(user) or can_change),
    }


def request_observed_context(cr: Any) -> dict[str, Any]:
    """What Azure held at the last reconcile of the objects one request made or changed: its resources,
    clusters and its members' role assignments (partial success shown as it is, not only the status)."""
    workspace = cr.workspace
    if workspace is None or cr.status not in SHOWN_OBSERVED:
        return {}
    plan = cr.plan or {}
    names = {r["name"].lower() for r in plan.get("resources", [])}
    clusters = {c["name"].lower() for c in plan.get("clusters", [])}
    principals = {
        ra["principal"].lower() for ra in [*plan.get("role_assignments", []), *plan.get("revocations", [])]
    }
    observed = reconcile.observed_of(workspace)
    mine = {
        "resource_group": [r for r in observed["resource_group"] if r.name.lower() in names],
        "resource": [r for r in observed["resource"] if r.name.lower() in names],
        "cluster": [r for r in observed["cluster"] if r.name.lower() in clusters],
        "role_assignment": [
            r
            for r in observed["role_assignment"]
            if str(r.properties.get("principal") or "").lower() in principals
        ],
    }
    times = [row.observed_at for rows in mine.values() for row in rows]
    return {"request_observed": mine, "request_observed_at": max(times, default=None)}
