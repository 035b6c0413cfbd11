"""API errors as JSON, with the problem list the forms show: ``{"detail": ..., "problems": [{field, message}]}``.

A rule the request breaks is a 400 with its problems; a status change the request's status does not allow
is a 409; a permission the caller lacks is a 403; a missing or refused token is a 401.
"""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from provisioning.configfile import ConfigError
from provisioning.workflow.transitions import RequestError, TransitionError


def problem_list(problems: Any) -> list[dict[str, Any]]:
    """Problems (``Problem`` objects, or a serializer's nested errors) as ``[{"field", "message"}]``."""
    found: list[dict[str, Any]] = []

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                walk(inner, f"{path}.{key}" if path and key != "non_field_errors" else (path or str(key)))
        elif isinstance(value, list):
            if all(isinstance(v, str) for v in value):
                found.extend({"field": path, "message": str(v)} for v in value)
            else:
                for i, inner in enumerate(value):
                    if inner:
                        walk(inner, f"{path}.{i}" if path else str(i))
        else:
            found.append({"field": path, "message": str(value)})

    if isinstance(problems, list | tuple) and problems and hasattr(problems[0], "message"):
        return [{"field": p.field, "message": p.message} for p in problems]
    walk(problems, "")
    return found


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus the workflow's errors; every error body has ``detail`` and ``problems``."""
    if isinstance(exc, TransitionError):
        return Response(
            {"detail": exc.message, "problems": problem_list(exc.problems)}, status=status.HTTP_409_CONFLICT
        )
    if isinstance(exc, RequestError):
        return Response(
            {"detail": exc.message, "problems": problem_list(exc.problems)},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, ConfigError):
        issues = [{"field": i.field, "line": i.line, "message": i.describe("config.yml")} for i in exc.issues]
        return Response({"detail": str(exc), "problems": issues}, status=status.HTTP_400_BAD_REQUEST)
    response = exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) == {"detail"}:
        response.data = {"detail": str(data["detail"]), "problems": []}
    else:
        response.data = {"detail": "the request body has problems to fix", "problems": problem_list(data)}
    return response
