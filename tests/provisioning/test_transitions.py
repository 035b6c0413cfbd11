"""The one door for status changes: desired-state rows move along their lifecycle, audited, and
nothing else in the product assigns a request's status or a row's state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import transaction

from provisioning.models import RESOURCE_TRANSITIONS, AuditEvent, Membership, ResourceState, Workspace
from provisioning.workflow.transitions import TransitionError, resource_transition
from tests import factories

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2] / "provisioning"


def test_the_lifecycle_covers_every_state() -> None:
    assert set(RESOURCE_TRANSITIONS) == set(ResourceState.values)
    assert all(targets <= set(ResourceState.values) for targets in RESOURCE_TRANSITIONS.values())


def test_a_move_is_saved_and_audited_once_per_row(alice) -> None:
    ws = factories.WorkspaceFactory(state=ResourceState.PROVISIONING)
    with transaction.atomic():
        moved = resource_transition(
            Workspace.objects.filter(pk=ws.pk),
            ResourceState.ACTIVE,
            actor="worker",
            request_id=7,
            fields=lambda row: {"azure_id": "/subscriptions/x/ws"},
        )
    ws.refresh_from_db()
    assert (moved, ws.state, ws.azure_id) == (1, ResourceState.ACTIVE, "/subscriptions/x/ws")
    event = AuditEvent.objects.get(action="workspace.active")
    assert (event.before, event.after["state"], event.request_id) == ({"state": "provisioning"}, "active", 7)
    assert event.workspace_name == ws.workspace_name


def test_a_second_delivery_changes_nothing() -> None:
    ws = factories.WorkspaceFactory(state=ResourceState.ACTIVE)
    events = AuditEvent.objects.count()
    with transaction.atomic():
        moved = resource_transition(Workspace.objects.filter(pk=ws.pk), ResourceState.ACTIVE, actor="worker")
    assert moved == 0
    assert AuditEvent.objects.count() == events


def test_an_illegal_move_is_refused_and_nothing_is_kept() -> None:
    ws = factories.WorkspaceFactory(state=ResourceState.ACTIVE)
    keep = factories.MembershipFactory(workspace=ws, state=ResourceState.ACTIVE)
    revoked = factories.MembershipFactory(workspace=ws, state=ResourceState.REVOKED)
    with pytest.raises(TransitionError, match="revoked; it cannot become revoking"), transaction.atomic():
        resource_transition(
            Membership.objects.filter(pk__in=[keep.pk, revoked.pk]), ResourceState.REVOKING, actor="admin"
        )
    keep.refresh_from_db()
    assert keep.state == ResourceState.ACTIVE
    assert not AuditEvent.objects.filter(action="membership.revoking").exists()


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_run_outside_a_transaction() -> None:
    ws = factories.WorkspaceFactory(state=ResourceState.PENDING)
    with pytest.raises(RuntimeError, match="inside the transaction"):
        resource_transition(Workspace.objects.filter(pk=ws.pk), ResourceState.PROVISIONING, actor="worker")


# Assignments and bulk updates of a request's status or a desired-state row's state.
FORBIDDEN = [
    re.compile(r"\.update\((?:[^()]|\([^()]*\))*\bstate\s*="),
    re.compile(r"\b(?:ws|workspace|cluster|c|m|membership|row)\.state\s*=[^=]"),
    re.compile(r"\bcr\.status\s*=[^=]"),
    re.compile(r"ChangeRequest\.objects[^\n]*\.update\([^\n]*\bstatus\s*="),
]


def test_nothing_but_the_door_changes_statuses() -> None:
    offenders = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(("standin/", "migrations/")) or relative == "workflow/transitions.py":
            continue
        text = path.read_text()
        offenders += [f"{relative}: {p.pattern}" for p in FORBIDDEN if p.search(text)]
    assert offenders == []


def test_the_scan_would_see_a_bulk_update() -> None:
    assert FORBIDDEN[0].search("Cluster.objects.filter(pk=1).update(state=ResourceState.ACTIVE)")
    assert FORBIDDEN[2].search("    cr.status = target\n")
