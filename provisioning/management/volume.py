"""An enterprise's volume of portal data, generated fast (bulk inserts) for ``manage.py bench_web``.

At scale 1: 200 teams, each with one workspace (3 clusters, 3 members) and its budgets; 10,001
requests of which 489 wait for approval; 100,002 audit events, hash-chained as ``audit_record``
chains them. Rows are consistent with what the services make (statuses, plans, desired state), but
they are written with ``bulk_create``: a benchmark needs the volume in seconds, not the history.
Only ever run it against a throwaway database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib.auth.models import Group
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import naming
from provisioning.audit import GENESIS_HASH
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    AuditEvent,
    ChangeRequest,
    Cluster,
    CoreUsage,
    Membership,
    Persona,
    Priority,
    ResourceState,
    TeamBudget,
    VmPrice,
    VmSize,
    Workspace,
)
from provisioning.plan import build_plan
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec

SUBSCRIPTION = "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27"
REGION, ABBV = "eastus2", "e2"
# (name, family, vCPUs, GPUs, memory GB, USD per hour dedicated)
SIZES = (
    ("Standard_DS3_v2", "standardDSv2Family", 4, 0, 14.0, "0.293"),
    ("Standard_D13_v2", "standardDv2Family", 8, 0, 56.0, "0.741"),
    ("Standard_NV6", "standardNVFamily", 6, 1, 56.0, "1.14"),
)
FULL = {"teams": 200, "requests": 10_001, "waiting": 489, "events": 100_002}
BATCH = 5000


@dataclass(frozen=True)
class Volume:
    """What was generated, and the rows a benchmark opens."""

    teams: int
    requests: int
    waiting: int
    events: int
    admin: User
    lead: User
    waiting_request: ChangeRequest
    workspace: Workspace


def _count(name: str, scale: float) -> int:
    return max(2, round(FULL[name] * scale))


def _user(username: str, persona: str) -> User:
    user = User.objects.create(
        username=username, upn=f"{username}@contoso.com", email=f"{username}@contoso.com"
    )
    user.groups.add(Group.objects.get_or_create(name=persona)[0])
    return user


def _policy() -> None:
    AllowedSubscription.objects.create(subscription_id=SUBSCRIPTION, display_name="Enterprise data science")
    AllowedRegion.objects.create(name=REGION, display_name="East US 2", abbreviation=ABBV)
    now = timezone.now()
    for name, family, vcpus, gpus, memory, price in SIZES:
        AllowedVmSize.objects.create(name=name.upper())
        VmSize.objects.create(
            region=REGION,
            name=name.upper(),
            display_name=name,
            family=family,
            vcpus=vcpus,
            gpus=gpus,
            memory_gb=memory,
            refreshed_at=now,
        )
        for priority, factor in ((Priority.DEDICATED, 1), (Priority.LOW_PRIORITY, Decimal("0.2"))):
            VmPrice.objects.update_or_create(
                vm_size=name.upper(), priority=priority, defaults={"hourly_usd": Decimal(price) * factor}
            )
        CoreUsage.objects.create(
            subscription_id=SUBSCRIPTION,
            region=REGION,
            scope=CoreUsage.Scope.FAMILY,
            family=family,
            name=f"{family} Cluster Dedicated vCPUs",
            current=120,
            limit=4000,
            refreshed_at=now,
        )
    for scope in (CoreUsage.Scope.DEDICATED_TOTAL, CoreUsage.Scope.LOW_PRIORITY_TOTAL):
        CoreUsage.objects.create(
            subscription_id=SUBSCRIPTION,
            region=REGION,
            scope=scope,
            name=scope,
            current=360,
            limit=12000,
            refreshed_at=now,
        )


def _team(i: int) -> tuple[str, str]:
    return f"dp{i // 50:02d}", f"team{i:04d}"


def _workspace(i: int, owner: User) -> Workspace:
    department, team = _team(i)
    names = naming.resource_names(naming.NamingInput(department, team, REGION, ABBV, "dev"), data_lake=False)
    return Workspace(
        subscription_id=SUBSCRIPTION,
        region=REGION,
        department=department,
        team=team,
        region_abbv=ABBV,
        environment="dev",
        resource_group=names.resource_group,
        workspace_name=names.workspace,
        storage_work=names.storage_work,
        storage_data=names.storage_data,
        key_vault=names.key_vault,
        registry=names.registry,
        app_insights=names.app_insights,
        azure_id=f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{names.resource_group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/{names.workspace}",
        owner=owner,
        state=ResourceState.ACTIVE,
    )


def _spec(ws: Workspace, lead: User) -> RequestSpec:
    return RequestSpec(
        workspace=WorkspaceSpec(
            subscription_id=SUBSCRIPTION,
            region=REGION,
            department=ws.department,
            team=ws.team,
            region_abbv=ABBV,
            environment="dev",
        ),
        clusters=tuple(
            ClusterSpec(f"cl{k}", SIZES[k][0].upper(), Priority.LOW_PRIORITY, 2) for k in range(3)
        ),
        members=(
            MemberSpec(lead.upn, Persona.TEAM_LEAD),
            MemberSpec(f"ds-{ws.team}@contoso.com", "data_scientist"),
        ),
    )


def _estate(teams: int, leads: list[User]) -> tuple[list[Workspace], list[ChangeRequest]]:
    """One workspace per team, made by an approved new-workspace request, with clusters and members."""
    workspaces = Workspace.objects.bulk_create([_workspace(i, leads[i]) for i in range(teams)])
    origins = []
    now = timezone.now()
    for ws, lead in zip(workspaces, leads, strict=True):
        spec = _spec(ws, lead)
        plan = build_plan(spec, kind=ChangeRequest.Kind.NEW_WORKSPACE, request_id=0, owner=lead.upn)
        origins.append(
            ChangeRequest(
                kind=ChangeRequest.Kind.NEW_WORKSPACE,
                status=ChangeRequest.Status.SUCCEEDED,
                requester=lead,
                workspace=ws,
                workspace_name=ws.workspace_name,
                spec=spec.to_json(),
                plan=plan,
                submitted_at=now,
                decided_at=now,
            )
        )
    origins = ChangeRequest.objects.bulk_create(origins, batch_size=BATCH)
    Cluster.objects.bulk_create(
        [
            Cluster(
                workspace=cr.workspace,
                change_request=cr,
                name=c["name"],
                vm_size=c["vm_size"],
                priority=c["priority"],
                max_nodes=c["max_nodes"],
                state=ResourceState.ACTIVE,
            )
            for cr in origins
            for c in cr.spec["clusters"]
        ],
        batch_size=BATCH,
    )
    Membership.objects.bulk_create(
        [
            Membership(
                workspace=cr.workspace,
                change_request=cr,
                principal_name=m["principal"],
                persona=m["persona"],
                state=ResourceState.ACTIVE,
            )
            for cr in origins
            for m in cr.spec["members"]
        ],
        batch_size=BATCH,
    )
    TeamBudget.objects.bulk_create(
        [
            TeamBudget(
                department=ws.department,
                team=ws.team,
                region=REGION,
                family=size[1],
                dedicated_cores=24,
                low_priority_cores=48,
            )
            for ws in workspaces
            for size in SIZES
        ],
        batch_size=BATCH,
    )
    return workspaces, origins


def _history(count: int, waiting: int, workspaces: list[Workspace], leads: list[User], admin: User) -> None:
    """More requests on the workspaces: decided ones, and ``waiting`` submitted cluster requests."""
    now = timezone.now()
    rows = []
    for n in range(count):
        ws, lead = workspaces[n % len(workspaces)], leads[n % len(leads)]
        waits = n < waiting
        spec = RequestSpec(
            clusters=(ClusterSpec(f"x{n}", SIZES[n % 3][0].upper(), Priority.LOW_PRIORITY, 2),)
        )
        rows.append(
            ChangeRequest(
                kind=ChangeRequest.Kind.ADD_CLUSTERS,
                status=ChangeRequest.Status.SUBMITTED if waits else ChangeRequest.Status.REJECTED,
                requester=lead,
                workspace=ws,
                workspace_name=ws.workspace_name,
                spec=spec.to_json(),
                submitted_at=now - timedelta(minutes=n),
                approver=None if waits else admin,
                decided_at=None if waits else now,
                reason="" if waits else "not this quarter",
                name_check=[],
            )
        )
    ChangeRequest.objects.bulk_create(rows, batch_size=BATCH)


def _events(count: int, requests: list[int], workspaces: list[str]) -> None:
    """``count`` audit events, chained: each one's hash covers its content and the previous hash."""
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
    start = timezone.now() - timedelta(days=365)
    batch: list[AuditEvent] = []
    for n in range(count):
        event = AuditEvent(
            created_at=start + timedelta(seconds=n * 300),
            actor=f"lead{n % 200}",
            action=("request.created", "request.submitted", "request.approved", "step.succeeded")[n % 4],
            object_type="change_request",
            object_id=str(requests[n % len(requests)]),
            request_id=requests[n % len(requests)],
            workspace_name=workspaces[n % len(workspaces)],
            before={"status": "draft"},
            after={"status": "submitted", "n": n},
            message="",
            prev_hash=last,
        )
        event.hash = hashlib.sha256((last + event.canonical()).encode()).hexdigest()
        last = event.hash
        batch.append(event)
        if len(batch) >= BATCH:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    AuditEvent.objects.bulk_create(batch)


def volume_fill(*, scale: float = 1.0) -> Volume:
    """Fill the (throwaway) database with the enterprise's volume times ``scale``."""
    teams, requests = _count("teams", scale), _count("requests", scale)
    waiting, events = min(_count("waiting", scale), requests - teams), _count("events", scale)
    _policy()
    admin = _user("bench-admin", personas.ADMIN)
    leads = [_user(f"lead{i}", personas.TEAM_LEAD) for i in range(teams)]
    workspaces, _origins = _estate(teams, leads)
    _history(requests - teams, waiting, workspaces, leads, admin)
    ids = list(ChangeRequest.objects.values_list("pk", flat=True)[:1000])
    _events(events, ids, [w.workspace_name for w in workspaces])
    lead = leads[0]
    waiting_request = ChangeRequest.objects.filter(
        requester=lead, status=ChangeRequest.Status.SUBMITTED
    ).first()
    assert waiting_request is not None, "the generator always makes waiting requests for the first team"  # nosec B101 # benchmark data generator's own invariant, not a security check
    return Volume(teams, requests, waiting, events, admin, lead, waiting_request, workspaces[0])


def summary(volume: Volume) -> dict[str, Any]:
    """The volume in numbers, as the benchmark prints them."""
    return {
        "teams": volume.teams,
        "workspaces": Workspace.objects.count(),
        "clusters": Cluster.objects.count(),
        "requests": ChangeRequest.objects.count(),
        "waiting": ChangeRequest.objects.filter(status=ChangeRequest.Status.SUBMITTED).count(),
        "audit_events": AuditEvent.objects.count(),
    }
