"""The day-2 change page of a workspace: change or delete clusters, change members' roles or remove them.

The page lists what the workspace holds, as it is; the request is what the team lead changes. It is saved
as a draft (problems and all) or submitted, and its page shows the plan as a diff. The rules are the
services' (``provisioning.workflow.changes`` and ``validation``).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from provisioning.models import ChangeRequest, Workspace
from provisioning.problems import Problem
from provisioning.spec import RequestSpec
from provisioning.workflow import changes, services, validation
from provisioning.workflow.forms.changes import WorkspaceChangeForms

Kind = ChangeRequest.Kind
TEMPLATE = "provisioning/workspace_change.html"


def change_page(
    request: HttpRequest, workspace: Workspace, *, user: Any, cr: ChangeRequest | None = None
) -> HttpResponse:
    """GET shows the workspace's clusters and members (or a draft's changes); POST saves and maybe submits."""
    if request.method == "POST":
        forms = WorkspaceChangeForms(workspace, data=request.POST)
        if forms.is_valid():
            return _save(request, forms, user=user, cr=cr)
    else:
        draft = RequestSpec.from_json(cr.spec) if cr is not None else None
        forms = WorkspaceChangeForms(workspace, draft=draft)
        if cr is not None:
            forms.is_valid()
            spec = draft or RequestSpec()
            forms.add_problems(
                validation.spec_problems(spec, kind=cr.kind, workspace=workspace, request_id=cr.pk), spec
            )
    return render(
        request,
        TEMPLATE,
        {
            "nav": "workspaces" if cr is None else "requests",
            "workspace": workspace,
            "forms": forms,
            "cr": cr,
            "title": f"Edit draft #{cr.pk}" if cr else f"Change {workspace.workspace_name}",
        },
    )


def _save(
    request: HttpRequest, forms: WorkspaceChangeForms, *, user: Any, cr: ChangeRequest | None
) -> HttpResponse:
    spec = forms.spec()
    if not changes.edits_existing(spec):
        forms.problems.append(
            Problem("changes", "nothing is changed: change a cluster or a member, or tick a removal")
        )
        return render(
            request,
            TEMPLATE,
            {"nav": "workspaces", "workspace": forms.workspace, "forms": forms, "cr": cr, "title": "Change"},
        )
    try:
        if cr is None:
            cr = services.request_create(
                requester=user, kind=Kind.CHANGE_WORKSPACE, spec=spec, workspace=forms.workspace
            )
        else:
            cr = services.request_update(request_id=cr.pk, actor=user, spec=spec)
    except services.TransitionError as exc:
        assert cr is not None  # nosec B101 # the request was loaded above (mypy narrowing)
        messages.error(request, f"Could not save: {exc.message}.")
        return redirect("provisioning:request_detail", pk=cr.pk)
    if request.POST.get("action") == "submit":
        try:
            services.request_submit(request_id=cr.pk, actor=user)
        except services.RequestError as exc:
            messages.error(
                request,
                f"Request #{cr.pk} cannot be submitted yet: {exc.message}. It is kept as a draft; fix what is "
                "shown below, then submit it again.",
            )
            return redirect("provisioning:request_edit", pk=cr.pk)
        messages.success(request, f"Request #{cr.pk} is submitted for approval: its plan is below.")
        return redirect("provisioning:request_detail", pk=cr.pk)
    messages.success(request, f"Draft #{cr.pk} is saved: its plan is below. Submit it when it is ready.")
    return redirect("provisioning:request_detail", pk=cr.pk)
