"""Decommissioning a workspace from its page, and purging its soft-deleted key vault (admins)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.models import User
from provisioning.workflow import decommission, key_vaults, selectors
from provisioning.workflow.transitions import RequestError


class DecommissionForm(forms.Form):
    """Why the workspace goes, and whether its data accounts stay."""

    reason = forms.CharField(
        max_length=decommission.MAX_REASON, widget=forms.Textarea(attrs={"rows": 3}), strip=True
    )
    keep_data = forms.BooleanField(
        required=False,
        label="Keep the data storage account and data lake (their access removed, tagged as retained)",
    )


@login_required
@require_http_methods(["GET", "POST"])
def workspace_decommission(request: HttpRequest, pk: int) -> HttpResponse:
    """The "Decommission…" form: a draft, or submitted for approval."""
    workspace = get_object_or_404(selectors.workspaces_visible_to(request.user), pk=pk)
    if not decommission.may_decommission(request.user, workspace):
        raise PermissionDenied("you may not decommission this workspace")
    form = DecommissionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            cr = decommission.decommission_request(
                workspace_id=workspace.pk,
                requester=request.user,
                reason=form.cleaned_data["reason"],
                keep_data=form.cleaned_data["keep_data"],
                submit=request.POST.get("action") == "submit",
            )
        except RequestError as exc:
            form.add_error(None, exc.message)
        else:
            messages.success(
                request, f"Request #{cr.pk} to decommission {workspace.workspace_name} is saved."
            )
            return redirect("provisioning:request_detail", pk=cr.pk)
    context = {
        "nav": "workspaces",
        "workspace": workspace,
        "form": form,
        "offered": decommission.can_decommission(request.user, workspace),
    }
    return render(request, "provisioning/workspace_decommission.html", context)


@login_required
@require_POST
def key_vault_purge(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin purges the workspace's soft-deleted key vault (a worker asks Azure)."""
    workspace = get_object_or_404(selectors.workspaces_visible_to(request.user), pk=pk)
    assert isinstance(request.user, User)  # nosec B101 # login_required: signed in (mypy narrowing)
    try:
        outcome = key_vaults.key_vault_purge_request(name=workspace.key_vault, actor=request.user)
    except RequestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Purge of key vault {workspace.key_vault}: {outcome}.")
    return redirect("provisioning:workspace_detail", pk=workspace.pk)
