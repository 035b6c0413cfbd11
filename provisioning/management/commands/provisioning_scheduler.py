"""``manage.py provisioning_scheduler``: the periodic sweeper's clock.

Every ``--interval`` seconds it enqueues the ``provisioning.jobs.sweep`` job (JSON-serialized, like
every portal job) unless one is already waiting, so a worker re-enqueues approved or running work
whose job was lost or whose worker died. Redis being down only delays the next tick.
"""

from __future__ import annotations

import time
from typing import Any

import django_rq
from django.core.management.base import BaseCommand, CommandParser
from redis.exceptions import RedisError

from provisioning.queue import QUEUE_NAME, job_pending

SWEEP_JOB_ID = "provisioning-sweep"


def sweep_enqueue() -> bool:
    """Queue one sweep unless one is already waiting; False when Redis is unreachable."""
    if job_pending(SWEEP_JOB_ID):
        return True
    try:
        django_rq.get_queue(QUEUE_NAME).enqueue(
            "provisioning.jobs.sweep", job_id=SWEEP_JOB_ID, result_ttl=60, failure_ttl=3600
        )
    except RedisError:
        return False
    return True


class Command(BaseCommand):
    help = "Enqueue the provisioning sweeper periodically (run one of these per deployment)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=15.0, help="seconds between sweeps (default 15)"
        )
        parser.add_argument("--once", action="store_true", help="enqueue one sweep and exit")

    def handle(self, *args: Any, **options: Any) -> None:
        while True:
            if not sweep_enqueue():
                self.stderr.write("Redis unreachable; will try again at the next tick")
            if options["once"]:
                return
            time.sleep(options["interval"])
