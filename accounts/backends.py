"""django-axes' throttling backend, marking the requests it refuses (for the sign-in audit)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.http import HttpRequest


class ThrottledBackend(AxesStandaloneBackend):
    """First in ``AUTHENTICATION_BACKENDS``: refuses a locked-out username and address before any password
    is checked, and marks the request for the sign-in audit: a password was offered (so a sign-in that follows
    is a password sign-in, not Entra's nor a test's ``force_login``), and whether the lockout refused it."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> Any:
        if request is not None:
            request.portal_password_offered = True  # type: ignore[attr-defined]
        try:
            return super().authenticate(request, *args, **kwargs)
        except AxesBackendPermissionDenied:
            if request is not None:
                request.portal_refused_while_locked_out = True  # type: ignore[attr-defined]
            raise
