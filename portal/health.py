"""``/healthz`` and ``/readyz``, answered before any other middleware (no host check, no TLS redirect, no
session): probes come from the orchestrator by IP, over plain HTTP inside the cluster.

- ``GET /healthz``: the process answers. No I/O. Always 200 (a liveness probe).
- ``GET /readyz``: the database answers with every migration applied, Redis answers, and a provisioning worker's
  heartbeat was seen in the last ``READY_WORKER_SECONDS``. 200, or 503 naming the failing checks (a readiness
  probe: the instance gets no traffic until they pass).

Both answer JSON and nothing that helps an attacker: no host names, versions or error texts from the drivers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import RedisError
from rq import Queue, Worker

logger = logging.getLogger(__name__)

QUEUE = "provisioning"
REDIS_TIMEOUT_SECONDS = 2
# Migrations only move forward while a process runs: once seen applied, they are not read again.
_migrated = False


def _database() -> str | None:
    global _migrated
    try:
        connection.ensure_connection()
        if _migrated:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return None
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError as exc:
        logger.warning("readyz: the database does not answer: %s", type(exc).__name__)
        return "the database does not answer"
    if pending:
        return f"{len(pending)} migration(s) not applied"
    _migrated = True
    return None


def _redis_connection() -> redis.Redis:
    url = settings.RQ_QUEUES[QUEUE]["URL"]
    return redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS
    )


def _redis_and_worker() -> tuple[str | None, str | None]:
    try:
        conn = _redis_connection()
        conn.ping()
        workers = Worker.all(queue=Queue(QUEUE, connection=conn))
    except RedisError as exc:
        logger.warning("readyz: Redis does not answer: %s", type(exc).__name__)
        return "Redis does not answer", "no worker can be seen while Redis does not answer"
    now = datetime.now(UTC)
    limit = settings.READY_WORKER_SECONDS
    seen = [w.last_heartbeat for w in workers if w.last_heartbeat is not None]
    if not any((now - beat.replace(tzinfo=beat.tzinfo or UTC)).total_seconds() <= limit for beat in seen):
        return None, f"no provisioning worker's heartbeat in the last {limit} s"
    return None, None


def readiness() -> tuple[bool, dict[str, Any]]:
    """Each check's result, and whether all passed."""
    database = _database()
    redis_problem, worker_problem = _redis_and_worker()
    checks = {
        name: {"ok": problem is None, **({"problem": problem} if problem else {})}
        for name, problem in (("database", database), ("redis", redis_problem), ("worker", worker_problem))
    }
    return all(c["ok"] for c in checks.values()), checks


def healthz(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> HttpResponse:
    ok, checks = readiness()
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not ok:
        body["failing"] = [name for name, check in checks.items() if not check["ok"]]
    return JsonResponse(body, status=200 if ok else 503)


def _metrics(request: HttpRequest) -> HttpResponse:
    from portal.metrics import metrics

    return metrics(request)


PROBES: dict[str, Callable[[HttpRequest], HttpResponse]] = {
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": _metrics,
}


class HealthMiddleware:
    """First in ``MIDDLEWARE``: a GET of a probe's path (and Prometheus' scrape of ``/metrics``) is answered
    here, before the host check, the TLS redirect, the session and sign-in (probes come by IP, over HTTP,
    without a session)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        probe = PROBES.get(request.path_info)
        if probe is None or request.method not in ("GET", "HEAD"):
            return self.get_response(request)
        response = probe(request)
        response["Cache-Control"] = "no-store"
        return response
