"""Provisioning progress of a request (polled by the request page) and the admin's retry."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from provisioning.models import ChangeRequest
from provisioning.workflow import selectors, services
from provisioning.workflow.transitions import TransitionError


def progress_context(cr: ChangeRequest) -> dict[str, Any]:
    """The latest run of a request and its steps, for the progress panel."""
    run = cr.runs.order_by("-number").first()
    steps = list(run.steps.all()) if run else []
    done = sum(1 for s in steps if s.status in ("succeeded", "skipped"))
    failed = [s for s in steps if s.status == "failed"]
    live = cr.status in ("approved", "provisioning", "rolling_back")
    return {
        "cr": cr,
        "run": run,
        "steps": steps,
        "steps_done": done,
        "steps_total": len(steps),
        "failed_steps": failed,
        "live": live,
        "rollback": run is not None and run.purpose == "rollback",
    }


@login_required
@require_GET
def request_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The progress panel alone; the request page polls it while provisioning is under way."""
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    return render(request, "provisioning/_progress.html", progress_context(cr))


@login_required
@require_POST
def request_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin retries a failed request; the new run skips what is already done."""
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    try:
        services.request_retry(request_id=cr.pk, actor=request.user)  # type: ignore[arg-type]
    except TransitionError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(
            request, "Retry asked: the new run skips the steps already done; it is followed below."
        )
    return redirect("provisioning:request_detail", pk=cr.pk)
