"""A failed request's way out: amend it (its team lead or an admin), keep it or roll it back (admins)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts import personas
from provisioning.models import ChangeRequest, Run
from provisioning.spec import RequestSpec
from provisioning.views.admin_views import _error_message
from provisioning.workflow import recovery, selectors
from provisioning.workflow.forms.recovery import AmendForm, ReasonForm
from provisioning.workflow.transitions import RequestError

Status = ChangeRequest.Status


def _rolled_back_once(cr: ChangeRequest) -> bool:
    return cr.runs.filter(purpose=Run.Purpose.ROLLBACK).exists()


def recovery_context(cr: ChangeRequest, user: Any) -> dict[str, Any]:
    """What the request page offers for a failed request, and what it shows of one abandoned."""
    if cr.status not in (Status.FAILED, Status.ROLLING_BACK, Status.ROLLED_BACK, Status.ABANDONED):
        return {}
    admin = personas.is_admin(user)
    failed = cr.status == Status.FAILED
    rolled_back = _rolled_back_once(cr)
    return {
        "can_amend": failed
        and not rolled_back
        and cr.kind in recovery.AMENDABLE_KINDS
        and (admin or (cr.requester_id == user.pk and personas.is_team_lead(user))),
        "can_abandon": failed and admin,
        "can_keep": failed and admin and not rolled_back,
        "created": recovery.created_by(cr) if admin or cr.requester_id == user.pk else [],
        "reason_form": ReasonForm(),
    }


def _amendable_clusters(cr: ChangeRequest) -> list[str]:
    done = recovery.done_steps(cr)
    return [c.name for c in RequestSpec.from_json(cr.spec).clusters if f"cluster:{c.name}" not in done]


def _failed_request(request: HttpRequest, pk: int) -> ChangeRequest:
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    if not (personas.is_admin(request.user) or cr.requester_id == request.user.pk):
        raise PermissionDenied("only the requester or an admin amends a request")
    return cr


@login_required
@require_http_methods(["GET", "POST"])
def request_amend(request: HttpRequest, pk: int) -> HttpResponse:
    """Drop or replace members, lower or drop clusters Azure did not create; then it runs again (or is
    approved again, when the amendment widens access or cost)."""
    cr = _failed_request(request, pk)
    if cr.status != Status.FAILED:
        messages.info(
            request, f"Request #{cr.pk} is {cr.get_status_display().lower()}: only a failed one is amended."
        )
        return redirect("provisioning:request_detail", pk=cr.pk)
    spec = RequestSpec.from_json(cr.spec)
    form = AmendForm(
        request.POST if request.method == "POST" else None,
        spec=spec,
        amendable_clusters=_amendable_clusters(cr),
    )
    problems: list[Any] = []
    if request.method == "POST" and form.is_valid():
        try:
            recovery.request_amend(request_id=cr.pk, actor=request.user, amendment=form.amendment())  # type: ignore[arg-type]
        except RequestError as exc:
            problems = exc.problems
            form.add_error(None, exc.message)
        else:
            cr.refresh_from_db()
            if cr.status == Status.SUBMITTED:
                messages.success(
                    request,
                    f"Request #{cr.pk} amended: it widens access or cost, so an admin approves it again.",
                )
            else:
                messages.success(request, f"Request #{cr.pk} amended: it runs again from what is done.")
            return redirect("provisioning:request_detail", pk=cr.pk)
    context = {"nav": "requests", "cr": cr, "form": form, "problems": problems}
    return render(request, "provisioning/request_amend.html", context, status=400 if problems else 200)


def _abandon(request: HttpRequest, pk: int, *, keep: bool) -> HttpResponse:
    if not personas.is_admin(request.user):
        raise PermissionDenied("only admins abandon a request")
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why (at most 2,000 characters).")
        return redirect("provisioning:request_detail", pk=cr.pk)
    service = recovery.request_keep if keep else recovery.request_rollback
    try:
        service(request_id=cr.pk, actor=request.user, reason=form.cleaned_data["reason"])  # type: ignore[arg-type]
    except RequestError as exc:
        _error_message(request, exc, doing="keep" if keep else "roll back")
    else:
        messages.success(
            request,
            f"Request #{cr.pk} abandoned: what Azure holds is kept and managed."
            if keep
            else f"Request #{cr.pk} is being rolled back: a run removes what it created.",
        )
    return redirect("provisioning:request_detail", pk=cr.pk)


@login_required
@require_POST
def request_keep(request: HttpRequest, pk: int) -> HttpResponse:
    return _abandon(request, pk, keep=True)


@login_required
@require_POST
def request_rollback(request: HttpRequest, pk: int) -> HttpResponse:
    return _abandon(request, pk, keep=False)
