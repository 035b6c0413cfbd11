"""Real RQ workers for end-to-end tests: ``manage.py rqworker`` in a subprocess (forking work horses).

The subprocess gets the test database, the test Redis and the Azure stand-in's endpoints through
its environment, exactly as a deployed worker gets them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

from provisioning.management.database_url import current_database_url

ROOT = Path(__file__).resolve().parent.parent


def worker_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("AZUREML_CURRENT_CLOUD", None)  # set by azure-ai-ml in this process; meaningless in another
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "portal.settings",
            "DATABASE_URL": current_database_url(),
            "REDIS_URL": settings.RQ_QUEUES["provisioning"]["URL"],
            "AZURE_ARM_ENDPOINT": settings.AZURE_ARM_ENDPOINT,
            "AZURE_AUTHORITY_HOST": settings.AZURE_AUTHORITY_HOST,
            "GRAPH_ENDPOINT": settings.GRAPH_ENDPOINT,
            "AZURE_CREDENTIAL": settings.AZURE_CREDENTIAL,
            "AZURE_TENANT_ID": settings.AZURE_TENANT_ID,
            "AZURE_CLIENT_ID": settings.AZURE_CLIENT_ID,
            "AZURE_CLIENT_SECRET": settings.AZURE_CLIENT_SECRET,
            "AZURE_DISABLE_INSTANCE_DISCOVERY": "true"
            if settings.AZURE_DISABLE_INSTANCE_DISCOVERY
            else "false",
            "PROVISIONING_LEASE_SECONDS": str(settings.PROVISIONING_LEASE_SECONDS),
            "PROVISIONING_HEARTBEAT_SECONDS": str(settings.PROVISIONING_HEARTBEAT_SECONDS),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _children(pid: int) -> list[int]:
    """The child processes of ``pid``, from /proc (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # the process ended meanwhile
            continue
        # Fields after the command name (which may hold spaces): state, then the parent's pid.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


class WorkerProcess:
    """One ``rqworker`` process and what it printed (kept in a file for the test's failure report)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "rqworker",
                "provisioning",
                "--with-scheduler",
                "--serializer",
                "rq.serializers.JSONSerializer",
                # RQ waits on Redis for worker_ttl - 15 s at a time; a stop while idle waits out that wait.
                "--worker-ttl",
                "17",
            ],
            cwd=ROOT,
            env=worker_environment(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill_hard(self) -> None:
        """SIGKILL the worker and its work horse (each in its own process group: RQ's horse calls setpgrp)."""
        horses = _children(self.proc.pid)
        for group in (self.proc.pid, *horses):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                self.kill_hard()
        self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    """Start real RQ workers; all are stopped at the end of the test."""
    started: list[WorkerProcess] = []

    def start() -> WorkerProcess:
        worker = WorkerProcess(tmp_path / f"worker-{len(started) + 1}.log")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(
    predicate: Callable[[], bool],
    *,
    timeout: float,
    interval: float = 0.5,
    describe: Callable[[], str] = lambda: "",
) -> None:
    """Poll until the predicate holds, or fail the test with a description of the state."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s. {describe()}")
