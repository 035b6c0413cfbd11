"""Only the portal's jobs run: a job for any other function is refused by a real worker, never called.

Whoever can write to the portal's Redis can enqueue any dotted path; RQ alone would import and call
it. These tests put such jobs on the real queue and run a real ``manage.py rqworker`` (burst mode,
forking work horses) over them: each would create a file if it ran.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import django_rq
import pytest
import yaml
from django.conf import settings
from rq import Callback
from rq.job import Job, JobStatus
from rq.queue import Queue
from rq.serializers import DefaultSerializer, JSONSerializer

from provisioning.jobs import JOB_FUNCTIONS
from provisioning.worker import PortalJob, PortalWorker, job_refusal
from tests.worker_plugin import ROOT, worker_environment

REFUSED = (
    "os.system",
    "subprocess.getoutput",
    "eval",
    "builtins.exec",
    # attribute chains through a name provisioning.jobs imports (inspect imports os)
    "provisioning.jobs.inspect.os.system",
    "provisioning.jobs.exports.audit_exports_sweep",
    # a function of the portal that is not a job
    "provisioning.engine.runs.runs_sweep",
    "provisioning.jobs.JOB_FUNCTIONS.__contains__",
)


def _job(func_name: str, *args: Any, **fields: Any) -> Job:
    job = Job.create(func_name, args=args, connection=django_rq.get_connection("provisioning"))
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def test_the_allowlist_is_the_functions_defined_in_provisioning_jobs() -> None:
    assert "provisioning.jobs.provision_request" in JOB_FUNCTIONS
    assert "provisioning.jobs.sweep" in JOB_FUNCTIONS
    assert all(name.startswith("provisioning.jobs.") and name.count(".") == 2 for name in JOB_FUNCTIONS)
    # what jobs.py imports is not a job
    assert "provisioning.jobs.exports" not in JOB_FUNCTIONS
    assert "provisioning.jobs.runs" not in JOB_FUNCTIONS


@pytest.mark.parametrize("func_name", REFUSED)
def test_a_function_outside_the_allowlist_is_refused(rq_queue: Any, func_name: str) -> None:
    assert "not one of the portal's job functions" in (job_refusal(_job(func_name, "x")) or "")


def test_a_portal_job_carrying_a_callback_is_refused(rq_queue: Any) -> None:
    job = _job("provisioning.jobs.sweep", _failure_callback_name="os.system")
    assert "callbacks" in (job_refusal(job) or "")
    assert job_refusal(_job("provisioning.jobs.sweep")) is None


def test_every_process_that_runs_jobs_uses_the_guarded_worker(rq_queue: Any) -> None:
    # manage.py rqworker (compose's worker, the demo's, the tests') builds its worker from these settings
    worker = django_rq.get_worker("provisioning", job_class="rq.job.Job", serializer=DefaultSerializer)
    assert isinstance(worker, PortalWorker)
    assert worker.job_class is PortalJob
    assert worker.serializer is JSONSerializer
    commands = [
        service["command"]
        for service in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"].values()
        if "rqworker" in (service.get("command") or [])
    ]
    demo = (ROOT / "provisioning/management/commands/demo.py").read_text()
    plugin = (ROOT / "tests/worker_plugin.py").read_text()
    assert commands, "compose runs a worker"
    for command in commands:
        assert command[:3] == ["python", "manage.py", "rqworker"]
        assert "--worker-class" not in command and "--job-class" not in command
    assert '"rqworker"' in demo and "--worker-class" not in demo
    assert '"rqworker"' in plugin and "--worker-class" not in plugin


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_refuses_os_system_and_runs_the_portals_jobs(rq_queue: Any, tmp_path: Path) -> None:
    markers = {name: tmp_path / f"ran-{i}" for i, name in enumerate(REFUSED)}
    refused = []
    for name, marker in markers.items():
        if name in ("eval", "builtins.exec"):
            args: tuple[Any, ...] = (f"open({str(marker)!r}, 'w').close()",)
        else:
            args = (f"touch {marker}",)
        refused.append(rq_queue.enqueue(name, *args))
    # a portal job whose failure callback names os.system, as a hand-written Redis entry could
    callback = rq_queue.enqueue("provisioning.jobs.sweep", on_failure=Callback("os.system"))
    portal_job = rq_queue.enqueue("provisioning.jobs.sweep")

    env = worker_environment()
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "rqworker",
            "provisioning",
            "--burst",
            "--serializer",
            "rq.serializers.JSONSerializer",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr

    assert not any(marker.exists() for marker in markers.values()), output
    for job in [*refused, callback]:
        job.refresh()
        assert job.get_status() == JobStatus.FAILED, output
        assert "JobRefused" in (job.exc_info or ""), job.exc_info
        assert "refused job" in output
    assert "'os.system' is not one of the portal's job functions" in output
    portal_job.refresh()
    assert portal_job.get_status() == JobStatus.FINISHED, output
    assert settings.RQ["WORKER_CLASS"] == "provisioning.worker.PortalWorker"


class _Touch:
    """Unpickling this runs ``touch`` (what a hand-written pickled job in Redis could carry)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


@pytest.mark.django_db(transaction=True)
def test_a_pickled_job_is_never_unpickled_even_by_a_worker_started_without_the_json_serializer(
    rq_queue: Any, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    pickled = Queue("provisioning", connection=rq_queue.connection, serializer=DefaultSerializer)
    job = pickled.enqueue("provisioning.jobs.sweep", _Touch(marker))

    result = subprocess.run(
        [sys.executable, "manage.py", "rqworker", "provisioning", "--burst"],  # RQ's default: pickle
        cwd=ROOT,
        env=worker_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert not marker.exists(), result.stdout + result.stderr
    assert Job.fetch(job.id, connection=rq_queue.connection, serializer=JSONSerializer).get_status() == (
        JobStatus.FAILED
    )
