"""``manage.py provisioning_scheduler``: the clock of the periodic jobs.

Every ``--interval`` seconds it enqueues the ``provisioning.jobs.sweep`` job (JSON-serialized, like
every portal job) unless one is already waiting, so a worker re-enqueues approved or running work
whose job was lost or whose worker died. Every ``--capacity-interval`` seconds (and at start) it
enqueues ``provisioning.jobs.capacity_check``: the size catalog and core usages read from Azure, then
the guard over the clusters that exist. Every ``--reconcile-interval`` seconds (``RECONCILE_INTERVAL_MINUTES``,
30 minutes by default; and at start) it enqueues ``provisioning.jobs.reconcile_all``: every managed workspace
compared with what Azure holds. Every ``--checkpoint-interval`` seconds (``AUDIT_CHECKPOINT_MINUTES``, 5 minutes
by default; and at start) it enqueues ``provisioning.jobs.audit_checkpoint``: the audit chain's head signed
by a worker (this process holds no key and calls no Azure). Every ``--expiry-interval`` seconds (an hour by
default; and at start) it enqueues ``provisioning.jobs.membership_reminders`` (the reminders due at the policy's
days before memberships end), ``provisioning.jobs.memberships_expire`` (memberships past their end removed
from Azure), ``provisioning.jobs.access_reviews`` (access reviews started when due, closed at their deadline)
and ``provisioning.jobs.admin_roles`` (the two administration roles defined and assigned, docs/roles.md). Each periodic job has a fixed id and is not queued again while one waits or
runs, so a slow one never piles up. Every ``--spend-interval`` seconds (a day by default; and at start) it
enqueues ``provisioning.jobs.spend_refresh``: each workspace's month-to-date spend read from Cost Management. Redis being down only delays the next tick.
"""

from __future__ import annotations

import time
from typing import Any

import django_rq
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from redis.exceptions import RedisError

from provisioning.queue import QUEUE_NAME, job_pending
from provisioning.workflow.reconcile import RECONCILE_ALL_JOB, RECONCILE_ALL_JOB_ID

SWEEP_JOB_ID = "provisioning-sweep"
CAPACITY_JOB_ID = "provisioning-capacity"
CHECKPOINT_JOB_ID = "provisioning-audit-checkpoint"
EXPIRY_JOB_ID = "provisioning-memberships-expire"
REMINDERS_JOB_ID = "provisioning-membership-reminders"
REVIEWS_JOB_ID = "provisioning-access-reviews"
ADMIN_ROLES_JOB_ID = "provisioning-admin-roles"
SPEND_JOB_ID = "provisioning-spend"


def _enqueue_once(func: str, job_id: str, *, result_ttl: int) -> bool:
    """Queue a periodic job unless it is already waiting or running; False when Redis is unreachable."""
    if job_pending(job_id):
        return True
    try:
        django_rq.get_queue(QUEUE_NAME).enqueue(func, job_id=job_id, result_ttl=result_ttl, failure_ttl=3600)
    except RedisError:
        return False
    return True


def sweep_enqueue() -> bool:
    """Queue one sweep unless one is already waiting; False when Redis is unreachable."""
    return _enqueue_once("provisioning.jobs.sweep", SWEEP_JOB_ID, result_ttl=60)


def capacity_enqueue() -> bool:
    """Queue one capacity refresh and cluster guard unless one is waiting; False when Redis is unreachable."""
    return _enqueue_once("provisioning.jobs.capacity_check", CAPACITY_JOB_ID, result_ttl=3600)


def reconcile_enqueue() -> bool:
    """Queue the reconcile of every managed workspace unless one is waiting; False when Redis is unreachable."""
    return _enqueue_once(RECONCILE_ALL_JOB, RECONCILE_ALL_JOB_ID, result_ttl=24 * 3600)


def checkpoint_enqueue() -> bool:
    """Queue one audit checkpoint unless one is waiting; False when Redis is unreachable."""
    return _enqueue_once("provisioning.jobs.audit_checkpoint", CHECKPOINT_JOB_ID, result_ttl=3600)


def expiry_enqueue() -> bool:
    """Queue the membership reminders, the expiry, the access reviews and the admin roles unless they wait; False
    when Redis is unreachable."""
    reminded = _enqueue_once("provisioning.jobs.membership_reminders", REMINDERS_JOB_ID, result_ttl=3600)
    reviewed = _enqueue_once("provisioning.jobs.access_reviews", REVIEWS_JOB_ID, result_ttl=3600)
    expired = _enqueue_once("provisioning.jobs.memberships_expire", EXPIRY_JOB_ID, result_ttl=3600)
    roles = _enqueue_once("provisioning.jobs.admin_roles", ADMIN_ROLES_JOB_ID, result_ttl=3600)
    return expired and reminded and reviewed and roles


def spend_enqueue() -> bool:
    """Queue the daily spend read unless one is waiting; False when Redis is unreachable."""
    return _enqueue_once("provisioning.jobs.spend_refresh", SPEND_JOB_ID, result_ttl=24 * 3600)


class Command(BaseCommand):
    help = "Enqueue the provisioning sweeper and the capacity check periodically (one per deployment)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--interval", type=float, default=15.0, help="seconds between sweeps (default 15)"
        )
        parser.add_argument(
            "--capacity-interval",
            type=float,
            default=300.0,
            help="seconds between capacity refreshes and cluster guards (default 300)",
        )
        parser.add_argument(
            "--reconcile-interval",
            type=float,
            default=None,
            help="seconds between reconciles with Azure (default RECONCILE_INTERVAL_MINUTES, 30 minutes)",
        )
        parser.add_argument(
            "--checkpoint-interval",
            type=float,
            default=None,
            help="seconds between audit checkpoints (default AUDIT_CHECKPOINT_MINUTES, 5 minutes)",
        )
        parser.add_argument(
            "--expiry-interval",
            type=float,
            default=3600.0,
            help="seconds between membership reminders, expiries and access reviews (default 3600)",
        )
        parser.add_argument(
            "--spend-interval",
            type=float,
            default=86400.0,
            help="seconds between spend reads from Cost Management (default 86400: daily)",
        )
        parser.add_argument(
            "--once", action="store_true", help="enqueue one sweep, capacity check and reconcile, exit"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        last_capacity: float | None = None
        last_reconcile: float | None = None
        last_checkpoint: float | None = None
        last_expiry: float | None = None
        last_spend: float | None = None
        checkpoint_every = options["checkpoint_interval"] or settings.AUDIT_CHECKPOINT_MINUTES * 60
        reconcile_every = options["reconcile_interval"] or settings.RECONCILE_INTERVAL_MINUTES * 60
        while True:
            if not sweep_enqueue():
                self.stderr.write("Redis unreachable; will try again at the next tick")
            now = time.monotonic()
            due = last_capacity is None or now - last_capacity >= options["capacity_interval"]
            if due and capacity_enqueue():
                last_capacity = now
            if (last_reconcile is None or now - last_reconcile >= reconcile_every) and reconcile_enqueue():
                last_reconcile = now
            if (
                last_checkpoint is None or now - last_checkpoint >= checkpoint_every
            ) and checkpoint_enqueue():
                last_checkpoint = now
            if (last_expiry is None or now - last_expiry >= options["expiry_interval"]) and expiry_enqueue():
                last_expiry = now
            if (last_spend is None or now - last_spend >= options["spend_interval"]) and spend_enqueue():
                last_spend = now
            if options["once"]:
                return
            time.sleep(options["interval"])
