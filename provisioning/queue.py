"""Hand-off to the RQ workers. Called only from ``transaction.on_commit``.

Redis may be down or may lose jobs; the database stays the source of truth, so a failed enqueue
is logged and the request keeps ``enqueued_at`` empty: the sweeper of the provisioning engine
finds approved work that no worker holds and enqueues it again.
"""

from __future__ import annotations

import logging

import django_rq
from django.utils import timezone
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

QUEUE_NAME = "provisioning"
JOB_FUNCTION = "provisioning.jobs.provision_request"


def provisioning_job_id(request_id: int) -> str:
    """One job id per request, so a duplicate enqueue replaces rather than doubles the work."""
    return f"provision-request-{request_id}"


def provisioning_enqueue(*, request_id: int) -> bool:
    """Queue the provisioning of an approved request; False (and a log line) when Redis is unreachable."""
    from provisioning.models import ChangeRequest

    try:
        django_rq.get_queue(QUEUE_NAME).enqueue(
            JOB_FUNCTION, request_id, job_id=provisioning_job_id(request_id),
            description=f"provision request #{request_id}",
        )
    except RedisError as exc:
        logger.warning("could not enqueue request #%s (%s); it stays approved and will be picked up later",
                       request_id, exc.__class__.__name__)
        return False
    ChangeRequest.objects.filter(pk=request_id).update(enqueued_at=timezone.now())
    return True
