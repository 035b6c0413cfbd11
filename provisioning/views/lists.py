"""The long lists: requests (a team lead's own, or every request for admins) and workspaces.

Each pages by 50 with Django's paginator, narrows with filters and sorts by a whitelisted key in the query
string (``provisioning.views.filters``); a page's queries do not grow with the rows behind it
(``tests/provisioning/test_lists.py`` pins them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accounts import personas
from provisioning.models import Cluster, Membership, ResourceState
from provisioning.views import fragments
from provisioning.views.filters import RequestFilterForm, WorkspaceFilterForm, with_spec_team
from provisioning.workflow import selectors
from provisioning.workflow.reconcile import with_open_drift

PAGE_SIZE = 25  # as the approvals queue: a page a person reads, and half the rows to build
LIVE_STATES = [state for state in ResourceState.values if state != ResourceState.REVOKED]


def _live_count(model: Any) -> Coalesce:
    """How many live rows of ``model`` (clusters, memberships) a workspace has: a subquery per row shown,
    not a join of every workspace's clusters times its members grouped back (1,200 rows for 200)."""
    count = (
        model.objects.filter(workspace=OuterRef("pk"), state__in=LIVE_STATES)
        .order_by()
        .values("workspace")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(count, output_field=IntegerField()), 0)


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
    rows = form.filter_requests(with_spec_team(selectors.request_rows(rows)))
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "nav": "all_requests" if admin else "requests",
        "admin_list": admin,
        "mine": not admin and personas.is_admin(request.user),
        "mine_query": "?mine=1" if not admin and personas.is_admin(request.user) else "",
        "form": form,
        "page_obj": page,
        "change_requests": page.object_list,
        # The rows are kept rendered under what they show: each request's last change (a status moves by save()).
        "rows_version": fragments.version_key([(cr.pk, cr.updated_at) for cr in page.object_list]),
        "kept_for": fragments.FRAGMENT_SECONDS,
        "filtered": form.is_filtered(),
        "sort": form.current_sort,
    }
    return render(request, "provisioning/request_list.html", context)


def _workspace_row_shows(ws: Any, manages: bool) -> tuple[Any, ...]:
    """Everything a row of the workspace list shows (``workspace_list.html``): a column added there is
    added here, or its row is kept without it."""
    return (
        *(ws.pk, ws.workspace_name, ws.department, ws.team, ws.purpose, ws.project, ws.pool_teams),
        *(ws.region, ws.environment, str(ws.owner), ws.state, ws.management, ws.open_drift),
        *(ws.cluster_count, ws.member_count, manages),
    )


@login_required
@require_GET
def workspace_list(request: HttpRequest) -> HttpResponse:
    """The workspaces the user can see, by name (or a sort), filtered; team leads can change those they manage."""
    form = WorkspaceFilterForm(request.GET)
    workspaces = (
        with_open_drift(selectors.workspaces_visible_to(request.user))
        .select_related("owner")
        .annotate(cluster_count=_live_count(Cluster), member_count=_live_count(Membership))
    )
    page = Paginator(form.filter_workspaces(workspaces), PAGE_SIZE).get_page(request.GET.get("page"))
    shown = [ws.pk for ws in page]
    managed = set(
        selectors.workspaces_managed_by(request.user).filter(pk__in=shown).values_list("pk", flat=True)
    )
    rows: list[dict[str, Any]] = [{"workspace": ws, "manages": ws.pk in managed} for ws in page]
    context = {
        "nav": "workspaces",
        "rows": rows,
        # The rows are kept rendered under everything they show (views.fragments).
        "rows_version": fragments.version_key(
            [_workspace_row_shows(r["workspace"], r["manages"]) for r in rows]
        ),
        "kept_for": fragments.FRAGMENT_SECONDS,
        "page_obj": page,
        "form": form,
        "filtered": form.is_filtered(),
        "sort": form.current_sort,
    }
    return render(request, "provisioning/workspace_list.html", context)
