"""Adopting workspaces the portal did not make (the tutorial's scripts did), and taking over their management.

- ``discovery_request``: an admin asks for a read of Azure; a worker (``provisioning.engine.adoption``)
  lists the allowed subscriptions' AzureML workspaces the portal does not hold and records the result with
  ``discovery_record`` on a ``DiscoveryScan``. The discover page shows the latest one: the web never waits
  on Azure.
- ``workspace_adopt``: the workspace (as the latest scan found it) becomes a ``Workspace`` row that is
  *observed*: shown, reconciled and reported, never modified (no request, no remediation, no run writes to
  it). Its clusters become ``Cluster`` rows and the role assignments of the portal's Team Lead and Data
  Scientist roles on the workspace become memberships; everything else is left for the reconcile to report.
  A reconcile of it is queued at once.
- ``workspace_take_over``: after the confirmation page listing ``takeover_scopes``, a worker adds the
  portal's ``managed-by`` tag to each resource (audited one by one, ``takeover_resource_tagged``), then
  ``takeover_finished`` makes the workspace managed. Safe twice: tagging again changes nothing.

Admins only; every action audited.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import naming, queue
from provisioning.arm import (
    APP_INSIGHTS_PROVIDER,
    KEY_VAULT_PROVIDER,
    OWNERSHIP_TAG,
    OWNERSHIP_VALUE,
    REGISTRY_PROVIDER,
    STORAGE_PROVIDER,
    WORKSPACE_PROVIDER,
    arm_id,
)
from provisioning.audit import audit_record
from provisioning.models import Cluster, DiscoveryScan, Membership, ResourceState, Workspace
from provisioning.workflow.reconcile import RECONCILE_WORKSPACE_JOB, reconcile_job_id
from provisioning.workflow.transitions import RequestError

DISCOVER_JOB = "provisioning.jobs.discover_workspaces"
TAKE_OVER_JOB = "provisioning.jobs.take_over_workspace"
# A scan not finished after this long is taken as lost (its worker died): another may be asked for.
SCAN_PATIENCE = timedelta(minutes=10)
PERSONA_OF_ROLE = {"team lead": "team_lead", "data scientist": "data_scientist"}
PRINCIPAL_TYPES = {"user": Membership.PrincipalType.USER, "group": Membership.PrincipalType.GROUP}


class AdoptionError(RequestError):
    """An adoption or take-over cannot be done as asked; the message says why and what to do."""


# The operator of a management command run without --admin, audited as "cli:<OS user>": whoever runs commands
# on the portal's host already holds its database. Never a web request's actor (views pass the signed-in user).
CLI_ACTOR_PREFIX = "cli:"


def _require_admin(actor: Any, what: str) -> None:
    if isinstance(actor, str) and actor.startswith(CLI_ACTOR_PREFIX):
        return
    if not personas.is_admin(actor):
        raise PermissionDenied(f"only admins can {what}")


def _user_or_none(actor: Any) -> User | None:
    """The actor when a person (a system actor such as ``cli:<user>`` is named in the audit only)."""
    return actor if isinstance(actor, User) else None


def take_over_job_id(workspace_id: int) -> str:
    """One take-over job per workspace: asking twice queues it once."""
    return f"take-over-workspace-{workspace_id}"


# --- discovery ---------------------------------------------------------------------------------------------


def held_workspaces() -> tuple[set[str], set[str]]:
    """The Azure ids and the names (lower case) of every workspace the portal holds, in any state."""
    rows = Workspace.objects.values_list("azure_id", "workspace_name")
    return {a.lower() for a, _ in rows if a}, {n.lower() for _, n in rows}


def discovery_latest() -> DiscoveryScan | None:
    """The latest finished scan, or None before the first."""
    return DiscoveryScan.objects.filter(finished_at__isnull=False).order_by("-finished_at", "-pk").first()


def discovery_pending() -> DiscoveryScan | None:
    """A scan asked for and not finished (nor given up on), if any."""
    since = timezone.now() - SCAN_PATIENCE
    return DiscoveryScan.objects.filter(finished_at__isnull=True, requested_at__gte=since).first()


def discovery_request(*, actor: Any) -> DiscoveryScan:
    """Queue a read of Azure for workspaces the portal does not hold (one at a time; audited)."""
    _require_admin(actor, "discover workspaces")
    with transaction.atomic():
        pending = discovery_pending()
        if pending is not None:
            return pending
        scan = DiscoveryScan.objects.create(requested_by=_user_or_none(actor))
        audit_record(actor=actor, action="discovery.requested", obj=scan, message="read Azure for workspaces")
        transaction.on_commit(
            lambda: queue.job_enqueue(
                DISCOVER_JOB,
                scan.pk,
                job_id=f"discover-workspaces-{scan.pk}",
                description="discover AzureML workspaces the portal does not hold",
                result_ttl=3600,
                when_down="ask again once Redis is back",
            )
        )
    return scan


def discovery_start(*, scan_id: int | None = None, actor: Any = None) -> DiscoveryScan | None:
    """Claim a scan for this worker (None: another has it, or it is done); with no id, a new scan."""
    if scan_id is None:
        return DiscoveryScan.objects.create(requested_by=_user_or_none(actor), started_at=timezone.now())
    claimed = DiscoveryScan.objects.filter(pk=scan_id, finished_at__isnull=True, started_at__isnull=True)
    if not claimed.update(started_at=timezone.now()):
        return None
    return DiscoveryScan.objects.get(pk=scan_id)


def discovery_record(*, scan_id: int, result: dict[str, Any], error: str = "") -> DiscoveryScan:
    """Store what a scan found (the ``discover_workspaces --json`` document) and when."""
    with transaction.atomic():
        scan = DiscoveryScan.objects.select_for_update().get(pk=scan_id)
        scan.result, scan.error, scan.finished_at = result, error, timezone.now()
        scan.save(update_fields=["result", "error", "finished_at"])
        audit_record(
            actor="discovery",
            action="discovery.finished",
            obj=scan,
            after={"workspaces": [w["azure_id"] for w in scan.workspaces], "error": error},
            message=f"{len(scan.workspaces)} workspaces not held by the portal",
        )
    return scan


def convention_of(name: str, resource_group: str, region: str) -> dict[str, Any]:
    """The ``convention`` member of a discovered workspace (see ``naming.parse_workspace_name``)."""
    match = naming.parse_workspace_name(name, resource_group, location=region)
    found = match.as_dict()
    return {
        "follows": found["follows"],
        **{k: found[k] for k in ("department", "team", "region", "environment", "region_abbv")},
        "reason": found["reason"] or ("" if match.follows else "does not follow the convention"),
    }


# --- adopting ----------------------------------------------------------------------------------------------


def team_lead_for(team_lead: User | str) -> User:
    """The portal user who will own an adopted workspace: a team lead, given as a user or by UPN or email.

    Personas come from Entra ID app roles at sign-in, so the team lead must have signed in once (as the
    Team Lead app role): a user made here could not act as one.
    """
    if isinstance(team_lead, User):
        user = team_lead
    else:
        name = team_lead.strip()
        found = User.objects.filter(Q(upn__iexact=name) | Q(email__iexact=name) | Q(username=name)).first()
        if found is None:
            raise AdoptionError(
                f"no portal user '{name}': the team lead must sign in to the portal once (with the "
                "Portal.TeamLead app role) before a workspace can be given to them"
            )
        user = found
    if not personas.is_team_lead(user):
        raise AdoptionError(f"{user.principal_name} is not a team lead in the portal")
    return user


def _name_of(azure_id: str) -> str:
    return azure_id.rstrip("/").rsplit("/", 1)[-1] if azure_id else ""


def _names(found: dict[str, Any]) -> dict[str, str]:
    """The workspace's resource names: its own dependencies, and by the convention its data storage."""
    dependent = found.get("dependent_resources", {})
    names = {
        "storage_work": _name_of(dependent.get("storage_account", "")),
        "key_vault": _name_of(dependent.get("key_vault", "")),
        "registry": _name_of(dependent.get("container_registry", "")),
        "app_insights": _name_of(dependent.get("app_insights", "")),
        "storage_data": "",
        "data_lake": "",
    }
    if not (names["storage_work"] and names["key_vault"]):
        raise AdoptionError(
            f"workspace {found['name']} names no storage account or key vault: it cannot be adopted"
        )
    if found["convention"]["follows"]:
        base = found["name"].lower().removesuffix(naming.SUFFIX_WORKSPACE)
        storages = {
            r["name"].lower()
            for r in found.get("resources", [])
            if r["type"].lower() == STORAGE_PROVIDER.lower()
        }
        for key, suffix in (
            ("storage_data", naming.SUFFIX_STORAGE_DATA),
            ("data_lake", naming.SUFFIX_DATA_LAKE),
        ):
            if base + suffix in storages:
                names[key] = base + suffix
    return names


def _workspace_row(found: dict[str, Any], owner: User, actor: Any) -> Workspace:
    convention, names = found["convention"], _names(found)
    return Workspace.objects.create(
        subscription_id=found["subscription_id"],
        region=found["region"],
        department=convention["department"][: naming.DEPARTMENT_MAX],
        team=convention["team"][: naming.TEAM_TAG_MAX],
        region_abbv=convention["region_abbv"],
        environment=convention["environment"],
        data_lake=bool(names["data_lake"]),
        resource_group=found["resource_group"],
        workspace_name=found["name"],
        storage_work=names["storage_work"],
        storage_data=names["storage_data"],
        data_lake_name=names["data_lake"],
        key_vault=names["key_vault"],
        registry=names["registry"],
        app_insights=names["app_insights"],
        azure_id=found["azure_id"],
        owner=owner,
        state=ResourceState.ACTIVE,
        management=Workspace.Management.OBSERVED,
        adopted_at=timezone.now(),
        adopted_by=_user_or_none(actor),
    )


def _clusters(ws: Workspace, found: dict[str, Any]) -> list[Cluster]:
    return Cluster.objects.bulk_create(
        Cluster(
            workspace=ws,
            name=c["name"],
            vm_size=c["vm_size"],
            priority=c["priority"],
            min_nodes=c["min_nodes"],
            max_nodes=max(c["max_nodes"], c["min_nodes"]),
            idle_seconds=c["idle_seconds"],
            state=ResourceState.ACTIVE,
        )
        for c in found.get("clusters", [])
    )


def _memberships(ws: Workspace, found: dict[str, Any]) -> list[Membership]:
    """The portal's personas among the role assignments on the workspace itself (a team lead wins)."""
    chosen: dict[str, Membership] = {}
    for a in found.get("role_assignments", []):
        persona = PERSONA_OF_ROLE.get(str(a.get("role", "")).lower())
        kind = PRINCIPAL_TYPES.get(str(a.get("principal_type", "")).lower())
        if persona is None or kind is None or a["scope"].lower().rstrip("/") != ws.azure_id.lower():
            continue
        key = a["principal_id"].lower()
        if key in chosen and chosen[key].persona == "team_lead":
            continue
        chosen[key] = Membership(
            workspace=ws,
            principal_type=kind,
            principal_name=a.get("principal_name") or a["principal_id"],
            object_id=a["principal_id"],
            persona=persona,
            state=ResourceState.ACTIVE,
        )
    return Membership.objects.bulk_create(chosen.values())


def workspace_adopt(*, azure_id: str, team_lead: User | str, actor: Any, manage: bool = False) -> Workspace:
    """Adopt a discovered workspace as observed (see the module's docstring); ``manage`` takes it over too.

    Refused (``AdoptionError``) when the portal already holds it, when the latest discovery did not find
    it, or when the team lead is not one.
    """
    _require_admin(actor, "adopt workspaces")
    owner = team_lead_for(team_lead)
    scan = discovery_latest()
    found = scan.workspace(azure_id) if scan is not None else None
    with transaction.atomic():
        held = Workspace.objects.select_for_update().filter(
            Q(azure_id__iexact=azure_id.strip()) | Q(workspace_name__iexact=_name_of(azure_id.strip()))
        )
        existing = held.first()
        if existing is not None:
            raise AdoptionError(
                f"the portal already holds workspace {existing.workspace_name} "
                f"({existing.get_management_display().lower()}): nothing to adopt"
            )
        if found is None:
            raise AdoptionError(
                f"the latest discovery did not find {azure_id}: discover workspaces again, then adopt it"
            )
        ws = _workspace_row(found, owner, actor)
        clusters, members = _clusters(ws, found), _memberships(ws, found)
        audit_record(
            actor=actor,
            action="workspace.adopted",
            obj=ws,
            workspace_name=ws.workspace_name,
            after={
                "azure_id": ws.azure_id,
                "owner": owner.principal_name,
                "convention": found["convention"],
                "clusters": [c.name for c in clusters],
                "memberships": [f"{m.principal_name} ({m.persona})" for m in members],
                "discovery": scan.pk if scan else None,
            },
            message=f"adopted as observed, owned by {owner.principal_name}",
        )
        transaction.on_commit(lambda: _reconcile_enqueue(ws))
    if manage:
        workspace_take_over(workspace_id=ws.pk, actor=actor)
    return ws


def _reconcile_enqueue(ws: Workspace) -> None:
    queue.job_enqueue(
        RECONCILE_WORKSPACE_JOB,
        ws.pk,
        job_id=reconcile_job_id(ws.pk),
        description=f"reconcile workspace {ws.workspace_name} with Azure",
        result_ttl=3600,
        when_down="the scheduled reconcile reads it at its next tick",
    )


# --- taking over -------------------------------------------------------------------------------------------


def takeover_scopes(ws: Workspace) -> list[dict[str, str]]:
    """Everything of the workspace that take-over tags: kind, name and ARM id (the confirmation page's list)."""
    sub, group = ws.subscription_id, ws.resource_group
    found = [
        {"kind": "resource group", "name": group, "azure_id": f"/subscriptions/{sub}/resourceGroups/{group}"}
    ]
    resources = [
        ("workspace", WORKSPACE_PROVIDER, ws.workspace_name),
        ("storage account", STORAGE_PROVIDER, ws.storage_work),
        ("storage account", STORAGE_PROVIDER, ws.storage_data),
        ("storage account", STORAGE_PROVIDER, ws.data_lake_name),
        ("key vault", KEY_VAULT_PROVIDER, ws.key_vault),
        ("container registry", REGISTRY_PROVIDER, ws.registry),
        ("application insights", APP_INSIGHTS_PROVIDER, ws.app_insights),
    ]
    found += [{"kind": k, "name": n, "azure_id": arm_id(sub, group, p, n)} for k, p, n in resources if n]
    workspace_id = arm_id(sub, group, WORKSPACE_PROVIDER, ws.workspace_name)
    clusters = ws.clusters.filter(state=ResourceState.ACTIVE).order_by("name")
    found += [
        {"kind": "cluster", "name": c.name, "azure_id": f"{workspace_id}/computes/{c.name}"} for c in clusters
    ]
    return found


def workspace_take_over(*, workspace_id: int, actor: Any) -> Workspace:
    """Queue the take-over of an observed workspace: its resources get the portal's tag, then it is managed."""
    _require_admin(actor, "take over the management of workspaces")
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        if ws is None:
            raise AdoptionError(f"no workspace #{workspace_id}")
        if not ws.is_observed:
            raise AdoptionError(f"workspace {ws.workspace_name} is already managed by the portal")
        if ws.state != ResourceState.ACTIVE:
            raise AdoptionError(
                f"workspace {ws.workspace_name} is {ws.get_state_display().lower()}, not active"
            )
        scopes = takeover_scopes(ws)
        audit_record(
            actor=actor,
            action="workspace.take_over_requested",
            obj=ws,
            workspace_name=ws.workspace_name,
            after={"tag": {OWNERSHIP_TAG: OWNERSHIP_VALUE}, "resources": [s["azure_id"] for s in scopes]},
            message=f"the portal's tag goes on {len(scopes)} resources",
        )
        actor_id = getattr(actor, "pk", None)
        transaction.on_commit(
            lambda: queue.job_enqueue(
                TAKE_OVER_JOB,
                ws.pk,
                actor_id,
                job_id=take_over_job_id(ws.pk),
                description=f"take over the management of workspace {ws.workspace_name}",
                when_down="ask for the take-over again once Redis is back",
            )
        )
    return ws


def takeover_resource_tagged(
    *, workspace_id: int, scope: dict[str, str], tags: dict[str, str], actor: Any
) -> None:
    """Audit one resource the take-over tagged (``tags``: what it carries now)."""
    with transaction.atomic():
        ws = Workspace.objects.get(pk=workspace_id)
        audit_record(
            actor=actor,
            action="workspace.resource_tagged",
            obj=ws,
            workspace_name=ws.workspace_name,
            after={**scope, "tags": tags},
            message=f"{scope['kind']} {scope['name']} tagged {OWNERSHIP_TAG}={OWNERSHIP_VALUE}",
        )


def takeover_finished(*, workspace_id: int, actor: Any) -> Workspace:
    """Every resource carries the tag: the workspace is managed from now on (idempotent)."""
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().get(pk=workspace_id)
        if not ws.is_observed:
            return ws
        ws.management = Workspace.Management.MANAGED
        ws.save(update_fields=["management"])
        audit_record(
            actor=actor,
            action="workspace.taken_over",
            obj=ws,
            workspace_name=ws.workspace_name,
            before={"management": Workspace.Management.OBSERVED},
            after={"management": Workspace.Management.MANAGED},
            message="managed by the portal from now on",
        )
    return ws
