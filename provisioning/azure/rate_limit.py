"""Read and write budgets per subscription shared by every worker: ARM's token buckets, kept in Redis.

Azure Resource Manager refills a subscription's write bucket at 10 tokens per second up to 200, and its read
bucket at 25 per second up to 250 ("Understand how Azure Resource Manager throttles requests"); every worker
process calling the same subscription draws from those buckets. ``WriteBudget`` mirrors one of them in Redis
(one hash per subscription and kind, updated by a Lua script, so concurrent workers never over-draw) and
``WriteBudgetPolicy`` makes every SDK write (PUT, PATCH, POST, DELETE), and every read (GET, HEAD) when a
read budget is given, wait for a token before it is sent: the long-running operations' polls of a burst of
runs are paced instead of answered 429. A token is reserved, then waited for: callers are served in the
order they asked, and nobody polls. If Redis cannot be reached the budget falls back to a bucket in this
process (logged once): still a limit, just not a shared one. A 429 that slips through is retried by
azure-core's RetryPolicy after Retry-After, and a step still throttled after that is retried by the engine.

What the budgets cannot see: azure-ai-ml builds its own client for the workspace's template deployment (its
PUT, and azure-core's polls of its status at ARM's Retry-After); ``ml.ensure_workspace`` takes tokens for
the PUT and the reads it knows of, and the read budget is kept below ARM's refill to leave the polls room.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from typing import Any

from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy

logger = logging.getLogger(__name__)

WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
READ_METHODS = frozenset({"GET", "HEAD"})
MAX_WAIT_SECONDS = 120.0  # beyond this, send anyway: ARM answers 429 and azure-core waits its Retry-After
KEY_PREFIX = "portal:arm-write-budget:"
READ_KEY_PREFIX = "portal:arm-read-budget:"
WAIT_COUNTER = "portal:rate_limit_wait_seconds_total"
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?]+)", re.IGNORECASE)

# KEYS[1] the subscription's bucket; ARGV rate per second, burst, max wait (s). Time is Redis's own (TIME),
# so workers on hosts with skewed clocks agree. Returns the wait in microseconds as a string: 0 when a token
# was free, the wait when one was reserved (the bucket goes negative), "-" + wait when the wait is too long
# (nothing reserved).
_TAKE = """
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, stamp = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local wait = 0
if tokens < 1 then
  wait = (1 - tokens) / rate
  if wait > max_wait then
    return '-' .. tostring(math.floor(wait * 1000000))
  end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(math.floor(wait * 1000000))
"""


class LocalBucket:
    """The same token bucket in this process (when Redis is down)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def reserve(self, subscription: str, max_wait: float) -> float:
        """Seconds to wait for a reserved token; negative when the wait would exceed ``max_wait``."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(subscription, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - stamp) * self.rate)
            wait = max(0.0, (1.0 - tokens) / self.rate)
            if wait > max_wait:
                return -wait
            self._buckets[subscription] = (tokens - 1.0, now)
            return wait


class WriteBudget:
    """ARM tokens of one kind (writes, or reads with ``key_prefix=READ_KEY_PREFIX``) per subscription, shared
    through Redis by every worker process."""

    def __init__(
        self,
        redis_url: str,
        *,
        rate: float,
        burst: int,
        max_wait: float = MAX_WAIT_SECONDS,
        key_prefix: str = KEY_PREFIX,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("an ARM budget's rate must be > 0 and its burst >= 1")
        self.redis_url, self.rate, self.burst, self.max_wait = redis_url, rate, burst, max_wait
        self.key_prefix = key_prefix
        self.local = LocalBucket(rate, burst)
        self._lock = threading.Lock()
        self._script: Any = None
        self._redis: Any = None
        self._warned = False

    def _connection(self) -> tuple[Any, Any]:
        with self._lock:
            if self._script is None:
                import redis

                self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
                self._script = self._redis.register_script(_TAKE)
            return self._redis, self._script

    def reserve(self, subscription: str) -> float:
        """Reserve the subscription's next write token; the seconds to wait before using it.

        Negative: no token within ``max_wait`` (nothing reserved; the caller sends and ARM decides)."""
        from redis.exceptions import RedisError

        try:
            _, script = self._connection()
            answer = script(
                keys=[self.key_prefix + subscription.lower()], args=[self.rate, self.burst, self.max_wait]
            )
        except RedisError:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "ARM budget %s: Redis unreachable, limiting in this process only", self.key_prefix
                )
            return self.local.reserve(subscription.lower(), self.max_wait)
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        return int(text) / 1_000_000

    def acquire(self, subscription: str) -> float:
        """Wait (bounded) for a write token; returns the seconds waited."""
        wait = self.reserve(subscription)
        if wait <= 0:
            return 0.0
        time.sleep(wait)
        self._count(wait)
        return wait

    def _count(self, seconds: float) -> None:
        from redis.exceptions import RedisError

        try:
            conn, _ = self._connection()
            conn.incrbyfloat(WAIT_COUNTER, seconds)
        except RedisError:
            pass  # the wait counter is a metric, not worth failing a write for

    def close(self) -> None:
        with self._lock:
            if self._redis is not None:
                self._redis.close()
            self._redis = self._script = None


def subscription_in(url: str) -> str | None:
    """The subscription id an ARM URL names, or None (tenant-level calls are not counted)."""
    found = _SUBSCRIPTION.search(url)
    return found.group(1) if found else None


class WriteBudgetPolicy(SansIOHTTPPolicy):
    """An azure-core policy: a write to a subscription waits for a token of its budget before it is sent,
    and so does a read when there is a read budget.

    Added after the RetryPolicy, so every retry (after a 429's Retry-After too) takes a token again."""

    def __init__(self, budget: WriteBudget | None, reads: WriteBudget | None = None) -> None:
        self.budget, self.reads = budget, reads

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        method = http.method.upper()
        budget = self.budget if method in WRITE_METHODS else self.reads if method in READ_METHODS else None
        if budget is None:
            return
        subscription = subscription_in(http.url)
        if subscription is not None:
            budget.acquire(subscription)
