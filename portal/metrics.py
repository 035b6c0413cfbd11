"""``GET /metrics`` in Prometheus' text format, for the operators' Prometheus only (a bearer token).

Request latency per view is measured in each web process (``RequestMetrics``; with several gunicorn workers set
``PROMETHEUS_MULTIPROC_DIR`` to a writable, emptied-at-start directory so a scrape sums them). Everything else is
read from the database and Redis at scrape time, so it is the same whichever process answers and needs nothing
from the workers' memory: runs and steps by status, step durations per Azure operation, Azure errors by code,
open drift items, notifications waiting, per RQ queue its length and the age of its oldest job, and the time the
workers waited for Azure's read and write budgets.
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import redis
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, DurationField, ExpressionWrapper, F, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from redis.exceptions import RedisError
from rq import Queue
from rq.job import Job

from provisioning.models import DriftItem, Notification, Run, Step

logger = logging.getLogger(__name__)

QUEUES = ("provisioning",)
# Where the workers add the time they waited for ARM's read and write budgets (provisioning/azure/rate_limit.py).
RATE_LIMIT_WAIT_KEY = "portal:rate_limit_wait_seconds_total"
REQUEST_SECONDS = Histogram(
    "portal_http_request_duration_seconds",
    "Time to answer a web request, per view (the URL pattern's name) and method",
    ["view", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class PortalCollector(Collector):
    """What the database and Redis hold now, read at each scrape (a handful of aggregate queries)."""

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._database()
        except DatabaseError as exc:
            logger.warning("metrics: the database does not answer: %s", type(exc).__name__)
        yield from self._queues()

    def _database(self) -> Iterator[Metric]:
        runs = GaugeMetricFamily("portal_runs", "Provisioning runs by status", labels=["status"])
        for status, n in Run.objects.order_by().values_list("status").annotate(n=Count("id")):
            runs.add_metric([status], n)
        yield runs
        steps = GaugeMetricFamily("portal_steps", "Provisioning steps by status", labels=["status"])
        for status, n in Step.objects.order_by().values_list("status").annotate(n=Count("id")):
            steps.add_metric([status], n)
        yield steps
        took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        durations = SummaryMetricFamily(
            "portal_step_duration_seconds",
            "Time of finished steps, per Azure operation (step kind)",
            labels=["kind"],
        )
        finished = (
            Step.objects.filter(started_at__isnull=False, finished_at__isnull=False)
            .order_by()
            .values_list("kind")
            .annotate(n=Count("id"), total=Sum(took))
        )
        for kind, n, total in finished:
            durations.add_metric([kind], count_value=n, sum_value=total.total_seconds() if total else 0.0)
        yield durations
        errors = CounterMetricFamily(
            "portal_azure_errors", "Failed steps by Azure's error code", labels=["code"]
        )
        failed = Step.objects.filter(status=Step.Status.FAILED).order_by().values_list("error_code")
        for code, n in failed.annotate(n=Count("id")):
            errors.add_metric([code or "none"], n)
        yield errors
        yield GaugeMetricFamily(
            "portal_drift_items_open",
            "Drift items open (found, not remediated or accepted)",
            value=DriftItem.objects.filter(status=DriftItem.Status.OPEN).count(),
        )
        yield GaugeMetricFamily(
            "portal_notifications_waiting",
            "Notifications not sent yet (due now or retrying)",
            value=Notification.objects.filter(status=Notification.Status.PENDING).count(),
        )

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("portal_queue_jobs", "Jobs waiting in an RQ queue", labels=["queue"])
        age = GaugeMetricFamily(
            "portal_queue_oldest_job_age_seconds",
            "Age of the oldest job waiting in an RQ queue",
            labels=["queue"],
        )
        for name in QUEUES:
            try:
                queue = Queue(name, connection=_redis())
                depth.add_metric([name], queue.count)
                oldest = queue.get_job_ids(0, 0)
                job = Job.fetch(oldest[0], connection=queue.connection) if oldest else None
            except RedisError as exc:
                logger.warning("metrics: Redis does not answer: %s", type(exc).__name__)
                continue
            except Exception:  # a job gone between the two reads: no age this time
                job = None
            enqueued = job.enqueued_at if job is not None else None
            seconds = (datetime.now(UTC) - enqueued.replace(tzinfo=UTC)).total_seconds() if enqueued else 0.0
            age.add_metric([name], max(0.0, seconds))
        yield depth
        yield age
        try:
            waited = float(_redis().get(RATE_LIMIT_WAIT_KEY) or 0)
        except (RedisError, ValueError):
            return
        yield CounterMetricFamily(
            "portal_rate_limit_wait_seconds",
            "Time the workers waited for the subscriptions' ARM read and write budgets (every process, in Redis)",
            value=waited,
        )


def _redis() -> redis.Redis:
    from portal.health import _redis_connection

    return _redis_connection()


def _authorized(request: HttpRequest) -> bool:
    token = settings.METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics(request: HttpRequest) -> HttpResponse:
    """The scrape: 401 without the token (404 when no token is set: metrics are off)."""
    if not settings.METRICS_TOKEN:
        return HttpResponse("metrics are off: set METRICS_TOKEN\n", status=404, content_type="text/plain")
    if not _authorized(request):
        response = HttpResponse("a bearer token is required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_SECONDS)
    registry.register(PortalCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class RequestMetrics:
    """Times every request by its view's name (a bounded set of labels: unknown paths are "unmatched")."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        view = (match.view_name if match is not None else "") or "unmatched"
        method = (
            request.method if request.method in ("GET", "POST", "PATCH", "PUT", "DELETE", "HEAD") else "other"
        )
        REQUEST_SECONDS.labels(view=view, method=method).observe(time.perf_counter() - started)
        return response
