"""django-axes' throttling backend, marking the requests it refuses (for the sign-in audit)."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied
from django.http import HttpRequest


class ThrottledBackend(AxesStandaloneBackend):
    """First in ``AUTHENTICATION_BACKENDS``: refuses a locked-out username and address before any password
    is checked, and marks that request so the audit tells it from a wrong password."""

    def authenticate(self, request: HttpRequest | None, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().authenticate(request, *args, **kwargs)
        except AxesBackendPermissionDenied:
            if request is not None:
                request.portal_refused_while_locked_out = True  # type: ignore[attr-defined]
            raise
