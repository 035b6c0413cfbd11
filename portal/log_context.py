"""What each log line is about: the web request (its id), or the run and step a worker executes, and Azure's
correlation id when there is one. Held in context variables, put on every record by ``ContextFilter``.

The request id comes from the proxy's ``X-Request-ID`` when it is a plain token (letters, digits, ``-``, at most
64), else is made here; the answer carries it back, so a user's report, the proxy's log and the portal's meet.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

FIELDS = ("request_id", "run", "step", "correlation_id")
_context: dict[str, ContextVar[str]] = {name: ContextVar(name, default="") for name in FIELDS}
REQUEST_ID = re.compile(r"[A-Za-z0-9-]{1,64}")


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Log lines written inside the block carry these values (``run``, ``step``, ``correlation_id``...)."""
    tokens = [(name, _context[name].set(str(value))) for name, value in values.items() if name in _context]
    try:
        yield
    finally:
        for name, token in reversed(tokens):
            _context[name].reset(token)


class ContextFilter(logging.Filter):
    """Copies the context onto each record (a value the call passed in ``extra`` wins). Django logs a 4xx or
    5xx answer after the middleware has returned: its request id comes from the request it names."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _context.items():
            if not getattr(record, name, ""):
                setattr(record, name, var.get())
        if not record.request_id:  # type: ignore[attr-defined]
            record.request_id = getattr(getattr(record, "request", None), "portal_request_id", "")
        return True


class JsonLines(JsonFormatter):
    """One JSON object per line. Django's ``request`` extra is left out: its text holds the query string (the
    Entra ID callback's code); the request id names the request instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("reserved_attrs", [*RESERVED_ATTRS, "request"])
        kwargs.setdefault("rename_fields", {"asctime": "time", "levelname": "level", "name": "logger"})
        super().__init__(*args, **kwargs)


class RequestId:
    """Gives each web request an id for its log lines, and returns it in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = request.headers.get("X-Request-ID", "")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        request.portal_request_id = request_id  # type: ignore[attr-defined]
        with log_context(request_id=request_id):
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
