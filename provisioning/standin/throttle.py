"""Azure Resource Manager's per-subscription request limits, as token buckets.

Figures from Microsoft Learn, "Understand how Azure Resource Manager throttles requests" (the token
bucket algorithm, per subscription and region): writes bucket 200 refilled 10 per second, reads 250
refilled 25 per second, deletes 200 refilled 10 per second. Each answer carries
``x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}`` (the bucket the method draws from); over
the limit ARM answers 429 TooManyRequests with Retry-After.

The refill rate is divided by the stand-in's latency scale (``max(scale, MIN_SCALE)``), like every other
duration it serves: at scale 0.1 a write token comes back every 10 ms instead of every 100 ms, so tests
and benchmarks keep Azure's proportions without Azure's wall time. Counting is always on (the headers
are always sent); refusing is off until ``enforce`` is set (``StandIn(arm_limits=True)`` or
``set_arm_limits``), so the existing suite is not throttled.
"""

from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass

# Microsoft Learn, "Understand how Azure Resource Manager throttles requests": (bucket size, refill per s).
ARM_LIMITS: dict[str, tuple[int, float]] = {
    "writes": (200, 10.0),
    "reads": (250, 25.0),
    "deletes": (200, 10.0),
}
MIN_SCALE = 0.001  # scale 0 ("instant") refills 1000x faster than Azure rather than infinitely
KIND_BY_METHOD = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}  # PUT, PATCH, POST: writes
THROTTLED_MESSAGE = (
    "Number of '{kind}' requests for subscription '{subscription}' exceeded the limit of '{size}' "
    "(token bucket refilled {rate:g} per second). Please try again after '{after}' seconds."
)
_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)


def request_kind(method: str) -> str:
    """The bucket a method draws from: reads, writes or deletes."""
    return KIND_BY_METHOD.get(method.upper(), "writes")


def subscription_of(path: str) -> str | None:
    """The subscription id a subscription-scoped ARM path names (lowercase), or None."""
    found = _SUBSCRIPTION.match(path)
    return found.group(1).lower() if found else None


@dataclass
class Bucket:
    """One token bucket: ``tokens`` left at ``stamp`` (monotonic seconds)."""

    tokens: float
    stamp: float


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided for one request."""

    kind: str
    remaining: int
    retry_after: float | None  # seconds until a token is back; None when the request may go ahead

    def headers(self) -> dict[str, str]:
        return {f"x-ms-ratelimit-remaining-subscription-{self.kind}": str(self.remaining)}


class ArmLimits:
    """Token buckets per (subscription, kind), thread-safe. ``scale`` is read on every request."""

    def __init__(self, *, enforce: bool = False, sizes: dict[str, int] | None = None) -> None:
        self._lock = threading.Lock()
        self._base = (enforce, dict(sizes or {}))
        self.reset()

    def reset(self) -> None:
        """Full buckets, the constructor's enforcement and sizes."""
        with self._lock:
            self.enforce, self._sizes = self._base[0], dict(self._base[1])
            self._buckets: dict[tuple[str, str], Bucket] = {}

    def configure(self, *, enforce: bool | None = None, sizes: dict[str, int] | None = None) -> None:
        """Turn refusing on or off; smaller buckets for tests (``{"writes": 5}``). Buckets start full."""
        with self._lock:
            if enforce is not None:
                self.enforce = enforce
            if sizes is not None:
                unknown = set(sizes) - set(ARM_LIMITS)
                if unknown:
                    raise ValueError(
                        f"unknown ARM limit kinds {sorted(unknown)}; known: {sorted(ARM_LIMITS)}"
                    )
                self._sizes.update(sizes)
            self._buckets.clear()

    def limits(self, kind: str, scale: float) -> tuple[int, float]:
        """The bucket size and the refill rate per second (scaled) of a kind."""
        size, rate = ARM_LIMITS[kind]
        return self._sizes.get(kind, size), rate / max(scale, MIN_SCALE)

    def take(self, subscription: str, method: str, scale: float) -> Verdict:
        """Take a token for this request, or say how long until one is back (when enforcing)."""
        kind = request_kind(method)
        size, rate = self.limits(kind, scale)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault((subscription, kind), Bucket(float(size), now))
            bucket.tokens = min(float(size), bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return Verdict(kind, int(bucket.tokens), None)
            if not self.enforce:
                return Verdict(kind, 0, None)
            return Verdict(kind, 0, (1.0 - bucket.tokens) / rate)

    @staticmethod
    def retry_after_header(seconds: float, scale: float) -> str:
        """Retry-After as ARM sends it (whole seconds, at least 1); fractional when the scale shrinks time.

        azure-core parses Retry-After with ``float()``, so ``0.05`` is honoured as 50 ms."""
        if scale >= 1.0:
            return str(max(1, math.ceil(seconds)))
        return f"{max(0.001, math.ceil(seconds * 1000) / 1000):.3f}"

    def message(self, subscription: str, kind: str, scale: float, after: str) -> str:
        size, rate = self.limits(kind, scale)
        return THROTTLED_MESSAGE.format(
            kind=kind, subscription=subscription, size=size, rate=rate, after=after
        )
