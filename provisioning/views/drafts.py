"""Saving a request form as a draft, once: the one-time token every request form carries, and the save
that views of every kind of request share."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from provisioning.models import ChangeRequest, Workspace
from provisioning.spec import RequestSpec
from provisioning.workflow import services


def form_token(request: HttpRequest) -> str:
    """The token of the form being shown: the posted one when a form comes back with its errors, else new."""
    posted = str(request.POST.get("form_token", "")) if request.method == "POST" else ""
    return posted if services.FORM_TOKEN.fullmatch(posted) else secrets.token_urlsafe(24)


def save_draft(
    request: HttpRequest,
    *,
    user: Any,
    kind: str,
    spec: RequestSpec,
    workspace: Workspace | None,
    cr: ChangeRequest | None,
) -> ChangeRequest | HttpResponse:
    """The draft saved (made, or ``cr`` changed); a response instead when there is nothing more to do here:
    the same form was posted again after its request was submitted, or the request is no longer a draft."""
    try:
        if cr is not None:
            return services.request_update(request_id=cr.pk, actor=user, spec=spec)
        made = services.request_create(
            requester=user,
            kind=kind,
            spec=spec,
            workspace=workspace,
            form_token=str(request.POST.get("form_token", "")),
            lead_joins=request.POST.get("lead_joins") == "1",
        )
    except services.TransitionError as exc:
        assert cr is not None  # nosec B101 # only an existing request can be in the wrong status (mypy narrowing)
        messages.error(request, f"Could not save: {exc.message}.")
        return redirect("provisioning:request_detail", pk=cr.pk)
    if not made.is_editable:  # the same form posted again, after its request was submitted
        messages.info(request, f"Request #{made.pk} was already saved from this form.")
        return redirect("provisioning:request_detail", pk=made.pk)
    return made
