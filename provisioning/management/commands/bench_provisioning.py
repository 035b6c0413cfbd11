"""``manage.py bench_provisioning [--latency-scale F]``: how close provisioning gets to its critical path.

Provisions the tutorial's example (a workspace with its storage, data lake, key vault, registry and
app insights, its 3 clusters, 2 team leads, 2 data scientists and a security group) against a fresh
local Azure stand-in that answers with typical Azure durations scaled by F, through the real SDK
clients and the real engine, in process, in a throwaway database, with every RQ queue on a throwaway
embedded Redis (the jobs that submit and approval queue never reach the configured Redis). Prints the wall time, the critical path of
the dependency graph, the sequential sum (what the tutorial's scripts pay), the ratio wall /
critical path, and the requests sent per operation.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import connection
from django.test.utils import override_settings

from accounts import personas
from provisioning.management.embedded_redis import isolated_queues
from provisioning.management.trust import standin_trusted

TUTORIAL_SUBSCRIPTION = "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27"
LEADS = ("admin1@contoso.com", "user1@contoso.com")
SCIENTISTS = ("user2@contoso.com", "user3@contoso.com")
CLUSTERS = (
    ("ds3-v2-cluster", "STANDARD_DS3_V2", "low_priority", 1),
    ("ds13-v2-2ndclust", "STANDARD_D13_V2", "dedicated", 2),
    ("nv6-gpucluster", "STANDARD_NV6", "low_priority", 1),
)


class Command(BaseCommand):
    help = "Benchmark provisioning of the tutorial's example against the local Azure stand-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--latency-scale",
            type=float,
            default=0.1,
            help="typical Azure durations are multiplied by this (default 0.1: a 60 s deployment takes 6 s)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from provisioning.standin import StandIn
        from provisioning.standin.faults import REALISTIC_LATENCY

        scale = options["latency_scale"]
        old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
        standin = StandIn(latency=REALISTIC_LATENCY, latency_scale=scale)
        base_url = standin.start()
        try:
            with (
                standin_trusted(standin),
                override_settings(**self._azure_settings(standin, base_url)),
                isolated_queues(),
            ):
                self._run(standin, scale)
        finally:
            standin.stop()
            connection.creation.destroy_test_db(old_name, verbosity=0)

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

    def _approved_request(self) -> int:
        from accounts.models import User
        from provisioning.models import AllowedRegion, AllowedSubscription, AllowedVmSize
        from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec
        from provisioning.workflow import services

        AllowedSubscription.objects.create(subscription_id=TUTORIAL_SUBSCRIPTION, display_name="bench")
        AllowedRegion.objects.create(name="eastus2", display_name="East US 2", abbreviation="e2")
        for _, size, _, _ in CLUSTERS:
            AllowedVmSize.objects.create(name=size)
        lead = User.objects.create(username="bench-lead", upn="bench-lead@contoso.com")
        lead.groups.add(Group.objects.get_or_create(name=personas.TEAM_LEAD)[0])
        admin = User.objects.create(username="bench-admin", upn="bench-admin@contoso.com")
        admin.groups.add(Group.objects.get_or_create(name=personas.ADMIN)[0])
        spec = RequestSpec(
            workspace=WorkspaceSpec(
                subscription_id=TUTORIAL_SUBSCRIPTION,
                region="eastus2",
                department="bgmr",
                team="bluegranit",
                region_abbv="e2",
                environment="dev",
                security_group="datasciencegroup",
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
        return cr.pk

    def _run(self, standin: Any, scale: float) -> None:
        from provisioning.azure.clients import AzureClients
        from provisioning.engine.executor import request_execute
        from provisioning.models import Step
        from provisioning.steps import critical_path, steps_for_plan

        for upn in (*LEADS, *SCIENTISTS):
            standin.add_user(upn)
        standin.add_group("datasciencegroup")
        request_id = self._approved_request()
        clients = AzureClients.from_settings(settings)
        clients.credential().get_token(f"{settings.AZURE_ARM_ENDPOINT}/.default")  # not part of the run
        standin.state.clear_requests()

        started = time.monotonic()
        outcome = request_execute(request_id=request_id, clients=clients)
        wall = time.monotonic() - started

        steps = list(Step.objects.filter(run__change_request_id=request_id))
        durations = {s.key: s.duration_seconds or 0.0 for s in steps}
        from provisioning.models import ChangeRequest

        plan = ChangeRequest.objects.get(pk=request_id).plan or {}
        critical, path = critical_path(steps_for_plan(plan), durations)
        sequential = sum(durations.values())
        self._report(
            outcome, scale, wall, critical, path, sequential, len(steps), standin.state.operation_counts()
        )
        clients.close()

    def _report(
        self,
        outcome: str,
        scale: float,
        wall: float,
        critical: float,
        path: list[str],
        sequential: float,
        step_count: int,
        counts: dict[str, int],
    ) -> None:
        w = self.stdout.write
        w(f"Provisioning the tutorial's example against the stand-in (latency scale {scale:g})")
        w(f"  outcome              {outcome}  ({step_count} steps)")
        w(f"  wall time            {wall:8.2f} s")
        w(f"  critical path        {critical:8.2f} s   ({' -> '.join(path)})")
        w(f"  sequential sum       {sequential:8.2f} s   (the tutorial's scripts pay this)")
        ratio = wall / critical if critical else float("nan")
        w(f"  wall / critical path {ratio:8.2f}     (target <= 1.25)")
        w(f"  speed-up vs scripts  {sequential / wall if wall else float('nan'):8.2f} x")
        w("  requests per operation:")
        for operation, count in sorted(counts.items()):
            w(f"    {operation:32} {count:5d}")
