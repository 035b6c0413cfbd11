"""manage.py demo: its clock queues the reconcile, and the drift its banner tells how to make is found."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from provisioning.engine.reconcile import reconcile
from provisioning.management.commands import demo
from provisioning.management.commands import provisioning_scheduler as scheduler
from tests.provisioning.provisioned import provisioned

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_clock_queues_the_reconcile_every_reconcile_interval(monkeypatch, settings) -> None:
    queued: list[str] = []
    for job in ("sweep", "capacity", "reconcile", "spend"):
        monkeypatch.setattr(scheduler, f"{job}_enqueue", lambda job=job: queued.append(job) or True)
    monkeypatch.setattr(demo, "SWEEP_SECONDS", 0.01)
    monkeypatch.setattr(demo, "CAPACITY_SECONDS", 0.03)
    settings.RECONCILE_INTERVAL_MINUTES = 0.05 / 60  # every 5 ticks of the clock
    stop = threading.Event()
    clock = threading.Thread(target=demo.Command()._sweep_clock, args=(stop,), daemon=True)
    clock.start()
    deadline = time.monotonic() + 10
    while queued.count("sweep") < 12 and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    clock.join(timeout=5)

    ticks = queued.count("sweep")
    assert ticks >= 12
    assert queued.count("reconcile") == ticks // 5
    assert queued.count("capacity") == ticks // 3
    assert queued.count("spend") == ticks // 3  # the demo reads spend as often as capacity
    assert queued[: queued.index("reconcile") + 1].count("sweep") == 5


@pytest.mark.django_db(transaction=True)
def test_the_banner_commands_change_the_tours_workspace_and_a_reconcile_finds_it(
    policy, alice, bob, standin, azure_clients, monkeypatch, loopback_only
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)  # the tour's example, as the demo would make it
    assert reconcile(clients=azure_clients)["workspaces"][0]["drift"] == []
    for name, value in standin.environment(os.environ["REQUESTS_CA_BUNDLE"]).items():
        monkeypatch.setenv(name, value)
    owner = next(p.object_id for p in standin.state.principals.values() if p.upn == demo.OUTSIDE_OWNER)

    tour = demo.Command()._drift_tour(standin, {demo.OUTSIDE_OWNER: owner})

    lines = [line.strip() for line in tour.splitlines() if line.strip().startswith(("export ", "uv run "))]
    assert [line.split()[0] for line in lines] == ["export", "uv", "uv", "uv"]
    assert "Reconcile with Azure now" in tour and "Drift" in tour and "RECONCILE_INTERVAL_MINUTES" in tour
    # Run as printed, in a shell that has nothing of this one's environment but PATH.
    python = f"{shlex.quote(sys.executable)} manage.py"
    script = "\n".join(line.replace("uv run manage.py", python) for line in lines)
    done = _shell(script)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "maxNodeCount 1 -> 40" in done.stdout
    assert "Owner for User" in done.stdout and "added untagged storage account" in done.stdout

    summary = reconcile(clients=azure_clients)

    found = {(item["kind"], item["field"]) for item in summary["workspaces"][0]["drift"]}
    assert found == {("changed", "max_nodes"), ("access_added", "role_assignment"), ("unmanaged", "")}
    assert ws.drift_items.count() == 3


def _shell(script: str) -> subprocess.CompletedProcess[str]:
    env = {name: os.environ[name] for name in ("PATH", "HOME") if name in os.environ}
    return subprocess.run(
        ["bash", "-ec", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
