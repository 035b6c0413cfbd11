"""The benchmarks touch nothing real: a bench run leaves the configured queues as it found them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import django_rq

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
