"""``manage.py bench_burst [--requests N] [--workers W] [--latency-scale F]``: a burst under ARM's limits.

Approves N new-workspace requests (N teams, one subscription) at once and runs them with W worker
processes (forked; each runs the real engine on up to ``--per-worker`` requests at a time, with its own SDK
clients) against a local Azure stand-in that enforces ARM's per-subscription token buckets (writes: 200,
refilled 10/s, divided by the latency scale F like every duration). The portal's write budget
(ARM_WRITES_PER_SECOND, ARM_WRITE_BURST) is set to the same scaled rate and lives in a throwaway
``redis-server`` process (the embedded one when the machine has none), as do the queues; the database is a
throwaway one. Prints succeeded / failed, the 429 answers, the
peak accepted writes per second, and the wall time against the floor the write limit allows.
"""

from __future__ import annotations

import multiprocessing
import string
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import connection, connections
from django.test.utils import override_settings

from accounts import personas
from provisioning.management.commands.bench_provisioning import Command as ProvisioningBench
from provisioning.management.embedded_redis import isolated_queues
from provisioning.management.trust import standin_trusted

SUBSCRIPTION = "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27"
MEMBER = "user1@contoso.com"
WRITES = ("PUT", "PATCH", "POST", "DELETE")
READS = ("GET", "HEAD")


def team_name(n: int) -> str:
    """Letters only, short enough for storage account names: burstaa, burstab, ..."""
    letters = string.ascii_lowercase
    return "burst" + letters[n // 26 % 26] + letters[n % 26]


def _worker(request_ids: list[int], per_worker: int) -> None:
    """One worker process: the engine on its share of the requests, ``per_worker`` at a time."""
    from django.conf import settings

    from provisioning.azure.clients import AzureClients
    from provisioning.engine.executor import request_execute

    connections.close_all()
    clients = AzureClients.from_settings(settings)

    def execute(request_id: int) -> None:
        try:
            request_execute(request_id=request_id, clients=clients)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=per_worker) as pool:
        list(pool.map(execute, request_ids))
    clients.close()


def peak_writes(times: list[float], window: float = 1.0) -> int:
    """The most accepted writes in any ``window`` seconds (sliding)."""
    times, best, start = sorted(times), 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def over_bucket(times: list[float], rate: float, bucket: int) -> float:
    """How far the accepted writes ever got beyond a token bucket (<= 0: never)."""
    times, worst = sorted(times), float("-inf")
    for i, first in enumerate(times):
        for j in range(i, len(times)):
            worst = max(worst, (j - i + 1) - bucket - rate * (times[j] - first))
    return worst


class Command(BaseCommand):
    help = "Benchmark a burst of new-workspace requests against the stand-in enforcing ARM's limits."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--requests", type=int, default=100)
        parser.add_argument("--workers", type=int, default=4)
        parser.add_argument("--per-worker", type=int, default=25, help="requests a worker runs at once")
        parser.add_argument("--latency-scale", type=float, default=0.1)
        parser.add_argument("--bucket", type=int, default=200, help="the stand-in's ARM write bucket")
        parser.add_argument(
            "--breakdown",
            action="store_true",
            help="also print the ARM requests per operation and a timeline in 10 s windows",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from provisioning.standin import StandIn
        from provisioning.standin.faults import REALISTIC_LATENCY
        from provisioning.standin.throttle import ARM_LIMITS, MIN_SCALE

        scale, bucket = options["latency_scale"], options["bucket"]
        rate = ARM_LIMITS["writes"][1] / max(scale, MIN_SCALE)
        read_bucket, read_rate = ARM_LIMITS["reads"][0], ARM_LIMITS["reads"][1] / max(scale, MIN_SCALE)
        old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        standin = StandIn(
            latency=REALISTIC_LATENCY,
            latency_scale=scale,
            arm_limits=True,
            arm_limit_sizes={"writes": bucket},
        )
        base_url = standin.start()
        try:
            # The portal's budgets as production sets them against ARM's: writes 10/s of 10 (bucket 150 of
            # 200), reads 20/s of 25 (bucket 200 of 250), scaled like the stand-in.
            budget = {
                "ARM_WRITES_PER_SECOND": rate,
                "ARM_WRITE_BURST": max(1, bucket * 3 // 4),
                "ARM_READS_PER_SECOND": read_rate * 0.8,
                "ARM_READ_BURST": max(1, read_bucket * 4 // 5),
            }
            azure = ProvisioningBench()._azure_settings(standin, base_url)
            with (
                standin_trusted(standin),
                override_settings(**azure, **budget),
                isolated_queues(process=True),
            ):
                self._run(standin, options, rate, bucket)
        finally:
            standin.stop()
            connection.creation.destroy_test_db(old_name, verbosity=0)

    def _approved(self, count: int) -> list[int]:
        from django.contrib.auth.models import Group

        from accounts.models import User
        from provisioning.models import AllowedRegion, AllowedSubscription
        from provisioning.spec import MemberSpec, RequestSpec, WorkspaceSpec
        from provisioning.workflow import services

        AllowedSubscription.objects.create(subscription_id=SUBSCRIPTION, display_name="bench")
        AllowedRegion.objects.create(name="eastus2", display_name="East US 2", abbreviation="e2")
        lead = User.objects.create(username="bench-lead", upn="bench-lead@contoso.com")
        lead.groups.add(Group.objects.get_or_create(name=personas.TEAM_LEAD)[0])
        admin = User.objects.create(username="bench-admin", upn="bench-admin@contoso.com")
        admin.groups.add(Group.objects.get_or_create(name=personas.ADMIN)[0])
        ids = []
        for n in range(count):
            spec = RequestSpec(
                workspace=WorkspaceSpec(
                    subscription_id=SUBSCRIPTION,
                    region="eastus2",
                    department="bgmr",
                    team=team_name(n),
                    region_abbv="e2",
                    environment="dev",
                    security_group="",
                    data_lake=False,
                ),
                members=(MemberSpec(MEMBER, "team_lead"),),
            )
            cr = services.request_create(requester=lead, kind="new_workspace", spec=spec, lead_joins=False)
            services.request_submit(request_id=cr.pk, actor=lead)
            services.request_approve(request_id=cr.pk, approver=admin)
            ids.append(cr.pk)
        return ids

    def _run(self, standin: Any, options: dict[str, Any], rate: float, bucket: int) -> None:
        from provisioning.models import Run

        standin.add_user(MEMBER)
        ids = self._approved(options["requests"])
        workers = max(1, options["workers"])
        shares = [ids[i::workers] for i in range(workers)]
        options["per_worker"] = self._per_worker(workers, options["per_worker"])
        standin.state.clear_requests()
        connections.close_all()
        context = multiprocessing.get_context("fork")
        started = time.monotonic()
        processes = [context.Process(target=_worker, args=(s, options["per_worker"])) for s in shares if s]
        for p in processes:
            p.start()
        for p in processes:
            p.join()
        wall = time.monotonic() - started

        runs = Run.objects.filter(change_request_id__in=ids)
        succeeded = runs.filter(status=Run.Status.SUCCEEDED).values("change_request_id").distinct().count()
        self._report(options, ids, succeeded, standin.state.requests, wall, rate, bucket)

    def _per_worker(self, workers: int, asked: int) -> int:
        """Runs at once per worker, within the database connections free now: each run holds one (its steps'
        threads call Azure only; this process holds none while they run), and PostgreSQL refuses clients
        beyond ``max_connections`` (less the superuser's reserve for anyone else)."""
        per_worker = max(1, asked)
        if connection.vendor != "postgresql":
            return per_worker
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')"
                "::int, (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), (SELECT count(*) FROM "
                "pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())"
            )
            limit, reserved, superuser, others = cursor.fetchone()
        free = limit - others - (0 if superuser else reserved)
        room = max(1, free // workers)
        if per_worker > room:
            self.stdout.write(
                f"  {workers} x {per_worker} runs at once need more than the {free} PostgreSQL connections free "
                f"(max_connections {limit}): {room} per worker"
            )
        return min(per_worker, room)

    def _report(
        self,
        options: dict[str, Any],
        ids: list[int],
        succeeded: int,
        records: list[Any],
        wall: float,
        rate: float,
        bucket: int,
    ) -> None:
        from provisioning.standin.throttle import ARM_LIMITS, MIN_SCALE

        arm = [r for r in records if r.path.lower().startswith("/subscriptions/")]
        writes = [r for r in arm if r.method in WRITES]
        accepted = [r.arrived for r in writes if r.status != 429]
        reads = [r for r in arm if r.method in READS]
        reads_accepted = [r.arrived for r in reads if r.status != 429]
        read_bucket = ARM_LIMITS["reads"][0]
        read_rate = ARM_LIMITS["reads"][1] / max(options["latency_scale"], MIN_SCALE)
        w = self.stdout.write
        floor = max(0, len(accepted) - bucket) / rate
        read_floor = max(0, len(reads_accepted) - read_bucket) / read_rate
        w(
            f"A burst of {len(ids)} new workspaces, {options['workers']} workers, latency scale "
            f"{options['latency_scale']:g} (ARM writes: bucket {bucket}, {rate:g}/s; reads: bucket "
            f"{read_bucket}, {read_rate:g}/s)"
        )
        w(f"  succeeded: {succeeded}/{len(ids)}")
        w(f"  failed: {len(ids) - succeeded}")
        throttled = sum(1 for r in records if r.status == 429)
        w(
            f"  429 answers: {throttled}  (writes sent {len(writes)}, accepted {len(accepted)}; "
            f"reads sent {len(reads)}, accepted {len(reads_accepted)})"
        )
        peak = peak_writes(accepted)
        excess = over_bucket(accepted, rate, bucket) if len(accepted) <= 5000 else float("nan")
        verdict = "within" if excess <= 0 else "OVER"
        w(
            f"  peak ARM writes per second per subscription: {peak} "
            f"(limit: bucket {bucket} + {rate:g}/s; {verdict} the limit)"
        )
        w(f"  peak ARM reads per second per subscription: {peak_writes(reads_accepted)}")
        ratio = wall / floor if floor else float("nan")
        w(f"  wall: {wall:.1f} s (floor {floor:.1f} s, {ratio:.2f}x)")
        binding = max(floor, read_floor)
        w(
            f"  the reads' floor: {read_floor:.1f} s ({len(reads_accepted) / max(1, len(ids)):.1f} reads per "
            f"workspace); wall against the binding floor: {wall / binding if binding else float('nan'):.2f}x"
        )
        if options.get("breakdown"):
            self._breakdown(arm, len(ids))

    def _breakdown(self, arm: list[Any], workspaces: int) -> None:
        """Where the requests went: per operation (reads and writes, per workspace, refused), then per 10 s."""
        w = self.stdout.write
        per_operation: dict[tuple[str, str], list[int]] = {}
        for r in arm:
            kind = "write" if r.method in WRITES else "read" if r.method in READS else r.method
            counts = per_operation.setdefault((kind, r.operation or r.method), [0, 0])
            counts[0] += 1
            counts[1] += int(r.status == 429)
        w("  per operation (sent, per workspace, answered 429):")
        for (kind, operation), (sent, refused) in sorted(per_operation.items(), key=lambda item: -item[1][0]):
            w(f"    {kind:5} {operation:40} {sent:6} {sent / max(1, workspaces):6.1f} {refused:6}")
        if not arm:
            return
        start = min(r.arrived for r in arm)
        windows: dict[int, list[int]] = {}
        for r in arm:
            window = windows.setdefault(int((r.arrived - start) // 10), [0, 0, 0, 0])
            column = 0 if r.method in WRITES else 2
            window[column + int(r.status == 429)] += 1
        w("  per 10 s (writes accepted, refused; reads accepted, refused):")
        for number, (wa, wr, ra, rr) in sorted(windows.items()):
            w(f"    {number * 10:4d}-{number * 10 + 10:<4d} {wa:5} {wr:5} {ra:6} {rr:6}")
