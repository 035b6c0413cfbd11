"""``manage.py bench_reconcile [--workspaces N] [--parallel P] [--latency-scale F] [--json]``: what a reconcile costs.

Makes N workspaces the way production does (each one the tutorial's example with its own team name: a
request created, submitted, approved and provisioned by the real engine through the real SDK clients, so
each has its resource group, 7 resources, 3 clusters and 40 role assignments at the group and below)
against a fresh local Azure stand-in answering at once, in a throwaway database, with every RQ queue on a
throwaway embedded Redis (what submit and approval queue never reaches the configured Redis). Then it times one full reconcile pass
(``provisioning.engine.reconcile.reconcile``, P workspaces at once) with the stand-in answering reads
after typical ARM read latencies (``READ_LATENCY``, estimates, times F), and prints from the stand-in's
request log: ARM reads in total and per workspace (target: at most 12), Graph calls apart, ARM writes
(none expected), the wall time and the wall time per 100 workspaces, the read rate, and how the pass
fits Azure Resource Manager's documented read budget. The drift the pass found is printed too: none is
expected, so a pass that misread a workspace shows.

The budget is the one documented in "Understand how Azure Resource Manager throttles requests"
(https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling),
section "Regional throttling and token bucket algorithm", the model Azure subscriptions were moved to from
2024: subscription reads have a bucket of 250 tokens refilled at 25 per second, per subscription, per
security principal, per region. The pass stays under it when a bucket full at its start never runs dry
over the reads as the stand-in received them (simulated from their times). The article's earlier model
(12,000 subscription reads per hour per principal; MicrosoftDocs/azure-docs, 2020) is printed alongside:
the reads of an hour of passes at ``RECONCILE_INTERVAL_MINUTES`` against it. Either budget is shared with
everything else the workers' principal reads (provisioning, the capacity refresh).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time
from argparse import ArgumentTypeError
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.test.utils import override_settings

from accounts import personas
from provisioning.management.embedded_redis import isolated_queues
from provisioning.management.trust import standin_trusted

SUBSCRIPTION = "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27"
REGION, REGION_ABBV = "eastus2", "e2"
LEADS = ("admin1@contoso.com", "user1@contoso.com")
SCIENTISTS = ("user2@contoso.com", "user3@contoso.com")
SECURITY_GROUP = "datasciencegroup"
CLUSTERS = (
    ("ds3-v2-cluster", "STANDARD_DS3_V2", "low_priority", 1),
    ("ds13-v2-2ndclust", "STANDARD_D13_V2", "dedicated", 2),
    ("nv6-gpucluster", "STANDARD_NV6", "low_priority", 1),
)
MAX_WORKSPACES = 2000
MAX_PARALLEL = 64

# How long Azure typically takes to answer the reconcile's reads (seconds): estimates, not measurements
# (ARM's list calls usually answer in a few hundred milliseconds; AzureML's compute list is the slowest).
READ_LATENCY: dict[str, float] = {
    "entra.token": 0.15,
    "resource_group.get": 0.1,
    "resources.list_by_resource_group": 0.2,
    "compute.list": 0.35,
    "role_assignment.list": 0.25,
    "role_definition.list": 0.3,
    "graph.user": 0.15,
    "graph.group": 0.15,
    "graph.service_principal": 0.15,
}

# Azure Resource Manager's read budget per subscription, per principal, per region (see the docstring).
BUCKET_SIZE = 250
REFILL_PER_SECOND = 25.0
HOURLY_READS_BEFORE_2024 = 12_000
TARGET_READS_PER_WORKSPACE = 12


def between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ArgumentTypeError(f"{value!r} is not a whole number") from None
        if not low <= number <= high:
            raise ArgumentTypeError(f"{number} is not between {low} and {high}")
        return number

    return parse


def bucket_low_water(
    times: list[float], *, size: float = BUCKET_SIZE, refill: float = REFILL_PER_SECOND
) -> float:
    """The fewest tokens a bucket full at the first read holds after any read (below 0: a read throttled)."""
    tokens, low, last = float(size), float(size), None
    for at in sorted(times):
        if last is not None:
            tokens = min(float(size), tokens + (at - last) * refill)
        tokens -= 1.0
        low = min(low, tokens)
        last = at
    return low


def bucket_lasts(
    rate: float, *, size: float = BUCKET_SIZE, refill: float = REFILL_PER_SECOND
) -> float | None:
    """Reads a pass at ``rate`` reads/s makes before a full bucket runs dry; None when it never does."""
    if rate <= refill:
        return None
    return size / (1.0 - refill / rate)


@contextlib.contextmanager
def _quiet_setup() -> Iterator[None]:
    """No noise from the setup: azure-ai-ml prints each deployment's progress on stderr, and urllib3 warns
    whenever the engine's 16 parallel steps outnumber a client's 10 pooled connections."""
    pool_logger = logging.getLogger("urllib3.connectionpool")
    level = pool_logger.level
    pool_logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        pool_logger.setLevel(level)


class Command(BaseCommand):
    help = "Benchmark one reconcile pass over N provisioned workspaces against the local Azure stand-in."

    def add_arguments(self, parser: CommandParser) -> None:
        from provisioning.engine.reconcile import RECONCILE_PARALLEL

        parser.add_argument(
            "--workspaces",
            type=between(1, MAX_WORKSPACES),
            default=20,
            help=f"how many workspaces to provision and reconcile (1..{MAX_WORKSPACES}, default 20)",
        )
        parser.add_argument(
            "--parallel",
            type=between(1, MAX_PARALLEL),
            default=RECONCILE_PARALLEL,
            help=f"workspaces read at once (default {RECONCILE_PARALLEL}, as the scheduled reconcile)",
        )
        parser.add_argument(
            "--latency-scale",
            type=float,
            default=1.0,
            help="the reconcile's reads take typical ARM read latencies times this (default 1: reads are "
            "short already; 0 measures the portal's own cost)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        from provisioning.standin import REALISTIC_LATENCY, StandIn

        old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        # Provisioning answers at once (scale 0); the pass gets the read latencies at its own scale.
        standin = StandIn(latency={**REALISTIC_LATENCY, **READ_LATENCY}, latency_scale=0.0)
        base_url = standin.start()
        try:
            with (
                standin_trusted(standin),
                override_settings(**self._azure_settings(standin, base_url)),
                isolated_queues(),
            ):
                figures = self._run(standin, options)
        finally:
            standin.stop()
            connection.creation.destroy_test_db(old_name, verbosity=0)
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            self._report(figures)

    def _azure_settings(self, standin: Any, base_url: str) -> dict[str, Any]:
        return {
            "AZURE_ARM_ENDPOINT": base_url,
            "AZURE_AUTHORITY_HOST": base_url,
            "GRAPH_ENDPOINT": base_url,
            "AZURE_CREDENTIAL": "client_secret",
            "AZURE_TENANT_ID": standin.tenant_id,
            "AZURE_CLIENT_ID": standin.client_id,
            "AZURE_CLIENT_SECRET": standin.client_secret,
            "AZURE_DISABLE_INSTANCE_DISCOVERY": True,
        }

    # --- the workspaces ----

    def _people(self) -> tuple[Any, Any]:
        from accounts.models import User
        from provisioning.models import AllowedRegion, AllowedSubscription, AllowedVmSize

        AllowedSubscription.objects.create(subscription_id=SUBSCRIPTION, display_name="bench")
        AllowedRegion.objects.create(name=REGION, display_name="East US 2", abbreviation=REGION_ABBV)
        for _, size, _, _ in CLUSTERS:
            AllowedVmSize.objects.create(name=size)
        lead = User.objects.create(username="bench-lead", upn="bench-lead@contoso.com")
        lead.groups.add(Group.objects.get_or_create(name=personas.TEAM_LEAD)[0])
        admin = User.objects.create(username="bench-admin", upn="bench-admin@contoso.com")
        admin.groups.add(Group.objects.get_or_create(name=personas.ADMIN)[0])
        return lead, admin

    def _provision(self, number: int, lead: Any, admin: Any, clients: Any) -> None:
        """The tutorial's example for team ``teamNNNN``: requested, approved and provisioned by the engine."""
        from provisioning.engine.executor import request_execute
        from provisioning.models import Step
        from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec
        from provisioning.workflow import services

        spec = RequestSpec(
            workspace=WorkspaceSpec(
                subscription_id=SUBSCRIPTION,
                region=REGION,
                department="bgmr",
                team=f"team{number:04d}",
                region_abbv=REGION_ABBV,
                environment="dev",
                security_group=SECURITY_GROUP,
                data_lake=True,
            ),
            clusters=tuple(ClusterSpec(n, s, p, m) for n, s, p, m in CLUSTERS),
            members=(
                *(MemberSpec(u, "team_lead") for u in LEADS),
                *(MemberSpec(u, "data_scientist") for u in SCIENTISTS),
            ),
        )
        cr = services.request_create(requester=lead, kind="new_workspace", spec=spec, lead_joins=False)
        services.request_submit(request_id=cr.pk, actor=lead)
        services.request_approve(request_id=cr.pk, approver=admin)
        outcome = request_execute(request_id=cr.pk, clients=clients)
        if outcome != "succeeded":
            failed = Step.objects.filter(run__change_request_id=cr.pk, status=Step.Status.FAILED)
            raise CommandError(
                f"provisioning workspace {number} ended {outcome}: "
                + "; ".join(f"{s.key}: {s.error_code} {s.error_message}" for s in failed)
            )

    # --- the pass ----

    def _run(self, standin: Any, options: dict[str, Any]) -> dict[str, Any]:
        from provisioning.azure.clients import AzureClients
        from provisioning.engine.reconcile import reconcile
        from provisioning.models import ObservedResource

        count, parallel, scale = options["workspaces"], options["parallel"], options["latency_scale"]
        for upn in (*LEADS, *SCIENTISTS):
            standin.add_user(upn)
        standin.add_group(SECURITY_GROUP)
        lead, admin = self._people()
        clients = AzureClients.from_settings(settings)
        try:
            started = time.monotonic()
            with _quiet_setup():
                for number in range(1, count + 1):
                    self._provision(number, lead, admin, clients)
            setup = time.monotonic() - started
            held = self._held(standin)
            clients.credential().get_token(f"{settings.AZURE_ARM_ENDPOINT}/.default")  # not part of the pass
            standin.set_latency_scale(scale)
            standin.state.clear_requests()
            started = time.monotonic()
            summary = reconcile(clients=clients, parallel=parallel)
            wall = time.monotonic() - started
            log = standin.state.requests
        finally:
            clients.close()
        if summary["errors"]:
            raise CommandError("the pass could not read some workspaces:\n" + "\n".join(summary["errors"]))
        observed = ObservedResource.objects.count()
        return self._figures(count, parallel, scale, setup, wall, summary, log, held, observed)

    def _held(self, standin: Any) -> dict[str, float]:
        """What Azure holds per workspace, on average (the pass must read all of it)."""
        from collections import Counter

        with standin.state.lock:
            kinds = Counter(str(r.get("type", "")).lower() for r in standin.state.resources.values())
            assignments = sum(
                "/resourcegroups/" in str(a.get("properties", {}).get("scope", "")).lower()
                for a in standin.state.role_assignments.values()
            )
        groups = max(kinds.pop("microsoft.resources/resourcegroups", 0), 1)
        clusters = kinds.pop("microsoft.machinelearningservices/workspaces/computes", 0)
        resources = sum(  # top-level resources in the groups (deployments are the group's history)
            n
            for kind, n in kinds.items()
            if kind.count("/") == 1 and not kind.startswith("microsoft.resources/")
        )
        return {
            "resources": resources / groups,
            "clusters": clusters / groups,
            "role_assignments": assignments / groups,
        }

    def _figures(
        self,
        count: int,
        parallel: int,
        scale: float,
        setup: float,
        wall: float,
        summary: dict[str, Any],
        log: list[Any],
        held: dict[str, float],
        observed: int,
    ) -> dict[str, Any]:
        def area(operation: str) -> str:
            return operation.split(".", 1)[0] if operation.startswith(("graph.", "entra.")) else "arm"

        arm = [r for r in log if area(r.operation) == "arm"]
        reads = [r for r in arm if r.method in ("GET", "HEAD")]
        writes = [r for r in arm if r.method not in ("GET", "HEAD")]
        graph = [r for r in log if area(r.operation) == "graph"]
        tokens = [r for r in log if area(r.operation) == "entra"]
        per_operation: dict[str, int] = {}
        for r in log:
            per_operation[r.operation] = per_operation.get(r.operation, 0) + 1
        rate = len(reads) / wall if wall else 0.0
        low = bucket_low_water([r.arrived for r in reads])
        lasts = bucket_lasts(rate)
        reads_per_workspace = len(reads) / count
        passes_per_hour = 60.0 / max(settings.RECONCILE_INTERVAL_MINUTES, 1 / 60)
        hourly = len(reads) * passes_per_hour
        counted = sum(w["reads"] for w in summary["workspaces"])
        return {
            "workspaces": count,
            "parallel": parallel,
            "latency_scale": scale,
            "held_per_workspace": {k: round(v, 1) for k, v in held.items()},
            "setup_seconds": round(setup, 2),
            "arm_reads": len(reads),
            "arm_reads_per_workspace": round(reads_per_workspace, 2),
            "arm_reads_counted_by_reconcile": counted,
            "arm_writes": len(writes),
            "graph_calls": len(graph),
            "token_requests": len(tokens),
            "requests_per_operation": dict(sorted(per_operation.items())),
            "wall_seconds": round(wall, 3),
            "wall_seconds_per_100_workspaces": round(wall * 100 / count, 2),
            "reads_per_second": round(rate, 1),
            "drift_items": sum(len(w["drift"]) for w in summary["workspaces"]),
            "observed_rows": observed,
            "target_reads_per_workspace": TARGET_READS_PER_WORKSPACE,
            "meets_target": reads_per_workspace <= TARGET_READS_PER_WORKSPACE,
            "budget": {
                "model": "token bucket per subscription, principal and region (ARM, from 2024)",
                "bucket": BUCKET_SIZE,
                "refill_per_second": REFILL_PER_SECOND,
                "fewest_tokens_left": round(low, 1),
                "under": low >= 0,
                "reads_before_dry_at_this_rate": None if lasts is None else int(lasts),
                "workspaces_before_dry_at_this_rate": (
                    None
                    if lasts is None
                    else int(lasts / reads_per_workspace)
                    if reads_per_workspace
                    else None
                ),
                "hourly_before_2024": HOURLY_READS_BEFORE_2024,
                "reconcile_interval_minutes": settings.RECONCILE_INTERVAL_MINUTES,
                "reads_per_hour_at_interval": round(hourly),
                "workspaces_within_hourly": (
                    int(HOURLY_READS_BEFORE_2024 / passes_per_hour / reads_per_workspace)
                    if reads_per_workspace
                    else None
                ),
                "under_hourly": hourly <= HOURLY_READS_BEFORE_2024,
            },
        }

    def _report(self, f: dict[str, Any]) -> None:
        w = self.stdout.write
        b = f["budget"]
        held = f["held_per_workspace"]
        w(
            f"One reconcile pass over {f['workspaces']} workspaces against the stand-in "
            f"({f['parallel']} at once, read latency scale {f['latency_scale']:g})"
        )
        w(
            f"  each workspace holds   {held['resources']:g} resources, {held['clusters']:g} clusters, "
            f"{held['role_assignments']:g} role assignments (provisioned in {f['setup_seconds']:.1f} s, not timed)"
        )
        w(f"  workspaces             {f['workspaces']:8d}")
        w(
            f"  ARM reads              {f['arm_reads']:8d}   ({f['arm_reads_counted_by_reconcile']} counted "
            "by the reconcile itself)"
        )
        verdict = "meets" if f["meets_target"] else "MISSES"
        w(
            f"  ARM reads / workspace  {f['arm_reads_per_workspace']:8.2f}   "
            f"(target <= {f['target_reads_per_workspace']}: {verdict})"
        )
        w(f"  ARM writes             {f['arm_writes']:8d}")
        w(f"  Graph calls            {f['graph_calls']:8d}   (token requests {f['token_requests']})")
        w(f"  wall time              {f['wall_seconds']:8.2f} s")
        w(f"  wall / 100 workspaces  {f['wall_seconds_per_100_workspaces']:8.2f} s")
        w(f"  drift found            {f['drift_items']:8d}   (none expected)")
        w(
            f"  reads per second       {f['reads_per_second']:8.1f}   (ARM refills {b['refill_per_second']:g} "
            f"a second into a bucket of {b['bucket']})"
        )
        w(
            f"  token bucket           fewest tokens left {b['fewest_tokens_left']:g} of {b['bucket']}: "
            + ("under the budget" if b["under"] else "OVER the budget (reads would be throttled)")
        )
        if b["workspaces_before_dry_at_this_rate"] is None:
            w(
                "                         at this rate the bucket never runs dry, whatever the number of workspaces"
            )
        else:
            w(
                f"                         at this rate a pass of about {b['workspaces_before_dry_at_this_rate']} "
                "workspaces would empty it"
            )
        w(
            f"  hourly (before 2024)   {b['reads_per_hour_at_interval']:8d}   reads an hour at one pass every "
            f"{b['reconcile_interval_minutes']:g} min, of {b['hourly_before_2024']:,}: "
            + ("under" if b["under_hourly"] else "OVER")
            + f" (room for about {b['workspaces_within_hourly']:,} workspaces)"
        )
        w("  requests per operation:")
        for operation, n in f["requests_per_operation"].items():
            w(f"    {operation:34} {n:6d}")
