"""Access removed by the portal itself (an expired membership, an access review's decision): a
``revoke_access`` request made, submitted and approved in one go, whose plan the engine runs like any
other (one step per role assignment removed, audited, idempotent, resumable, retried by an admin).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone

from provisioning import queue
from provisioning.models import ChangeRequest, Membership, ResourceState, Workspace
from provisioning.problems import text_problem
from provisioning.spec import RequestSpec
from provisioning.workflow.services import request_plan
from provisioning.workflow.transitions import (
    RequestError,
    request_made,
    request_transition,
    resource_transition,
)

MAX_MEMBERSHIPS = 200
MAX_REASON = 1000


def revocation_approved(
    *, workspace: Workspace, memberships: Iterable[Membership], actor: Any, requester: Any, reason: str
) -> ChangeRequest:
    """A ``revoke_access`` request for ``memberships`` of ``workspace``, made by ``requester``, submitted and
    approved by ``actor`` (a person or a system name) at once, its memberships revoking and its run queued
    after the commit. The caller decided that no person needs to approve it (the policy ended the access,
    or a reviewer already decided); it runs in the caller's transaction when there is one.
    """
    ids = sorted({m.pk for m in memberships})
    if not ids or len(ids) > MAX_MEMBERSHIPS:
        raise RequestError(f"a revocation names 1 to {MAX_MEMBERSHIPS} memberships")
    reason = (reason or "").strip()
    if (
        problem := text_problem("reason", reason, max_length=MAX_REASON, multiline=True)
    ) is not None or not reason:
        raise RequestError(problem.message if problem else "a revocation needs its reason")
    if workspace.state != ResourceState.ACTIVE or workspace.is_observed:
        raise RequestError(
            f"workspace {workspace.workspace_name} is not an active workspace the portal manages"
        )
    with transaction.atomic():
        rows = Membership.objects.filter(pk__in=ids, workspace=workspace, state=ResourceState.ACTIVE)
        found = set(rows.select_for_update().values_list("pk", flat=True))
        if found != set(ids):
            raise RequestError(
                f"membership {min(set(ids) - found)} is not an active member of {workspace.workspace_name}"
            )
        cr = request_made(
            actor=actor,
            message=reason,
            kind=ChangeRequest.Kind.REVOKE_ACCESS,
            requester=requester,
            workspace=workspace,
            workspace_name=workspace.workspace_name,
            spec=RequestSpec(revoke=tuple(ids)).to_json(),
        )
        now = timezone.now()
        request_transition(cr, ChangeRequest.Status.SUBMITTED, actor=actor, message=reason, submitted_at=now)
        plan = request_plan(cr)
        resource_transition(
            rows,
            ResourceState.REVOKING,
            actor=actor,
            request_id=cr.pk,
            message=f"revoked by request #{cr.pk}",
        )
        request_transition(
            cr,
            ChangeRequest.Status.APPROVED,
            actor=actor,
            message=f"approved with the revocation: {reason}",
            approver=None if isinstance(actor, str) else actor,
            decided_at=now,
            plan=plan,
        )
        transaction.on_commit(lambda: queue.provisioning_enqueue(request_id=cr.pk))
    return cr
