"""The client's address, for sign-in throttling (django-axes) and the sign-in audit."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str:
    """REMOTE_ADDR; behind the TLS proxy (``BEHIND_TLS_PROXY``), the last X-Forwarded-For entry.

    The proxy appends the address it saw to X-Forwarded-For; anything before that entry came from the
    client and can be forged, so only the last one is trusted (one proxy in front, as documented).
    """
    remote = str(request.META.get("REMOTE_ADDR") or "")
    if not settings.BEHIND_TLS_PROXY:
        return remote
    forwarded = [part.strip() for part in str(request.META.get("HTTP_X_FORWARDED_FOR", "")).split(",")]
    return forwarded[-1] if forwarded and forwarded[-1] else remote
