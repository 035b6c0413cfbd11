"""Global name availability, checked by a worker before an admin approves a new workspace.

Storage accounts, key vaults and registries need names unique across all of Azure. The web never
calls Azure, so submitting a request queues this check; its answer is stored on the request, shown
on its page, and a taken name blocks the approval.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from provisioning import queue
from provisioning.models import ChangeRequest
from provisioning.problems import Problem
from provisioning.spec import RequestSpec

logger = logging.getLogger(__name__)

JOB_FUNCTION = "provisioning.jobs.check_names"


def names_to_check(cr: ChangeRequest) -> list[tuple[str, str]]:
    """(kind, name) of every globally unique name a new-workspace request would create."""
    spec = RequestSpec.from_json(cr.spec)
    if cr.kind != ChangeRequest.Kind.NEW_WORKSPACE or spec.workspace is None:
        return []
    names = spec.workspace.names()
    found = [("storage", names.storage_work), ("storage", names.storage_data)]
    if names.data_lake:
        found.append(("storage", names.data_lake))
    return [*found, ("key_vault", names.key_vault), ("registry", names.registry)]


def name_check_enqueue(*, request_id: int) -> bool:
    """Queue the check (after the submit commits); the sweeper retries if Redis is down."""
    return queue.run_enqueue(
        request_id=request_id,
        job_id=f"check-names-{request_id}",
        func=JOB_FUNCTION,
        description=f"check the names of request #{request_id} with Azure",
    )


def name_check_record(*, request_id: int, answers: list[dict[str, Any]]) -> bool:
    """Store Azure's answers on a request still waiting for approval; False when it was decided meanwhile."""
    with transaction.atomic():
        stored = ChangeRequest.objects.filter(pk=request_id, status=ChangeRequest.Status.SUBMITTED).update(
            name_check=answers, name_checked_at=timezone.now()
        )
    taken = [a["name"] for a in answers if not a["available"]]
    if stored and taken:
        logger.info("request #%s: names taken in Azure: %s", request_id, ", ".join(taken))
    return bool(stored)


def taken_name_problems(cr: ChangeRequest) -> list[Problem]:
    """Why the approval must wait: names Azure says are taken elsewhere."""
    field = (
        "workspace.custom_name" if (cr.spec.get("workspace") or {}).get("custom_name") else "workspace.team"
    )
    return [
        Problem(field, _held_by_deleted_vault(c))
        if c.get("soft_deleted")
        else Problem(
            field,
            f"{c['kind'].replace('_', ' ')} name '{c['name']}' is taken elsewhere in Azure "
            f"({c.get('reason') or 'not available'}): reject the request and ask for another team or custom name",
        )
        for c in cr.names_taken
    ]


def _held_by_deleted_vault(c: dict[str, Any]) -> str:
    """A key vault name held by a soft-deleted vault: until when, and what may free it sooner."""
    sooner = (
        "purge protection is on, so nobody can free it sooner"
        if c.get("purge_protection")
        else "an admin may purge the deleted vault to free it sooner"
    )
    return (
        f"key vault name '{c['name']}' is held by a soft-deleted key vault until {c.get('frees_on') or 'its purge'} "
        f"({sooner}): reject the request and ask for another team or custom name, or wait"
    )
