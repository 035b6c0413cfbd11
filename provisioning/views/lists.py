"""The long lists: requests (a team lead's own, or every request for admins) and workspaces.

Each pages by 50 with Django's paginator and narrows with filters in the query string; a page's
queries do not grow with the rows behind it (``tests/provisioning/test_lists.py`` pins them).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import personas
from provisioning.models import ChangeRequest, ResourceState
from provisioning.workflow import selectors
from provisioning.workflow.reconcile import with_open_drift

PAGE_SIZE = 50
LIVE_STATES = [state for state in ResourceState.values if state != ResourceState.REVOKED]


class RequestFilterForm(forms.Form):
    """The requests list's filters; every field is optional and they combine with AND."""

    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *ChangeRequest.Status.choices]
    )
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *ChangeRequest.Kind.choices]
    )
    workspace = forms.CharField(label="Workspace", required=False, max_length=33)
    requester = forms.CharField(label="Requested by", required=False, max_length=254)

    def __init__(self, *args: Any, admin: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not admin:  # a team lead's list holds only their own requests
            del self.fields["requester"]
        for field in self.fields.values():
            css = (
                "form-select form-select-sm"
                if isinstance(field, forms.ChoiceField)
                else "form-control form-control-sm"
            )
            field.widget.attrs["class"] = css

    def filter_requests(self, requests: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
        """``requests`` narrowed to the valid filters (none while the form is invalid)."""
        if not self.is_valid():
            return requests.none()
        data = self.cleaned_data
        if data.get("status"):
            requests = requests.filter(status=data["status"])
        if data.get("kind"):
            requests = requests.filter(kind=data["kind"])
        if data.get("workspace"):
            requests = requests.filter(workspace_name__icontains=data["workspace"])
        if data.get("requester"):
            text = data["requester"]
            requests = requests.filter(
                Q(requester__username__icontains=text) | Q(requester__upn__icontains=text)
            )
        return requests


@login_required
@require_GET
def request_list(request: HttpRequest) -> HttpResponse:
    """Team leads: their own requests. Admins: every request (others' drafts aside). Newest first, filtered."""
    lead = personas.is_team_lead(request.user)
    if not lead and not personas.is_admin(request.user):
        raise PermissionDenied("only team leads and admins have a list of requests")
    # An admin who is also a team lead has both lists: ?mine=1 is their own.
    admin = personas.is_admin(request.user) and not (lead and request.GET.get("mine"))
    form = RequestFilterForm(request.GET, admin=admin)
    rows = selectors.requests_visible_to(request.user) if admin else selectors.requests_of(request.user)
    rows = form.filter_requests(rows.defer("spec", "plan", "name_check")).order_by("-created_at", "-id")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "all_requests" if admin else "requests",
        "admin_list": admin,
        "mine": not admin and personas.is_admin(request.user),
        "form": form,
        "page_obj": page,
        "change_requests": page.object_list,
        "filtered": any(request.GET.get(name) for name in form.fields),
    }
    return render(request, "provisioning/request_list.html", context)


@login_required
@require_GET
def workspace_list(request: HttpRequest) -> HttpResponse:
    """The workspaces the user can see, by name; team leads can change those they manage."""
    workspaces = (
        with_open_drift(selectors.workspaces_visible_to(request.user))
        .select_related("owner")
        .annotate(
            cluster_count=Count("clusters", filter=Q(clusters__state__in=LIVE_STATES), distinct=True),
            member_count=Count("memberships", filter=Q(memberships__state__in=LIVE_STATES), distinct=True),
        )
        .order_by("workspace_name")
    )
    page = Paginator(workspaces, PAGE_SIZE).get_page(request.GET.get("page"))
    shown = [ws.pk for ws in page]
    managed = set(
        selectors.workspaces_managed_by(request.user).filter(pk__in=shown).values_list("pk", flat=True)
    )
    rows = [{"workspace": ws, "manages": ws.pk in managed} for ws in page]
    return render(
        request, "provisioning/workspace_list.html", {"nav": "workspaces", "rows": rows, "page_obj": page}
    )
