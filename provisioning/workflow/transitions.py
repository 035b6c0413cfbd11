"""The one door for status changes: requests along their status machine, desired-state rows along
their lifecycle. Each change is checked against the model's transition table, saved, and audited in
the caller's transaction; a request's change also writes its notifications there (``notifications``). Nothing else assigns ``ChangeRequest.status`` or ``state`` on a workspace,
cluster or membership (a test reads the source to keep it so).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.db.models import QuerySet

from provisioning.audit import audit_record
from provisioning.models import ChangeRequest, Cluster, Membership, Workspace
from provisioning.problems import Problem
from provisioning.workflow import notifications


class RequestError(Exception):
    """A request cannot do what was asked; ``problems`` says why, field by field when it can."""

    def __init__(self, message: str, problems: Sequence[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)


class TransitionError(RequestError):
    """The status machine (or a resource's lifecycle) does not allow this change from where it is."""


def _summary(cr: ChangeRequest) -> dict[str, Any]:
    return {"status": cr.status, "kind": cr.kind, "workspace_name": cr.workspace_name}


def request_made(*, actor: Any, message: str = "", **fields: Any) -> ChangeRequest:
    """A new request (a draft) saved with ``fields`` and audited as ``request.created`` (caller holds the
    transaction): every kind of request is born through here."""
    cr = ChangeRequest.objects.create(**fields)
    audit_record(
        actor=actor,
        action="request.created",
        obj=cr,
        object_type="change_request",
        request_id=cr.pk,
        workspace_name=cr.workspace_name,
        after=cr.spec,
        message=message,
    )
    return cr


def request_locked(request_id: int) -> ChangeRequest:
    """The request, row-locked until the caller's transaction ends (the one way to change its status)."""
    try:
        return ChangeRequest.objects.select_for_update().get(pk=request_id)
    except ChangeRequest.DoesNotExist as exc:
        raise RequestError(f"request #{request_id} does not exist") from exc


def request_transition(
    cr: ChangeRequest, target: str, *, actor: Any, message: str = "", **fields: Any
) -> None:
    """Move a locked request to ``target``, save it and audit the change (caller holds the transaction)."""
    if not cr.can_transition(target):
        raise TransitionError(
            f"request #{cr.pk} is {cr.get_status_display().lower()}; it cannot become {target}"
        )
    before = _summary(cr)
    cr.status = target
    for name, value in fields.items():
        setattr(cr, name, value)
    cr.save()
    event = audit_record(
        actor=actor,
        action=f"request.{target}",
        obj=cr,
        object_type="change_request",
        request_id=cr.pk,
        workspace_name=cr.workspace_name,
        before=before,
        after=_summary(cr),
        message=message,
    )
    notifications.request_status_notify(cr, before["status"], event, actor=actor)


Resource = Workspace | Cluster | Membership


def _label(row: Resource) -> str:
    if isinstance(row, Workspace):
        return row.workspace_name
    if isinstance(row, Cluster):
        return row.name
    return row.principal_name


def resource_transition(
    rows: QuerySet[Any],
    target: str,
    *,
    actor: Any,
    request_id: int | None = None,
    message: str = "",
    fields: Callable[[Any], dict[str, Any]] | None = None,
) -> int:
    """Move every row of ``rows`` (workspaces, clusters or memberships) to ``target``; returns how many moved.

    Rows are locked, checked against the lifecycle, saved one by one with ``fields(row)`` (extra
    values such as the Azure id) and audited, one event each. A row already in ``target`` is left as
    it is, so a duplicate delivery of the same work changes nothing; a row that cannot become
    ``target`` raises ``TransitionError`` and the caller's transaction rolls back.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("resource_transition must run inside the transaction of the change")
    if rows.model is not Workspace:
        rows = rows.select_related("workspace")
    moved = 0
    for row in rows.select_for_update(of=("self",)).order_by("pk"):
        if row.state == target:
            continue
        if not row.can_become(target):
            raise TransitionError(
                f"{row._meta.verbose_name} {_label(row)} is {row.state}; it cannot become {target}"
            )
        before = row.state
        row.state = target
        extra = fields(row) if fields is not None else {}
        for name, value in extra.items():
            setattr(row, name, value)
        row.save(update_fields=["state", *extra])
        workspace = row if isinstance(row, Workspace) else row.workspace
        audit_record(
            actor=actor,
            action=f"{row._meta.model_name}.{target}",
            obj=row,
            request_id=request_id,
            workspace_name=workspace.workspace_name,
            before={"state": before},
            after={"state": target, "name": _label(row), **extra},
            message=message,
        )
        moved += 1
    return moved
