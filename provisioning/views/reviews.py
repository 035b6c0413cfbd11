"""Access reviews: the campaigns list, one campaign's decisions (keep or remove each member), closing it, its
CSV, and an admin starting one from the workspace page. The rules are in ``provisioning.workflow.reviews``."""

from __future__ import annotations

import csv
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import personas
from provisioning.exports import csv_safe
from provisioning.models import AccessReview, AccessReviewDecision
from provisioning.workflow import reviews, selectors

PAGE_SIZE = 25
Decision = AccessReviewDecision.Decision
STATUSES = {s.value for s in AccessReview.Status}


def _counted(queryset: Any) -> Any:
    return queryset.annotate(
        members=Count("decisions"),
        reviewed=Count("decisions", filter=~Q(decisions__decision=Decision.PENDING)),
        removed=Count("decisions", filter=Q(decisions__decision=Decision.REMOVE)),
    )


@login_required
@require_GET
def review_list(request: HttpRequest) -> HttpResponse:
    """Campaigns an admin oversees (all) or a team lead runs (their workspaces'), live ones first."""
    if not (personas.is_admin(request.user) or personas.is_team_lead(request.user)):
        raise PermissionDenied("access reviews are for team leads and admins")
    status = request.GET.get("status", "")
    found = reviews.reviews_visible_to(request.user).select_related("workspace", "started_by")
    if status in STATUSES:
        found = found.filter(status=status)
    found = _counted(found).order_by("status", "deadline", "-id")  # closed after escalated after open
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {"nav": "reviews", "page_obj": page, "status": status if status in STATUSES else ""}
    return render(request, "provisioning/review_list.html", context)


def _visible(request: HttpRequest, pk: int) -> AccessReview:
    return get_object_or_404(reviews.reviews_visible_to(request.user).select_related("workspace"), pk=pk)


def _choices(request: HttpRequest) -> list[reviews.Choice]:
    """The form's rows: ``decision-<id>`` (keep / remove / pending) and ``note-<id>``."""
    found = []
    for key, value in request.POST.items():
        if key.startswith("decision-") and key[len("decision-") :].isdigit():
            pk = int(key[len("decision-") :])
            found.append(reviews.Choice(pk, str(value), str(request.POST.get(f"note-{pk}", ""))))
    return found


@login_required
@require_http_methods(["GET", "POST"])
def review_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One campaign: each member with keep or remove (its reviewers decide here), the progress, and closing."""
    review = _visible(request, pk)
    if request.method == "POST":
        try:
            if request.POST.get("action") == "close":
                review = reviews.review_close(review_id=review.pk, actor=request.user)
                messages.success(request, _closed_message(review))
            else:
                changed = reviews.review_decide(
                    review_id=review.pk, actor=request.user, choices=_choices(request)
                )
                messages.success(request, f"{changed} decision{'s' if changed != 1 else ''} saved.")
        except reviews.ReviewError as exc:
            messages.error(request, f"Could not do that: {exc.message}.")
        return redirect("provisioning:review_detail", pk=review.pk)
    decisions = list(review.decisions.order_by("persona", "principal_name", "pk"))
    is_admin = personas.is_admin(request.user)
    context = {
        "nav": "reviews",
        "review": review,
        "decisions": decisions,
        "reviewed": sum(d.decision != Decision.PENDING for d in decisions),
        "can_decide": review.is_live,
        "is_admin": is_admin,
        "overdue": review.deadline <= timezone.now(),
    }
    return render(request, "provisioning/review_detail.html", context)


def _closed_message(review: AccessReview) -> str:
    if review.status == AccessReview.Status.ESCALATED:
        return f"Access review #{review.pk} is escalated: an admin decides the members nobody reviewed."
    if review.revocation_id:
        return f"Access review #{review.pk} is closed; request #{review.revocation_id} removes the members decided."
    return f"Access review #{review.pk} is closed; every member keeps their access."


@login_required
@require_GET
def review_csv(request: HttpRequest, pk: int) -> HttpResponse:
    """A campaign's decisions as CSV (values that a spreadsheet would run as formulas are quoted)."""
    review = _visible(request, pk)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    name = f"access-review-{review.pk}-{review.workspace.workspace_name}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    writer = csv.writer(response)
    writer.writerow(
        [
            "review",
            "workspace",
            "member",
            "persona",
            "decision",
            "escalated",
            "decided_by",
            "decided_at",
            "note",
        ]
    )
    for d in review.decisions.order_by("persona", "principal_name", "pk"):
        writer.writerow(
            csv_safe(cell)
            for cell in (
                review.pk,
                review.workspace.workspace_name,
                d.principal_name,
                d.persona,
                d.decision,
                "yes" if d.escalated else "no",
                d.decided_by,
                d.decided_at.isoformat() if d.decided_at else "",
                d.note,
            )
        )
    return response


@login_required
@require_POST
def review_start(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin starts a campaign of a workspace now (the schedule starts the others)."""
    workspace = selectors.workspaces_visible_to(request.user).filter(pk=pk).first()
    if workspace is None:
        raise Http404("no such workspace")
    try:
        review = reviews.review_start(workspace_id=workspace.pk, actor=request.user)
    except reviews.ReviewError as exc:
        messages.error(request, f"Could not start an access review: {exc.message}.")
        return redirect("provisioning:workspace_detail", pk=workspace.pk)
    messages.success(request, f"Access review #{review.pk} started; its team lead decides by its deadline.")
    return redirect("provisioning:review_detail", pk=review.pk)
