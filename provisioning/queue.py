"""Hand-off to the RQ workers. Called only from ``transaction.on_commit`` and from the sweeper.

Redis may be down or may lose jobs; the database stays the source of truth, so a failed enqueue is
logged and the request keeps ``enqueued_at`` empty: the sweeper (``provisioning.engine.runs.runs_sweep``)
finds approved work that no worker holds and enqueues it again.
"""

from __future__ import annotations

import logging
from typing import Any

import django_rq
from django.utils import timezone
from redis.exceptions import RedisError
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

logger = logging.getLogger(__name__)

QUEUE_NAME = "provisioning"
JOB_FUNCTION = "provisioning.jobs.provision_request"
LIVE_STATUSES = frozenset({JobStatus.QUEUED, JobStatus.STARTED, JobStatus.DEFERRED, JobStatus.SCHEDULED})


def provisioning_job_id(request_id: int) -> str:
    """The job of an approved request's first run (the same id every time, so duplicates replace)."""
    return f"provision-request-{request_id}-run-1"


def job_enqueue(
    func: str,
    *args: Any,
    job_id: str,
    description: str,
    result_ttl: int = 24 * 3600,
    failure_ttl: int = 7 * 24 * 3600,
    when_down: str = "the sweeper will enqueue it later",
) -> bool:
    """Queue ``func`` (a dotted path under ``provisioning.jobs``) with plain arguments under ``job_id``;
    False, and a log line ending with ``when_down`` (what happens next), when Redis is unreachable."""
    try:
        django_rq.get_queue(QUEUE_NAME).enqueue(
            func,
            *args,
            job_id=job_id,
            description=description,
            result_ttl=result_ttl,
            failure_ttl=failure_ttl,
        )
    except RedisError as exc:
        logger.warning("could not enqueue %s (%s); %s", description, exc.__class__.__name__, when_down)
        return False
    return True


def run_enqueue(*, request_id: int, job_id: str, func: str = JOB_FUNCTION, description: str = "") -> bool:
    """Queue a job for a request under ``job_id``; False (and a log line) when Redis is unreachable."""
    return job_enqueue(
        func, request_id, job_id=job_id, description=description or f"provision request #{request_id}"
    )


def provisioning_enqueue(*, request_id: int) -> bool:
    """Queue the provisioning of an approved request and note when it was queued."""
    from provisioning.models import ChangeRequest

    if not run_enqueue(request_id=request_id, job_id=provisioning_job_id(request_id)):
        return False
    ChangeRequest.objects.filter(pk=request_id).update(enqueued_at=timezone.now())
    return True


def job_pending(job_id: str) -> bool:
    """Whether Redis holds this job waiting or running (False when Redis is unreachable or lost it)."""
    try:
        queue = django_rq.get_queue(QUEUE_NAME)
        job = Job.fetch(job_id, connection=queue.connection, serializer=queue.serializer)
        return job.get_status(refresh=False) in LIVE_STATUSES
    except (NoSuchJobError, RedisError):
        return False
