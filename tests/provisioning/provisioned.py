"""A workspace provisioned end to end on the local Azure stand-in (for the reconcile and drift tests)."""

from __future__ import annotations

from typing import Any

from provisioning.engine import executor as engine
from provisioning.models import ChangeRequest, Run, Workspace
from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory


def _directory(standin: Any) -> None:
    """The tutorial's members and group in the stand-in's directory (once: lookups must find one)."""
    known = {(p.kind, p.upn or p.display_name) for p in standin.state.principals.values()}
    for member in TUTORIAL_MEMBERS:
        if ("user", member.principal) not in known:
            standin.add_user(member.principal)
    if ("group", "datasciencegroup") not in known:
        standin.add_group("datasciencegroup")


def provisioned(standin: Any, azure_clients: Any, alice: Any, bob: Any, **fields: Any) -> Workspace:
    """The tutorial's request (or another, by ``spec``), approved by bob and provisioned on the stand-in."""
    _directory(standin)
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True, **fields)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    return Workspace.objects.get(pk=ChangeRequest.objects.get(pk=cr.pk).workspace_id)
