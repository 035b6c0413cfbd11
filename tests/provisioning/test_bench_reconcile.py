"""bench_reconcile: its figures come from the stand-in's request log, and it touches nothing real."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import django_rq
import pytest
from django.core.management import CommandError, call_command

from provisioning.management.commands import bench_reconcile
from provisioning.management.commands.bench_reconcile import bucket_lasts, bucket_low_water

ROOT = Path(__file__).resolve().parents[2]


def test_bench_reconcile_reads_each_workspace_in_a_few_calls_and_queues_nothing(
    rq_queue, tmp_path: Path
) -> None:
    env = {
        **{
            k: v for k, v in os.environ.items() if k != "AZUREML_CURRENT_CLOUD"
        },  # azure-ai-ml's, of this process
        # Its own throwaway SQLite database; the configured Redis is the test Redis.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bench.sqlite3'}",
        "REDIS_URL": _url(rq_queue),
    }
    done = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "bench_reconcile",
            "--workspaces",
            "2",
            "--latency-scale",
            "0.1",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout)

    # Two realistic workspaces were read: the tutorial's example each, nothing missed (no drift).
    assert figures["workspaces"] == 2
    assert figures["held_per_workspace"] == {"resources": 7.0, "clusters": 3.0, "role_assignments": 40.0}
    assert figures["drift_items"] == 0
    # Four list-or-get calls per workspace and one role-definition list: the stand-in saw what the
    # reconcile counted, and only reads.
    assert figures["arm_reads"] == 9 == figures["arm_reads_counted_by_reconcile"]
    assert figures["arm_reads_per_workspace"] == 4.5
    assert figures["meets_target"] is True
    assert figures["arm_writes"] == 0
    assert figures["graph_calls"] == 0  # every principal is a member the portal knows by name
    assert figures["requests_per_operation"] == {
        "compute.list": 2,
        "resource_group.get": 2,
        "resources.list_by_resource_group": 2,
        "role_assignment.list": 2,
        "role_definition.list": 1,
    }
    assert figures["wall_seconds"] > 0
    assert figures["wall_seconds_per_100_workspaces"] == pytest.approx(figures["wall_seconds"] * 50, rel=0.01)
    budget = figures["budget"]
    assert budget["under"] is True and budget["fewest_tokens_left"] >= 250 - 9
    assert budget["reads_per_hour_at_interval"] == 18  # 9 reads, 2 passes an hour
    assert budget["under_hourly"] is True

    # The printed report carries the same figures.
    out = StringIO()
    bench_reconcile.Command(stdout=out)._report(figures)
    report = out.getvalue()
    assert "ARM reads / workspace      4.50   (target <= 12: meets)" in report
    assert "fewest tokens left" in report and "under the budget" in report
    assert "wall / 100 workspaces" in report

    # Nothing reached the configured Redis.
    assert rq_queue.count == 0
    assert rq_queue.connection.keys("rq:job:*") == []
    assert django_rq.get_queue("provisioning").count == 0


@pytest.mark.parametrize("argument", ["0", "2001", "many"])
def test_the_number_of_workspaces_is_bounded(argument: str) -> None:
    with pytest.raises(CommandError, match="--workspaces"):
        call_command("bench_reconcile", "--workspaces", argument)


def test_a_full_bucket_absorbs_a_burst_then_refills_at_its_rate() -> None:
    assert bucket_low_water([]) == 250
    assert bucket_low_water([0.0] * 250) == 0  # the whole bucket at once: the last read takes the last token
    assert bucket_low_water([0.0] * 251) == -1  # one more is throttled
    # 25 a second for 100 s never empties it; 30 a second does, after 250 / (1 - 25/30) = 1500 reads.
    assert bucket_low_water([i / 25 for i in range(2500)]) == pytest.approx(249, abs=0.01)
    assert bucket_low_water([i / 30 for i in range(1600)]) < 0
    assert bucket_lasts(25.0) is None
    assert bucket_lasts(30.0) == pytest.approx(1500)


def _url(queue) -> str:  # type: ignore[no-untyped-def]
    kwargs = queue.connection.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"
