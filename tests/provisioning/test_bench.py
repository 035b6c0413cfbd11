"""The benchmarks touch nothing real: a bench run leaves the configured queues as it found them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import django_rq
import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_bench_provisioning_queues_nothing_on_the_configured_redis(rq_queue, tmp_path: Path) -> None:
    connection = rq_queue.connection
    env = {
        **{
            k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"
        },  # azure-ai-ml's, of this process
        # Its own throwaway SQLite database; the configured Redis is the test Redis.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}",
        "REDIS_URL": _url(rq_queue),
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "bench_provisioning", "--latency-scale", "0.01"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "outcome              succeeded" in done.stdout
    assert rq_queue.count == 0
    assert connection.keys("rq:job:*") == []
    assert django_rq.get_queue("provisioning").count == 0


def _url(queue) -> str:  # type: ignore[no-untyped-def]
    kwargs = queue.connection.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"


def test_a_burst_against_the_throttling_stand_in_succeeds_within_the_write_limit(
    rq_queue, tmp_path: Path, settings
) -> None:
    """The burst benchmark, small: every request succeeds, ARM's write bucket is never exceeded, and the
    configured queues are untouched. Its workers are forked processes writing at once: PostgreSQL only."""
    db = settings.DATABASES["default"]
    if not db["ENGINE"].endswith("postgresql"):
        pytest.skip("the burst's forked workers write at once: PostgreSQL only")
    auth = f"{db['USER']}@" if db.get("USER") else ""
    env = {
        **{k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"},
        # A database of its own (the bench creates test_<name> and drops it).
        "DATABASE_URL": f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/burst",
        "REDIS_URL": _url(rq_queue),
    }
    done = subprocess.run(
        [
            *(sys.executable, "manage.py", "bench_burst", "--requests", "12", "--workers", "2"),
            *("--per-worker", "6", "--latency-scale", "0.05", "--bucket", "20"),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "succeeded: 12/12" in done.stdout, done.stdout
    assert "failed: 0" in done.stdout
    assert "within the limit" in done.stdout
    assert rq_queue.count == 0
    assert rq_queue.connection.keys("rq:job:*") == []
