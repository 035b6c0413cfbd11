"""Knobs of the stand-in: per-operation latency and injected faults.

Faults are consumed in order: ``fail_next("storage.create", status=429, times=2)`` answers the next two
storage creations with 429, then the operation behaves normally again.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

STATUS_CODES = {
    408: "RequestTimeout",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}
STATUS_MESSAGES = {
    429: "The request is being throttled as the limit has been reached for operation type - "
    "Write_ObservationWindow_00:01:00. For more information, see - https://aka.ms/srpthrottlinglimits",
    500: "The server encountered an internal error. Please retry the request.",
    503: "The service is temporarily unavailable. Please retry the request.",
}

# Durations of the real operations (seconds), for demos: ``StandIn(latency=REALISTIC_LATENCY)``.
REALISTIC_LATENCY: dict[str, float] = {
    "entra.token": 0.15,
    "graph.users": 0.2,
    "graph.groups": 0.2,
    "graph.user": 0.15,
    "resource_group.create": 0.8,
    "storage.check_name": 0.3,
    "storage.create": 22.0,
    "key_vault.check_name": 0.3,
    "key_vault.create": 12.0,
    "registry.check_name": 0.3,
    "registry.create": 15.0,
    "app_insights.create": 4.0,
    "workspace.deployment": 60.0,
    "compute.create": 25.0,
    "role_definition.create": 2.0,
    "role_assignment.create": 1.5,
    "compute.update": 5.0,
    "compute.delete": 20.0,
    "registry.delete": 10.0,
    "workspace.delete": 20.0,
    "key_vault.purge": 5.0,
    "resource_group.delete": 45.0,
}


@dataclass
class Fault:
    """An error answer for the next request(s) of an operation."""

    status: int
    retry_after: float | None
    code: str
    message: str
    remaining: int

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        if self.retry_after == int(self.retry_after):
            return {"Retry-After": str(int(self.retry_after))}
        return {"retry-after-ms": str(int(self.retry_after * 1000))}


@dataclass
class LroFailure:
    code: str
    message: str
    remaining: int


class Faults:
    """Latency and fault configuration, thread-safe."""

    def __init__(
        self,
        latency: dict[str, float] | None = None,
        scale: float = 1.0,
        *,
        quota_delay: float = 0.0,
        quota_max: int = 1000,
    ) -> None:
        self._lock = threading.Lock()
        self._base_latency = dict(latency or {})
        self._base_scale = scale
        self._base_quota = (quota_delay, quota_max)
        self.reset()

    def reset(self) -> None:
        """Back to the constructor's latencies and scale; no faults pending."""
        with self._lock:
            self._latency = dict(self._base_latency)
            self._scale = self._base_scale
            self._next: dict[str, deque[Fault]] = {}
            self._lro: dict[str, deque[LroFailure]] = {}
            self.principal_delay = 0.0
            # Quota API requests: in progress this many seconds, then granted up to quota_max cores.
            self.quota_delay, self.quota_max = self._base_quota

    # --- latency ----

    def set_latency(self, operation: str, seconds: float) -> None:
        with self._lock:
            self._latency[operation] = seconds

    def set_scale(self, factor: float) -> None:
        with self._lock:
            self._scale = factor

    @property
    def scale(self) -> float:
        """The factor every latency is multiplied by (the ARM limits' refill rates are divided by it)."""
        with self._lock:
            return self._scale

    def latency(self, operation: str) -> float:
        """The operation's latency in seconds, scaled."""
        with self._lock:
            return max(0.0, self._latency.get(operation, 0.0) * self._scale)

    # --- faults ----

    def fail_next(
        self,
        operation: str,
        *,
        status: int = 429,
        retry_after: float | None = 1,
        times: int = 1,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        fault = Fault(
            status,
            retry_after,
            code or STATUS_CODES.get(status, f"HTTP{status}"),
            message or STATUS_MESSAGES.get(status, f"Injected failure ({status})."),
            times,
        )
        with self._lock:
            self._next.setdefault(operation, deque()).append(fault)

    def take(self, operation: str) -> Fault | None:
        """The fault for this request of the operation, if one is pending (consumes one use)."""
        with self._lock:
            queue = self._next.get(operation)
            if not queue:
                return None
            fault = queue[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                queue.popleft()
            return fault

    def lro_fail(self, operation: str, code: str, message: str, *, times: int = 1) -> None:
        with self._lock:
            self._lro.setdefault(operation, deque()).append(LroFailure(code, message, times))

    def take_lro_failure(self, operation: str) -> dict[str, Any] | None:
        """The error the next long-running operation must end with, if one is pending."""
        with self._lock:
            queue = self._lro.get(operation)
            if not queue:
                return None
            failure = queue[0]
            failure.remaining -= 1
            if failure.remaining <= 0:
                queue.popleft()
            return {"code": failure.code, "message": failure.message}
