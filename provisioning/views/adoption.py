"""Admins: workspaces found in Azure that the portal does not hold, adopting them, and taking them over.

The discover page shows the latest discovery a worker recorded (it never reads Azure itself: the web does
not wait on Azure) and asks for a new one with a button; the page reloads itself while one is running.
Adopting and taking over go through ``provisioning.workflow.adoption``.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import personas
from accounts.models import User
from provisioning.models import Workspace
from provisioning.workflow import adoption


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only admins can adopt workspaces")


def _team_leads() -> list[User]:
    return list(
        User.objects.filter(groups__name=personas.TEAM_LEAD, is_active=True)
        .order_by("upn", "username")
        .distinct()
    )


@login_required
@require_GET
def discover_page(request: HttpRequest) -> HttpResponse:
    """The workspaces the latest discovery found outside the portal, each with an adopt form."""
    _require_admin(request.user)
    scan = adoption.discovery_latest()
    context = {
        "nav": "workspaces",
        "scan": scan,
        "pending": adoption.discovery_pending(),
        "found": scan.workspaces if scan else [],
        "errors": (scan.result or {}).get("errors", []) if scan else [],
        "team_leads": _team_leads(),
    }
    return render(request, "provisioning/workspace_discover.html", context)


@login_required
@require_POST
def discover_refresh(request: HttpRequest) -> HttpResponse:
    """Queue a new read of Azure (one at a time)."""
    scan = adoption.discovery_request(actor=request.user)
    messages.info(
        request, f"Discovery #{scan.pk} is reading Azure: this page shows what it finds once it is done."
    )
    return redirect("provisioning:workspace_discover")


@login_required
@require_POST
def workspace_adopt(request: HttpRequest) -> HttpResponse:
    """Adopt one discovered workspace as observed, owned by the chosen team lead."""
    _require_admin(request.user)
    try:
        ws = adoption.workspace_adopt(
            azure_id=request.POST.get("azure_id", ""),
            team_lead=request.POST.get("team_lead", ""),
            actor=request.user,
        )
    except adoption.AdoptionError as exc:
        messages.error(request, exc.message)
        return redirect("provisioning:workspace_discover")
    messages.success(
        request,
        f"{ws.workspace_name} is adopted as observed: a reconcile reads it now; nothing is changed in Azure.",
    )
    return redirect("provisioning:workspace_detail", pk=ws.pk)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_take_over(request: HttpRequest, pk: int) -> HttpResponse:
    """The confirmation page (what will be tagged), then the take-over itself."""
    _require_admin(request.user)
    ws = get_object_or_404(Workspace, pk=pk)
    if request.method == "POST":
        try:
            adoption.workspace_take_over(workspace_id=ws.pk, actor=request.user)
        except adoption.AdoptionError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(
                request,
                f"Taking over {ws.workspace_name}: its resources get the portal's tag, then it is managed.",
            )
        return redirect("provisioning:workspace_detail", pk=ws.pk)
    context = {"nav": "workspaces", "workspace": ws, "scopes": adoption.takeover_scopes(ws)}
    return render(request, "provisioning/workspace_take_over.html", context)
