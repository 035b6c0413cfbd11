"""End to end with real RQ workers (``manage.py rqworker`` subprocesses) against the Azure stand-in.

A worker dies with SIGKILL mid-run, Redis loses its jobs, Redis is down when an admin approves: in
each case the sweeper (``runs_sweep``, called here from the test as the scheduler would) finds the
work no live worker holds, and the request ends provisioned, each resource and grant exactly once.
Leases are shortened (8 s, heartbeat 2 s) so a dead worker's run is taken over quickly.
"""

from __future__ import annotations

import logging
import socket
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from provisioning.engine import runs
from provisioning.models import ChangeRequest, Run, Step
from provisioning.queue import provisioning_job_id
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import services
from tests.factories import TUTORIAL_MEMBERS, ChangeRequestFactory, tutorial_spec, tutorial_workspace
from tests.worker_plugin import WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

Status = ChangeRequest.Status
FINISHED = (Status.SUCCEEDED, Status.FAILED)


@pytest.fixture(autouse=True)
def _short_leases(settings: Any) -> None:
    # Read by the test process and passed to the workers through their environment.
    settings.PROVISIONING_LEASE_SECONDS = 8
    settings.PROVISIONING_HEARTBEAT_SECONDS = 2.0


def _principals(standin: Any) -> None:
    for member in TUTORIAL_MEMBERS:
        standin.add_user(member.principal)
    standin.add_group("datasciencegroup")


def _approved(alice: Any, bob: Any, spec: RequestSpec) -> ChangeRequest:
    return ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True)


def _small_spec(team: str) -> RequestSpec:
    """A workspace with one member and no cluster: a quick run."""
    return RequestSpec(
        workspace=tutorial_workspace(team=team, data_lake=False, security_group=""),
        members=(MemberSpec(principal=TUTORIAL_MEMBERS[1].principal, persona="team_lead"),),
    )


def _status(pk: int) -> str:
    return str(ChangeRequest.objects.values_list("status", flat=True).get(pk=pk))


def _steps(pk: int) -> Counter[str]:
    run = Run.objects.filter(change_request_id=pk).order_by("-number").first()
    return Counter(run.steps.values_list("status", flat=True)) if run else Counter()


def _describer(pks: list[int], workers: list[WorkerProcess]) -> Callable[[], str]:
    def describe() -> str:
        lines = []
        for pk in pks:
            runs_ = Run.objects.filter(change_request_id=pk).order_by("number")
            summary = [(r.number, r.status, r.deliveries, r.lease_owner, r.lease_expires_at) for r in runs_]
            lines.append(f"request #{pk} is {_status(pk)}; steps {dict(_steps(pk))}; runs {summary}")
        for i, worker in enumerate(workers, 1):
            lines.append(f"--- worker {i} output (tail) ---\n{worker.output()[-3000:]}")
        return "\n".join(lines)

    return describe


def _all_finished(pks: list[int], *, sweep: bool = False) -> Callable[[], bool]:
    def check() -> bool:
        if sweep:
            runs.runs_sweep()  # what the scheduler does every few seconds
        return all(_status(pk) in FINISHED for pk in pks)

    return check


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _assert_tutorial_provisioned_once(standin: Any) -> None:
    """Every resource and every grant of the tutorial exists exactly once in Azure."""
    resources = [r for r in standin.state.list_resources() if r["type"] != "Microsoft.Resources/deployments"]
    ids = Counter(r["id"].lower() for r in resources)
    assert [i for i, n in ids.items() if n > 1] == []
    assert Counter(r["type"] for r in resources) == {
        "Microsoft.Resources/resourceGroups": 1,
        "Microsoft.Storage/storageAccounts": 3,
        "Microsoft.KeyVault/vaults": 1,
        "Microsoft.ContainerRegistry/registries": 1,
        "Microsoft.Insights/components": 1,
        "Microsoft.MachineLearningServices/workspaces": 1,
        "Microsoft.MachineLearningServices/workspaces/computes": 3,
    }
    assignments = standin.state.list_role_assignments()
    grants = Counter(
        (
            a["properties"]["principalId"],
            a["properties"]["roleDefinitionId"].lower(),
            a["properties"]["scope"].lower(),
        )
        for a in assignments
    )
    assert len(assignments) == 40
    assert [g for g, n in grants.items() if n > 1] == []
    assert len(standin.state.list_role_definitions()) == 2


def test_a_real_worker_provisions_the_tutorial_example(
    policy, alice, bob, standin, rq_queue, start_worker
) -> None:
    _principals(standin)
    worker = start_worker()  # starts while the request is prepared
    cr = _approved(alice, bob, tutorial_spec())

    wait_for(_all_finished([cr.pk]), timeout=120, describe=_describer([cr.pk], [worker]))

    assert _status(cr.pk) == Status.SUCCEEDED, _describer([cr.pk], [worker])()
    _assert_tutorial_provisioned_once(standin)
    run = Run.objects.get(change_request=cr)
    assert (run.number, run.deliveries, run.status) == (1, 1, Run.Status.SUCCEEDED)
    assert not Step.objects.filter(run=run).exclude(status=Step.Status.SUCCEEDED).exists()


def test_a_worker_killed_mid_run_is_replaced_and_the_run_completes_exactly_once(
    policy, alice, bob, standin, rq_queue, start_worker
) -> None:
    _principals(standin)
    # Slow clusters and grants keep the run busy long enough to kill its worker halfway.
    standin.set_latency("compute.create", 5)
    standin.set_latency("role_assignment.create", 1)
    workers = [start_worker()]
    cr = _approved(alice, bob, tutorial_spec())
    describe = _describer([cr.pk], workers)
    wait_for(lambda: _steps(cr.pk)[Step.Status.SUCCEEDED] >= 8, timeout=120, describe=describe)

    workers[0].kill_hard()  # the worker and its work horse, mid-run, without a chance to clean up
    assert _status(cr.pk) == Status.PROVISIONING
    left = _steps(cr.pk)
    assert left[Step.Status.PENDING] + left[Step.Status.RUNNING] > 0, describe()
    workers.append(start_worker())

    wait_for(_all_finished([cr.pk], sweep=True), timeout=180, interval=2, describe=describe)

    assert _status(cr.pk) == Status.SUCCEEDED, describe()
    run = Run.objects.get(change_request=cr)
    assert run.status == Run.Status.SUCCEEDED
    assert run.deliveries >= 2
    _assert_tutorial_provisioned_once(standin)


def test_jobs_lost_in_a_flushed_redis_are_enqueued_again_by_the_sweeper(
    policy, alice, bob, standin, rq_queue, start_worker
) -> None:
    standin.add_user(TUTORIAL_MEMBERS[1].principal)
    crs = [_approved(alice, bob, _small_spec(team)) for team in ("flusha", "flushb")]
    pks = [cr.pk for cr in crs]
    assert {provisioning_job_id(pk) for pk in pks} <= set(rq_queue.job_ids)

    rq_queue.connection.flushdb()  # Redis restarted without persistence: every queued job is gone
    assert rq_queue.count == 0
    worker = start_worker()
    # After the grace period (the lease) the sweeper finds approved requests whose job is missing.
    assert runs.runs_sweep() == []
    swept = runs.runs_sweep(now=timezone.now() + timedelta(seconds=60))

    assert sorted(swept) == sorted(pks)
    wait_for(_all_finished(pks), timeout=120, describe=_describer(pks, [worker]))
    assert [_status(pk) for pk in pks] == [Status.SUCCEEDED, Status.SUCCEEDED]


def test_an_approval_while_redis_is_down_is_kept_and_provisioned_later(
    policy, alice, bob, standin, rq_queue, start_worker, caplog
) -> None:
    standin.add_user(TUTORIAL_MEMBERS[1].principal)
    worker = start_worker()  # its environment names the real Redis
    cr = ChangeRequestFactory(requester=alice, spec=_small_spec("redisdown"), submitted=True)
    queue_config = settings.RQ_QUEUES["provisioning"]
    redis_url = queue_config["URL"]
    queue_config["URL"] = f"redis://127.0.0.1:{_unused_port()}/0"
    try:
        with caplog.at_level(logging.WARNING, logger="provisioning.queue"):
            services.request_approve(request_id=cr.pk, approver=bob)  # commits; the enqueue fails
    finally:
        queue_config["URL"] = redis_url

    cr.refresh_from_db()
    assert cr.status == Status.APPROVED
    assert cr.enqueued_at is None
    assert "the sweeper will enqueue it later" in caplog.text
    assert provisioning_job_id(cr.pk) not in rq_queue.job_ids

    assert runs.runs_sweep() == [cr.pk]  # never enqueued: no grace period to wait for
    cr.refresh_from_db()
    assert cr.enqueued_at is not None
    wait_for(_all_finished([cr.pk]), timeout=120, describe=_describer([cr.pk], [worker]))
    assert _status(cr.pk) == Status.SUCCEEDED
