"""The Azure side of quota increase requests: file an approved one, follow it until Azure decides.

Filing claims the row (a lease) and never files a request that already has Azure's id; Azure is called
with no transaction open. Polls are scheduled in the database (``next_poll_at``, backing off from 30 s to
an hour): the scheduler's sweep queues the due ones, so a restart loses nothing. When Azure grants the
quota, the region's usages are refreshed at once, so a waiting change request passes its capacity check.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import Any

from provisioning import queue
from provisioning.azure import quota_api
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError
from provisioning.engine.capacity_sync import usage_refresh
from provisioning.models import QuotaIncreaseRequest
from provisioning.workflow import quota_requests as workflow

logger = logging.getLogger(__name__)
Status = QuotaIncreaseRequest.Status


def _worker() -> str:
    return f"worker {socket.gethostname()}:{os.getpid()}"


def quota_request_file(*, quota_request_id: int, clients: AzureClients | None = None) -> str:
    """File an approved quota request with Azure (once), then poll it once. Returns its status."""
    worker = _worker()
    qr = workflow.quota_request_claim(quota_request_id=quota_request_id, worker=worker)
    if qr is None:
        return QuotaIncreaseRequest.objects.get(pk=quota_request_id).status
    with AzureClients.given_or_own(clients) as azure:
        try:
            request_id = quota_api.quota_request_file(
                azure,
                subscription=qr.subscription_id,
                location=qr.region,
                name=qr.family,
                limit=qr.requested_limit,
            )
        except AzureStepError as exc:
            logger.warning("quota request #%s not filed: %s", qr.pk, exc)
            workflow.quota_request_filing_failed(
                quota_request_id=qr.pk,
                worker=worker,
                message=f"{exc.code}: {exc.message}",
                transient=exc.transient,
            )
            return QuotaIncreaseRequest.objects.get(pk=qr.pk).status
        workflow.quota_request_filed(quota_request_id=qr.pk, azure_request_id=request_id, worker=worker)
        return quota_request_poll(quota_request_id=qr.pk, clients=azure)


def quota_request_poll(*, quota_request_id: int, clients: AzureClients | None = None) -> str:
    """Ask Azure where a filed quota request is; record its decision, or when to ask again."""
    qr = QuotaIncreaseRequest.objects.get(pk=quota_request_id)
    if qr.status != Status.IN_PROGRESS or not qr.azure_request_id:
        return qr.status
    with AzureClients.given_or_own(clients) as azure:
        try:
            answer = quota_api.quota_request_read(
                azure, subscription=qr.subscription_id, location=qr.region, request_id=qr.azure_request_id
            )
        except AzureStepError as exc:  # Azure unreachable or throttling: ask again on the schedule
            logger.warning("quota request #%s not read: %s", qr.pk, exc)
            workflow.quota_request_still_running(quota_request_id=qr.pk, azure_status=qr.azure_status)
            return qr.status
        if not answer.done:
            workflow.quota_request_still_running(quota_request_id=qr.pk, azure_status=answer.state)
            return qr.status
        granted = _granted_limit(azure, qr, answer) if answer.state == quota_api.SUCCEEDED else None
        decided = workflow.quota_request_decided(
            quota_request_id=qr.pk,
            azure_status=answer.state,
            message=answer.message,
            granted_limit=granted,
            worker=_worker(),
        )
        if decided is not None and decided.is_granted:
            _refresh_usages(azure, decided)
        return QuotaIncreaseRequest.objects.get(pk=qr.pk).status


def _granted_limit(
    azure: AzureClients, qr: QuotaIncreaseRequest, answer: quota_api.QuotaRequestState
) -> int | None:
    """The limit Azure holds now (a partial grant shows here), else what its answer says."""
    try:
        return quota_api.quota_limit_read(
            azure, subscription=qr.subscription_id, location=qr.region, name=qr.family
        ).limit
    except AzureStepError:
        return answer.limit


def _refresh_usages(azure: AzureClients, qr: QuotaIncreaseRequest) -> None:
    try:
        usage_refresh(azure, qr.subscription_id, qr.region)
    except AzureStepError as exc:  # the hourly capacity refresh will catch up
        logger.warning("usages of %s not refreshed after quota request #%s: %s", qr.region, qr.pk, exc)


def quota_requests_sweep() -> dict[str, Any]:
    """Queue the filing of approved quota requests nobody files and the polls that are due."""
    to_file, to_poll = workflow.quota_requests_due()
    for pk in to_file:
        workflow.quota_request_enqueue_file(quota_request_id=pk)
    for pk in to_poll:
        queue.job_enqueue(
            workflow.POLL_JOB, pk, job_id=f"quota-request-{pk}-poll", description=f"poll quota request #{pk}"
        )
    return {"file": to_file, "poll": to_poll}
