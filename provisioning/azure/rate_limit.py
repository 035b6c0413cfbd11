"""Read and write budgets per subscription shared by every worker: ARM's token buckets, kept in Redis.

Azure Resource Manager refills a subscription's write bucket at 10 tokens per second up to 200, and its read
bucket at 25 per second up to 250 ("Understand how Azure Resource Manager throttles requests"); every worker
process calling the same subscription draws from those buckets. ``WriteBudget`` mirrors one of them in Redis
(one hash per subscription and kind, updated by a Lua script, so concurrent workers never over-draw) and
``WriteBudgetPolicy`` makes every SDK write (PUT, PATCH, POST, DELETE), and every read (GET, HEAD) when a
read budget is given, wait for a token before it is sent: the long-running operations' polls of a burst of
runs are paced instead of answered 429. A token is reserved, then waited for: callers are served in the
order they asked, and nobody polls; except a yielding write (the authorization client's: role assignments
and definitions), which while others queue takes a token only with ``spare`` more left, for a bounded time
(``acquire_yielding``), so that what a run's later steps wait on goes first. If Redis cannot be reached
the budget falls back to a bucket in this process (logged once): still a limit, just not a shared one. A 429
that slips through is retried by azure-core's RetryPolicy after Retry-After, and a step still throttled after
that is retried by the engine.

What the budgets cannot see: azure-ai-ml builds its own client for the workspace's template deployment (its
PUT, and azure-core's polls of its status at ARM's Retry-After); ``ml.ensure_workspace`` takes tokens for
the PUT and the reads it knows of, and the read budget is kept below ARM's refill to leave the polls room.
"""

from __future__ import annotations

import logging
import random
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
# A yielding write (a role assignment) leaves the bucket to the others for at most this long, then queues
# like them: a burst's resources and deployments go first, and no grant waits for ever.
YIELD_PATIENCE_SECONDS = 90.0
KEY_PREFIX = "portal:arm-write-budget:"
READ_KEY_PREFIX = "portal:arm-read-budget:"
WAIT_COUNTER = "portal:rate_limit_wait_seconds_total"
_SUBSCRIPTION = re.compile(r"/subscriptions/([^/?]+)", re.IGNORECASE)

# KEYS[1] the subscription's bucket; ARGV rate per second, burst, then the script's own. Time is Redis's own
# (TIME), so workers on hosts with skewed clocks agree. Leaves ``tokens`` refilled up to ``now``.
_REFILL = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens, stamp = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, stamp = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
"""

# ARGV[3] the max wait (s). Returns the wait in microseconds as a string: 0 when a token was free, the wait
# when one was reserved (the bucket goes negative), "-" + wait when the wait is too long (nothing reserved).
_TAKE = (
    _REFILL
    + """
local max_wait = tonumber(ARGV[3])
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
)


# ARGV[3] spare. Takes a token only if ``spare`` more stay (nobody reserved ahead: their reservations make
# the bucket negative). Returns "0" when taken, else "-" + the microseconds until that many could be there
# if nobody else took one (nothing reserved).
_TAKE_SPARE = (
    _REFILL
    + """
local spare = tonumber(ARGV[3])
if tokens < 1 + spare then
  return '-' .. tostring(math.floor((1 + spare - tokens) / rate * 1000000))
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'stamp', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return '0'
"""
)


class LocalBucket:
    """The same token bucket in this process (when Redis is down)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def _refilled(self, subscription: str, now: float) -> float:
        tokens, stamp = self._buckets.get(subscription, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - stamp) * self.rate)

    def reserve(self, subscription: str, max_wait: float) -> float:
        """Seconds to wait for a reserved token; negative when the wait would exceed ``max_wait``."""
        now = time.monotonic()
        with self._lock:
            tokens = self._refilled(subscription, now)
            wait = max(0.0, (1.0 - tokens) / self.rate)
            if wait > max_wait:
                return -wait
            self._buckets[subscription] = (tokens - 1.0, now)
            return wait

    def take_spare(self, subscription: str, spare: int) -> float:
        """0 when a token was taken with ``spare`` more left; else the seconds until there might be."""
        now = time.monotonic()
        with self._lock:
            tokens = self._refilled(subscription, now)
            if tokens < 1 + spare:
                return (1 + spare - tokens) / self.rate
            self._buckets[subscription] = (tokens - 1.0, now)
            return 0.0


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
        spare: int = 0,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("an ARM budget's rate must be > 0 and its burst >= 1")
        if not 0 <= spare < burst:
            raise ValueError("the tokens a yielding write leaves must be >= 0 and below the burst")
        self.redis_url, self.rate, self.burst, self.max_wait = redis_url, rate, burst, max_wait
        self.key_prefix = key_prefix
        self.spare = spare  # what a yielding write leaves in the bucket (0: it does not yield)
        self.local = LocalBucket(rate, burst)
        self._lock = threading.Lock()
        self._script: Any = None
        self._spare_script: Any = None
        self._redis: Any = None
        self._warned = False

    def _connection(self) -> tuple[Any, Any]:
        with self._lock:
            if self._script is None:
                import redis

                self._redis = redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
                self._script = self._redis.register_script(_TAKE)
                self._spare_script = self._redis.register_script(_TAKE_SPARE)
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

    def take_spare(self, subscription: str) -> float:
        """Take a token only if ``spare`` more stay in the bucket: 0 when taken, else the seconds until
        there might be (nothing reserved)."""
        from redis.exceptions import RedisError

        try:
            self._connection()
            answer = self._spare_script(
                keys=[self.key_prefix + subscription.lower()], args=[self.rate, self.burst, self.spare]
            )
        except RedisError:
            return self.local.take_spare(subscription.lower(), self.spare)
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        return abs(int(text)) / 1_000_000

    def acquire_yielding(self, subscription: str, patience: float = YIELD_PATIENCE_SECONDS) -> float:
        """Wait for a token as a write that can wait: while others queue for the bucket (or it holds
        ``spare`` tokens or fewer) leave it to them, for at most ``patience`` seconds, then queue like them.

        A burst of runs writes its resources and template deployments, which later steps wait on, before
        its role assignments, which nothing in Azure waits on: the deployments (a minute each) start
        sooner, and the grants fill the budget while they run. Returns the seconds waited."""
        if self.spare <= 0:
            return self.acquire(subscription)
        waited = 0.0
        while waited < patience:
            wait = self.take_spare(subscription)
            if wait <= 0:
                if waited:
                    self._count(waited)
                return waited
            # Jittered, at most 2 s: hundreds of waiting grants ask Redis a few hundred times a second.
            pause = min(max(wait, 0.2), 2.0, patience - waited) * random.uniform(0.5, 1.0)  # nosec B311
            time.sleep(pause)
            waited += pause
        self._count(waited)
        return waited + self.acquire(subscription)

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
            self._redis = self._script = self._spare_script = None


def subscription_in(url: str) -> str | None:
    """The subscription id an ARM URL names, or None (tenant-level calls are not counted)."""
    found = _SUBSCRIPTION.search(url)
    return found.group(1) if found else None


class WriteBudgetPolicy(SansIOHTTPPolicy):
    """An azure-core policy: a write to a subscription waits for a token of its budget before it is sent,
    and so does a read when there is a read budget.

    Added after the RetryPolicy, so every retry (after a 429's Retry-After too) takes a token again."""

    def __init__(
        self, budget: WriteBudget | None, reads: WriteBudget | None = None, *, yielding: bool = False
    ) -> None:
        self.budget, self.reads = budget, reads
        self.yielding = yielding  # its writes leave the bucket to others' while they queue

    def on_request(self, request: PipelineRequest[Any]) -> None:
        http = request.http_request
        method = http.method.upper()
        budget = self.budget if method in WRITE_METHODS else self.reads if method in READ_METHODS else None
        if budget is None:
            return
        subscription = subscription_in(http.url)
        if subscription is None:
            return
        if self.yielding and method in WRITE_METHODS:
            budget.acquire_yielding(subscription)
        else:
            budget.acquire(subscription)
