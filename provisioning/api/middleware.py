"""Audit events written while the API answers say they came through the API (``via="api"``)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from provisioning.audit import audit_via
from provisioning.models import AuditEvent

API_PREFIX = "/api/"


class ApiAuditChannel:
    """Every event of an ``/api/`` request is recorded ``via="api"`` (the pages' are "web")."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        with audit_via(AuditEvent.Via.API):
            return self.get_response(request)
