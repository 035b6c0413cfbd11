"""The request status machine: every edge it lacks is refused, and random use never leaves it.

The first half walks every (from, to) pair that ``ChangeRequest.TRANSITIONS`` does not allow and
calls the service that would make that move. The second half is a hypothesis state machine: random
team leads, admins and data scientists create, edit, submit, cancel, approve and reject requests,
and after every step the database and the audit trail must still tell a consistent story.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pytest
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from accounts import personas
from accounts.models import User
from provisioning.audit import audit_verify_chain
from provisioning.engine import runs
from provisioning.models import AuditEvent, ChangeRequest, Cluster, Membership, Run, Step, Workspace
from provisioning.workflow import recovery, services
from provisioning.workflow.services import RequestError, TransitionError
from tests import factories
from tests.factories import tutorial_spec

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status
NEW = ChangeRequest.Kind.NEW_WORKSPACE
ALLOWED = {(a, b) for a, targets in ChangeRequest.TRANSITIONS.items() for b in targets}


def last_event_id() -> int:
    return AuditEvent.objects.aggregate(m=Max("id"))["m"] or 0


# --- every missing edge is refused -----------------------------------------------------------------------


def _drive(status: str, alice: User, bob: User) -> ChangeRequest:
    """A request of alice's in ``status``, reached through the services (the engine's without Azure)."""
    # A failed request failed once its workspace existed, so that it may be kept as well as rolled back.
    failed_step = "role_grant" if status == Status.FAILED else None
    return factories.ChangeRequestFactory(
        requester=alice, approver=bob, kind=NEW, status=status, failed_step=failed_step
    )


def _finish_run(cr: ChangeRequest, *, failed: bool, rollback: bool | None = None) -> None:
    """A run of the request ends: a rollback run if ``rollback``, else the kind a request in its status runs."""
    rollback = cr.status == Status.ROLLING_BACK if rollback is None else rollback
    purpose = Run.Purpose.ROLLBACK if rollback else Run.Purpose.PROVISION
    run = factories.RunFactory(
        change_request=cr, status=Run.Status.RUNNING, lease_owner="test-worker", purpose=purpose
    )
    factories.StepFactory(
        run=run,
        key="resource_group",
        kind="resource_group",
        target="resource group",
        status=Step.Status.FAILED if failed else Step.Status.SUCCEEDED,
    )
    runs.run_finish(run_id=run.pk, worker="test-worker")


# The service that moves a request to each status. Nothing moves a request back to draft.
MOVES: dict[str, Callable[[ChangeRequest, User, User], Any]] = {
    Status.SUBMITTED: lambda cr, alice, bob: services.request_submit(request_id=cr.pk, actor=alice),
    Status.CANCELLED: lambda cr, alice, bob: services.request_cancel(request_id=cr.pk, actor=alice),
    Status.APPROVED: lambda cr, alice, bob: services.request_approve(request_id=cr.pk, approver=bob),
    Status.REJECTED: lambda cr, alice, bob: services.request_reject(
        request_id=cr.pk, approver=bob, reason="no"
    ),
    Status.PROVISIONING: lambda cr, alice, bob: services.request_retry(request_id=cr.pk, actor=bob),
    Status.SUCCEEDED: lambda cr, alice, bob: _finish_run(cr, failed=False, rollback=False),
    Status.FAILED: lambda cr, alice, bob: _finish_run(cr, failed=True),
    Status.ABANDONED: lambda cr, alice, bob: recovery.request_keep(
        request_id=cr.pk, actor=bob, reason="keep"
    ),
    Status.ROLLING_BACK: lambda cr, alice, bob: recovery.request_rollback(
        request_id=cr.pk, actor=bob, reason="give up"
    ),
    Status.ROLLED_BACK: lambda cr, alice, bob: _finish_run(cr, failed=False, rollback=True),
}
# Edges made by another service than the target's usual one: a failed request amended so that it widens
# access goes back to an approver.
EDGE_MOVES: dict[tuple[str, str], Callable[[ChangeRequest, User, User], Any]] = {
    (Status.FAILED, Status.SUBMITTED): lambda cr, alice, bob: recovery.request_amend(
        request_id=cr.pk,
        actor=alice,
        amendment=recovery.Amendment(
            reason="user3 left", replace_members=(("user3@contoso.com", "user9@contoso.com"),)
        ),
    ),
}
ILLEGAL = sorted((a, b) for a in Status.values for b in MOVES if (a, b) not in ALLOWED)
LEGAL = sorted((a, b) for a, b in ALLOWED if b in MOVES and (a, b) != (Status.APPROVED, Status.PROVISIONING))


def test_every_status_and_transition_is_covered():
    assert set(ChangeRequest.TRANSITIONS) == set(Status.values)
    assert all(targets <= set(Status.values) for targets in ChangeRequest.TRANSITIONS.values())
    assert Status.DRAFT not in {b for _, b in ALLOWED}  # so no service is needed to reach draft
    assert len(ILLEGAL) + len(LEGAL) + 1 == len(Status.values) * len(MOVES)


@pytest.mark.parametrize(("source", "target"), ILLEGAL)
def test_an_illegal_transition_is_refused(policy, alice, bob, source: str, target: str):
    cr = _drive(source, alice, bob)
    before = ChangeRequest.objects.get(pk=cr.pk)
    events = last_event_id()
    with pytest.raises((TransitionError, PermissionDenied)):
        MOVES[target](before, alice, bob)
    after = ChangeRequest.objects.get(pk=cr.pk)
    assert after.status == source
    assert after.updated_at == before.updated_at
    assert last_event_id() == events


@pytest.mark.parametrize(("source", "target"), LEGAL)
def test_a_legal_transition_is_made_and_audited(policy, alice, bob, source: str, target: str):
    """The other side of the harness above: the same calls do move a request along an allowed edge."""
    cr = _drive(source, alice, bob)
    events = last_event_id()
    EDGE_MOVES.get((source, target), MOVES[target])(cr, alice, bob)
    assert ChangeRequest.objects.get(pk=cr.pk).status == target
    event = AuditEvent.objects.filter(id__gt=events, action=f"request.{target}").get()
    assert (event.before["status"], event.after["status"]) == (source, target)


def test_nobody_approves_their_own_request(policy):
    erin = factories.UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    cr = services.request_create(requester=erin, kind=NEW, spec=tutorial_spec())
    services.request_submit(request_id=cr.pk, actor=erin)
    events = last_event_id()
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=cr.pk, approver=erin)
    cr.refresh_from_db()
    assert (cr.status, cr.approver, last_event_id()) == (Status.SUBMITTED, None, events)
    assert not cr.can_approve(erin)


# --- random use never leaves the machine --------------------------------------------------------------------

USERNAMES = ("alice", "charlie", "erin", "bob", "frank", "dana")
# Anyone may try anything, but the right person is drawn often enough for requests to move along.
CREATORS = st.sampled_from(("alice", "charlie", "erin", "alice", "charlie", "bob", "dana"))
OWNERS = st.sampled_from(("requester", "requester", "requester", *USERNAMES))
DECIDERS = st.sampled_from(("bob", "frank", "bob", "frank", *USERNAMES))
# Two teams share names on purpose (so uniqueness checks fire); the last is too long for the convention.
TEAMS = st.sampled_from(("bluegranit", "bluegranit", "redgranit", "bluegranite-too-long"))
REASONS = st.sampled_from(("", "   ", "over budget"))


class RequestWorkflow(RuleBasedStateMachine):
    """Random service calls by random people; each outcome and the resulting state are checked."""

    users: ClassVar[dict[str, User]] = {}
    requests = Bundle("requests")

    def __init__(self) -> None:
        super().__init__()
        # A fresh portal for each example. Audit events cannot be deleted (PostgreSQL refuses):
        # the checks below look only at events written by this example.
        Step.objects.all().delete()
        Run.objects.all().delete()
        Membership.objects.all().delete()
        Cluster.objects.all().delete()
        ChangeRequest.objects.all().delete()
        Workspace.objects.all().delete()
        self.first_event_id = last_event_id()

    # -- helpers --

    def _attempt(self, request_id: int, call: Callable[[], Any]) -> Exception | None:
        """Run one service call; a refused call must leave the request and the audit untouched."""
        before = ChangeRequest.objects.get(pk=request_id)
        events = last_event_id()
        try:
            call()
        except (RequestError, PermissionDenied) as exc:
            after = ChangeRequest.objects.get(pk=request_id)
            assert (after.status, after.updated_at, after.spec) == (
                before.status,
                before.updated_at,
                before.spec,
            )
            assert last_event_id() == events
            return exc
        new_events = AuditEvent.objects.filter(id__gt=events)
        assert new_events.count() == 1
        assert new_events.get().request_id == request_id
        return None

    def _status(self, request_id: int) -> str:
        return ChangeRequest.objects.get(pk=request_id).status

    def _requester(self, request_id: int) -> User:
        return ChangeRequest.objects.get(pk=request_id).requester

    def _user(self, who: str, request_id: int) -> User:
        return self._requester(request_id) if who == "requester" else self.users[who]

    def _may_decide(self, user: User, request_id: int) -> bool:
        return personas.is_admin(user) and user.pk != self._requester(request_id).pk

    # -- rules --

    @initialize(target=requests, team=TEAMS)
    def first_request(self, team: str) -> int:
        return services.request_create(
            requester=self.users["alice"], kind=NEW, spec=tutorial_spec(team=team), lead_joins=False
        ).pk

    @rule(target=requests, who=st.sampled_from(("alice", "charlie", "erin")), team=TEAMS)
    def create_and_submit(self, who: str, team: str) -> int:
        """A shortcut to the interesting states: most requests are submitted right away."""
        request_id = self.create(who, team)
        self.submit(request_id, "requester")
        return request_id

    @rule(target=requests, who=CREATORS, team=TEAMS)
    def create(self, who: str, team: str) -> Any:
        user = self.users[who]
        try:
            cr = services.request_create(
                requester=user, kind=NEW, spec=tutorial_spec(team=team), lead_joins=False
            )
        except PermissionDenied:
            assert not personas.is_team_lead(user)
            return multiple()
        assert personas.is_team_lead(user)
        assert cr.status == Status.DRAFT
        return cr.pk

    @rule(request_id=requests, who=OWNERS, team=TEAMS)
    def update(self, request_id: int, who: str, team: str) -> None:
        user = self._user(who, request_id)
        status = self._status(request_id)
        is_requester = user.pk == self._requester(request_id).pk
        spec = tutorial_spec(team=team)
        exc = self._attempt(
            request_id, lambda: services.request_update(request_id=request_id, actor=user, spec=spec)
        )
        if not is_requester:
            assert isinstance(exc, PermissionDenied)
        elif status != Status.DRAFT:
            assert isinstance(exc, TransitionError)
        else:
            assert exc is None
            assert ChangeRequest.objects.get(pk=request_id).spec == spec.to_json()

    @rule(request_id=requests, who=OWNERS)
    def submit(self, request_id: int, who: str) -> None:
        user = self._user(who, request_id)
        status = self._status(request_id)
        is_requester = user.pk == self._requester(request_id).pk
        exc = self._attempt(request_id, lambda: services.request_submit(request_id=request_id, actor=user))
        if not is_requester:
            assert isinstance(exc, PermissionDenied)
        elif status != Status.DRAFT:
            assert isinstance(exc, TransitionError)
        elif exc is not None:
            # Refused for what it asks (a too-long team, names another request holds), never silently.
            assert isinstance(exc, RequestError)
            assert not isinstance(exc, TransitionError)
            assert exc.problems
            assert all(p.field.startswith("workspace.") for p in exc.problems)
        else:
            assert self._status(request_id) == Status.SUBMITTED

    @rule(request_id=requests, who=OWNERS)
    def cancel(self, request_id: int, who: str) -> None:
        user = self._user(who, request_id)
        status = self._status(request_id)
        is_requester = user.pk == self._requester(request_id).pk
        exc = self._attempt(request_id, lambda: services.request_cancel(request_id=request_id, actor=user))
        if not is_requester:
            assert isinstance(exc, PermissionDenied)
        elif status not in (Status.DRAFT, Status.SUBMITTED):
            assert isinstance(exc, TransitionError)
        else:
            assert exc is None
            assert self._status(request_id) == Status.CANCELLED

    @rule(request_id=requests, who=DECIDERS)
    def approve(self, request_id: int, who: str) -> None:
        user = self.users[who]
        status = self._status(request_id)
        may_decide = self._may_decide(user, request_id)
        exc = self._attempt(
            request_id, lambda: services.request_approve(request_id=request_id, approver=user)
        )
        if not may_decide:
            assert isinstance(exc, PermissionDenied)
        elif status != Status.SUBMITTED:
            assert isinstance(exc, TransitionError)
        else:
            # What passed submit still passes: submit already refused names another request holds.
            assert exc is None
            cr = ChangeRequest.objects.get(pk=request_id)
            assert (cr.status, cr.approver) == (Status.APPROVED, user)

    @rule(request_id=requests)
    def approve_by_the_requester(self, request_id: int) -> None:
        requester = self._requester(request_id)
        exc = self._attempt(
            request_id, lambda: services.request_approve(request_id=request_id, approver=requester)
        )
        assert isinstance(exc, PermissionDenied)

    @rule(request_id=requests)
    def approve_twice(self, request_id: int) -> None:
        bob, frank = self.users["bob"], self.users["frank"]
        first = self._attempt(
            request_id, lambda: services.request_approve(request_id=request_id, approver=bob)
        )
        second = self._attempt(
            request_id, lambda: services.request_approve(request_id=request_id, approver=frank)
        )
        # bob and frank are never requesters: only the status can refuse them, and never both to approve.
        assert isinstance(second, TransitionError)
        if first is None:
            assert ChangeRequest.objects.get(pk=request_id).approver == bob

    @rule(request_id=requests, who=DECIDERS, reason=REASONS)
    def reject(self, request_id: int, who: str, reason: str) -> None:
        user = self.users[who]
        status = self._status(request_id)
        may_decide = self._may_decide(user, request_id)
        exc = self._attempt(
            request_id, lambda: services.request_reject(request_id=request_id, approver=user, reason=reason)
        )
        if not reason.strip():
            assert isinstance(exc, RequestError)
            assert [p.field for p in exc.problems] == ["reason"]
        elif not may_decide:
            assert isinstance(exc, PermissionDenied)
        elif status != Status.SUBMITTED:
            assert isinstance(exc, TransitionError)
        else:
            assert exc is None
            cr = ChangeRequest.objects.get(pk=request_id)
            assert (cr.status, cr.reason, cr.approver) == (Status.REJECTED, reason, user)

    # -- invariants --

    @invariant()
    def every_status_is_valid(self) -> None:
        assert set(ChangeRequest.objects.values_list("status", flat=True)) <= set(Status.values)

    @invariant()
    def every_status_change_followed_an_allowed_edge(self) -> None:
        for event in AuditEvent.objects.filter(id__gt=self.first_event_id, action__startswith="request."):
            if event.action in ("request.created", "request.edited"):
                continue  # content changes, not status changes
            edge = (event.before["status"], event.after["status"])
            assert edge in ALLOWED, (event.pk, edge)
            assert event.action == f"request.{event.after['status']}"

    @invariant()
    def the_audit_agrees_with_each_request(self) -> None:
        for cr in ChangeRequest.objects.all():
            last = AuditEvent.objects.filter(request_id=cr.pk, id__gt=self.first_event_id).latest("id")
            expected = (
                Status.DRAFT if last.action in ("request.created", "request.edited") else last.after["status"]
            )
            assert cr.status == expected

    @invariant()
    def nobody_decided_their_own_request(self) -> None:
        for cr in ChangeRequest.objects.exclude(approver=None):
            assert cr.approver_id != cr.requester_id
            assert personas.is_admin(cr.approver)

    @invariant()
    def approved_requests_have_a_plan_and_desired_state(self) -> None:
        decided = ChangeRequest.objects.filter(status=Status.APPROVED)
        for cr in decided:
            assert cr.plan is not None and cr.plan["role_assignments"]
            assert cr.workspace is not None and cr.workspace.workspace_name == cr.workspace_name
            assert Cluster.objects.filter(change_request=cr).count() == 3
            assert Membership.objects.filter(change_request=cr).count() == 5
        assert Workspace.objects.count() == decided.count()
        undecided = ChangeRequest.objects.exclude(status=Status.APPROVED)
        assert not undecided.exclude(plan=None).exists()
        assert not Cluster.objects.filter(change_request__in=undecided).exists()

    @invariant()
    def live_requests_hold_distinct_names(self) -> None:
        names = list(
            ChangeRequest.objects.filter(status__in=ChangeRequest.PENDING_OR_LIVE).values_list(
                "workspace_name", flat=True
            )
        )
        assert len(names) == len(set(names))

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        checked, broken = audit_verify_chain()
        assert broken is None
        assert checked == AuditEvent.objects.count()


def test_random_use_keeps_the_status_machine(policy, alice, bob, charlie, dana):
    RequestWorkflow.users = {
        "alice": alice,
        "bob": bob,
        "charlie": charlie,
        "dana": dana,
        "erin": factories.UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD]),
        "frank": factories.admin("frank"),
    }
    run_state_machine_as_test(
        RequestWorkflow,
        settings=settings(
            max_examples=25,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
