"""Helpers shared by the portal's management commands (not a command: Django skips ``_`` modules)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError
from django.db.models import F

from accounts.models import User
from provisioning.audit import audit_via
from provisioning.models import AuditEvent, ChangeRequest, Workspace
from provisioning.workflow.services import RequestError


def from_command_line(handle: Callable[..., Any]) -> Callable[..., Any]:
    """A command's ``handle`` whose audit events say they came from the command line (``via="cli"``),
    in the name of the person the command names (``--approver``, ``--requester``, ``--admin``)."""

    @functools.wraps(handle)
    def handled(*args: Any, **options: Any) -> Any:
        with audit_via(AuditEvent.Via.CLI):
            return handle(*args, **options)

    return handled


def user_by_name(name: str, *, role: str) -> User:
    """The user whose UPN (any case) or username is ``name``; ``role`` says who they are for the message."""
    user = User.objects.filter(upn__iexact=name.strip()).first()
    user = user or User.objects.filter(username=name.strip()).first()
    if user is None:
        raise CommandError(f"no {role} with the UPN or username '{name}'")
    return user


def change_request(request_id: int) -> ChangeRequest:
    """The request with this id, or a CommandError saying there is none."""
    try:
        return ChangeRequest.objects.select_related("requester", "approver", "workspace").get(pk=request_id)
    except ChangeRequest.DoesNotExist as exc:
        raise CommandError(f"request #{request_id} does not exist") from exc


def request_error(exc: RequestError) -> CommandError:
    """A service's refusal as a CommandError, listing each problem by field."""
    lines = [exc.message, *(f"  - {p.field}: {p.message}" for p in exc.problems)]
    return CommandError("\n".join(lines))


def workspace_by_name(name: str) -> Workspace:
    """The workspace with this name (any case), or a CommandError saying there is none."""
    named = Workspace.objects.filter(workspace_name__iexact=name.strip())
    # A decommissioned workspace gives its name back: the live one of that name comes first.
    workspace = named.order_by(F("decommissioned_at").asc(nulls_first=True), "-pk").first()
    if workspace is None:
        raise CommandError(f"no workspace named '{name}'")
    return workspace
