"""HTTP plumbing shared by the stand-in's APIs: requests, responses, routes and Azure's error shapes."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote

ARM, GRAPH, ENTRA = "arm", "graph", "entra"


@dataclass
class Request:
    """One parsed HTTP request. Query keys and header names are lowercased."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    base_url: str
    params: dict[str, str] = field(default_factory=dict)

    @classmethod
    def parse(cls, method: str, target: str, headers: dict[str, str], body: bytes, base_url: str) -> Request:
        path, _, query = target.partition("?")
        pairs = parse_qsl(query, keep_blank_values=True)
        return cls(method.upper(), path, {k.lower(): v for k, v in pairs}, headers, body, base_url)

    def json(self) -> dict[str, Any]:
        """The JSON object in the body; an empty body is ``{}``. Anything else is ARM's 400."""
        try:
            body = json.loads(self.body) if self.body.strip() else {}
        except ValueError as exc:
            body = exc
        if not isinstance(body, dict):
            raise arm_error(
                400,
                "InvalidRequestContent",
                f"The request content was invalid and could not be deserialized: '{body}'.",
            )
        return body

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True))

    def json_or_none(self) -> Any:
        try:
            return json.loads(self.body) if self.body.strip() else None
        except ValueError:
            return None


@dataclass
class Response:
    """What a handler answers. A dict or list body is sent as JSON; None sends no body."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body).encode()


class HttpError(Exception):
    """Raised by a handler to answer with an error response (already in the right service's shape)."""

    def __init__(self, response: Response) -> None:
        super().__init__(f"{response.status}: {response.body}")
        self.response = response


def arm_error(
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    details: list[dict[str, Any]] | None = None,
) -> HttpError:
    """ARM's error body: {"error": {"code", "message"}} (the shape every management SDK parses)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return HttpError(Response(status, {"error": error}, dict(headers or {})))


def graph_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> HttpError:
    """Microsoft Graph's error body, with its innerError block."""
    inner = {"date": utc_now(), "request-id": str(uuid.uuid4()), "client-request-id": str(uuid.uuid4())}
    body = {"error": {"code": code, "message": message, "innerError": inner}}
    return HttpError(Response(status, body, dict(headers or {})))


def aad_error(
    status: int, error: str, aadsts: int, description: str, headers: dict[str, str] | None = None
) -> HttpError:
    """Entra ID's OAuth error body: error, error_description with the AADSTS code, error_codes, ids."""
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "error": error,
        "error_description": f"AADSTS{aadsts}: {description} Trace ID: {trace} Correlation ID: {correlation} "
        f"Timestamp: {utc_now()}",
        "error_codes": [aadsts],
        "timestamp": utc_now(),
        "trace_id": trace,
        "correlation_id": correlation,
    }
    return HttpError(Response(status, body, dict(headers or {})))


def service_error(
    area: str, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> HttpError:
    """An error in the shape of the service that owns the route (used by fault injection)."""
    if area == GRAPH:
        return graph_error(status, code, message, headers)
    if area == ENTRA:
        return aad_error(
            status,
            "temporarily_unavailable" if status >= 500 or status == 429 else "invalid_request",
            50196 if status == 429 else 90033,
            message,
            headers,
        )
    return arm_error(status, code, message, headers)


Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    """A method and path pattern (case-insensitive), the operation name faults and latency refer to.

    ``lro`` routes start long-running operations: their latency is the operation's duration instead of
    a delay before answering. ``auth`` routes need a bearer token the stand-in issued.
    """

    method: str
    pattern: re.Pattern[str]
    operation: str
    handler: Handler
    area: str = ARM
    auth: bool = True
    lro: bool = False

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.match(path)
        if found is None:
            return None
        return {k: unquote(v) for k, v in found.groupdict().items() if v is not None}


def route(method: str, pattern: str, operation: str, handler: Handler, **options: Any) -> Route:
    """A Route whose pattern is anchored and case-insensitive (ARM paths are)."""
    return Route(method, re.compile(f"^{pattern}/?$", re.IGNORECASE), operation, handler, **options)


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Api(Protocol):
    """One service of the stand-in: its routes."""

    def routes(self) -> list[Route]: ...
