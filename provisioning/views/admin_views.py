"""The admin's pages: the approval queue, and approving or rejecting a request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.functional import SimpleLazyObject
from django.utils.html import format_html, format_html_join
from django.views.decorators.http import require_GET, require_POST

from accounts import personas
from provisioning.capacity import report as capacity_report
from provisioning.models import ChangeRequest
from provisioning.spec import RequestSpec
from provisioning.views import fragments
from provisioning.views.filters import QueueFilterForm, with_spec_team
from provisioning.views.summary import capacity_verdict, quick_approval_blocker
from provisioning.workflow import selectors, services

Status = ChangeRequest.Status
DECIDED = (Status.APPROVED, Status.REJECTED, Status.PROVISIONING, Status.SUCCEEDED, Status.FAILED)
RECENTLY_DECIDED_COUNT = 10
# A decision page: a screenful to decide now, and the last few decisions for context.
PAGE_SIZE = 25
# The queue's address a decision returns to: its path and filters, never more.
MAX_BACK_LENGTH = 1000


class RejectForm(forms.Form):
    """Why a request is rejected: the requester reads it, so it is required."""

    reason = forms.CharField(
        label="Reason for rejecting",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Say why the request is rejected: the requester will read it."},
    )


@dataclass(frozen=True)
class QueueRow:
    """One submitted request as the approval queue lists it."""

    cr: ChangeRequest
    clusters: int
    members: int
    revocations: int
    can_decide: bool  # the admin may decide it (not their own, not their first approval)
    blocker: str  # why it is decided on its page rather than in the row ("" when the row may decide it)
    capacity: str  # "" (asks no cores), "fits", "over" or "unchecked"


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only portal administrators can approve or reject requests")


def _queue_rows(requests: list[ChangeRequest], user: Any, version: str) -> list[QueueRow]:
    """The page's rows, their capacity checked together (a fixed number of queries for the page)."""
    checks = capacity_report.verdicts_kept(requests, version)
    rows = []
    for cr in requests:
        spec = RequestSpec.from_json(cr.spec)
        rows.append(
            QueueRow(
                cr=cr,
                clusters=len(spec.clusters) + len(spec.cluster_updates),
                members=len(spec.all_members()),
                revocations=len(spec.revoke),
                can_decide=cr.can_approve(user),
                blocker=quick_approval_blocker(cr, checks[cr.pk]),
                capacity=capacity_verdict(checks[cr.pk]),
            )
        )
    return rows


def _queue_back(value: str) -> str | None:
    """The approval queue's address to go back to (its filters, sort and page kept), if ``value`` is one.

    Only the queue's own path is followed, with its query string (bounded): never another page or host.
    """
    queue = reverse("provisioning:approval_queue")
    if value == "queue":
        return queue
    if len(value) > MAX_BACK_LENGTH:
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path != queue:
        return None
    return f"{queue}?{parts.query}" if parts.query else queue


def _after_decision(request: HttpRequest, cr: ChangeRequest) -> HttpResponse:
    """Back to where the admin decided: the approval queue as it was filtered, or the request's page."""
    back = _queue_back(request.POST.get("next", ""))
    if back is not None:
        return redirect(back)
    return redirect("provisioning:request_detail", pk=cr.pk)


@login_required
@require_GET
def approval_queue(request: HttpRequest) -> HttpResponse:
    """Submitted requests waiting for a decision (oldest first, 25 a page, filtered), and the latest ten decisions."""
    _require_admin(request.user)
    visible = selectors.request_rows(selectors.requests_visible_to(request.user), approver=True)
    form = QueueFilterForm(request.GET)
    # The stored name and member checks are read: the rows offer a decision only when they are clean.
    waiting = form.filter_requests(with_spec_team(selectors.approval_queue(request.user).defer("plan")))
    page = Paginator(waiting, PAGE_SIZE).get_page(request.GET.get("page"))
    # The rows (and the recent decisions) are kept rendered per version of what they show: the capacity
    # figures their verdicts read, each row's last change and its stored name and member checks. Those are
    # all that is read while the rows are kept; the requests themselves (their specs) only to render them.
    rows = cast("QuerySet[ChangeRequest]", page.object_list)  # the page's slice of the queryset
    shown = list(rows.values_list("pk", "updated_at", "name_checked_at", "principal_checked_at"))
    figures = capacity_report.page_version()
    rows_version = fragments.version_key(figures, shown)
    context = {
        "nav": "approvals",
        "form": form,
        "filtered": form.is_filtered(),
        "sort": form.current_sort,
        "page_obj": page,
        "any_waiting": bool(shown),
        "waiting": SimpleLazyObject(lambda: _queue_rows(list(rows), request.user, figures)),
        "own_waiting": selectors.requests_of(request.user).filter(status=Status.SUBMITTED).count(),
        "decided": visible.filter(status__in=DECIDED).order_by("-decided_at", "-id")[:RECENTLY_DECIDED_COUNT],
        "kept_for": fragments.FRAGMENT_SECONDS,
        "rows_version": rows_version,
        "viewer": fragments.viewer_key(request),
    }
    return render(request, "provisioning/approval_queue.html", context)


def _error_message(request: HttpRequest, exc: services.RequestError, *, doing: str) -> None:
    """One error message with the request's problems as a list (escaped: problems quote user input)."""
    problems = format_html_join("", "<li>{}: {}</li>", ((p.field, p.message) for p in exc.problems))
    if exc.problems:
        messages.error(
            request,
            format_html(
                'Could not {} the request: {}.<ul class="mb-0">{}</ul>', doing, exc.message, problems
            ),
        )
    else:
        messages.error(request, f"Could not {doing} the request: {exc.message}.")


@login_required
@require_POST
def request_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve exactly the plan the admin saw; provisioning is queued once the decision is committed."""
    _require_admin(request.user)
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    try:
        cr = services.request_approve(request_id=cr.pk, approver=request.user)  # type: ignore[arg-type]
    except services.RequestError as exc:  # TransitionError included; PermissionDenied becomes a 403
        _error_message(request, exc, doing="approve")
    else:
        if cr.status == ChangeRequest.Status.SUBMITTED:
            messages.success(
                request,
                f"First approval of request #{cr.pk} recorded: it goes over budget, so a second admin "
                "must approve it before anything is provisioned.",
            )
        else:
            messages.success(request, f"Request #{cr.pk} approved; its page follows the provisioning.")
    return _after_decision(request, cr)


@login_required
@require_POST
def request_reject(request: HttpRequest, pk: int) -> HttpResponse:
    """Reject a submitted request with the reason the requester will read."""
    _require_admin(request.user)
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    form = RejectForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(str(e) for errors in form.errors.values() for e in errors))
        return _after_decision(request, cr)
    try:
        services.request_reject(
            request_id=cr.pk,
            approver=request.user,  # type: ignore[arg-type]
            reason=form.cleaned_data["reason"],
        )
    except services.RequestError as exc:
        _error_message(request, exc, doing="reject")
    else:
        messages.success(request, f"Request #{cr.pk} rejected; the requester can read your reason.")
    return _after_decision(request, cr)
