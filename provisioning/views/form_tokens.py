"""The one-time token every request form carries, so that the same form posted twice makes one request."""

from __future__ import annotations

import secrets

from django.http import HttpRequest

from provisioning.workflow import services


def form_token(request: HttpRequest) -> str:
    """The token of the form being shown: the posted one when a form comes back with its errors, else new."""
    posted = str(request.POST.get("form_token", "")) if request.method == "POST" else ""
    return posted if services.FORM_TOKEN.fullmatch(posted) else secrets.token_urlsafe(24)


def posted_token(request: HttpRequest) -> str:
    """The token the posted form carried ("" when none)."""
    return str(request.POST.get("form_token", ""))
