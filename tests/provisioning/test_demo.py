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


def test_the_demo_shows_the_portals_pages_and_sigterm_leaves_nothing_behind(tmp_path: Path) -> None:
    """The whole demo as a user starts it (SQLite, embedded Redis, stand-in, worker), then stopped by SIGTERM."""
    import re
    import signal
    import urllib.error
    import urllib.request

    from provisioning.management.embedded_redis import free_port

    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "AZUREML_CURRENT_CLOUD")
    }
    env.update(PORTAL_VAR_DIR=str(tmp_path), DATABASE_URL=f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        # The command is fixed; only its environment varies.
        demo_process = subprocess.Popen(
            [
                sys.executable,
                "manage.py",
                "demo",
                "--auth",
                "local",
                "--port",
                str(port),
                "--latency-scale",
                "0.01",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90
            while "The portal is at" not in log.read_text(errors="replace"):
                assert demo_process.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            text = log.read_text()
            worker = int(re.search(r"Provisioning worker started \(pid (\d+)\)", text)[1])  # type: ignore[index]
            ca_bundle = re.search(r"REQUESTS_CA_BUNDLE=(\S+)", text)[1]  # type: ignore[index]
            assert (tmp_path / "demo-redis").exists() and Path(ca_bundle).exists()
            # The banner comes once the web server listens: its address works at once.
            with pytest.raises(urllib.error.HTTPError) as missing:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=10)
            page = missing.value.read().decode()
            assert missing.value.code == 404 and "AzureML Portal" in page and "Django" not in page
        finally:
            demo_process.send_signal(signal.SIGTERM)
            demo_process.wait(timeout=60)
    assert "Demo stopped." in log.read_text()
    with pytest.raises(ProcessLookupError):
        os.kill(worker, 0)
    assert not (tmp_path / "demo-redis").exists()
    assert not Path(ca_bundle).parent.exists()  # the stand-in's directory (its CA) is gone
