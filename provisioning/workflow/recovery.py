"""What happens to a request that failed: it is amended and runs again, or abandoned.

*Amend*: its team lead or an admin drops or replaces a member, or lowers or drops a cluster Azure did
not create, with a reason. An amendment that only narrows access and cost runs again at once,
continuing from what is done; one that widens either goes back to an approver who is not the amender.
*Abandon*: an admin keeps what Azure holds (the workspace becomes a managed workspace with what exists)
or rolls it back (a run deletes only what this request created, in reverse dependency order).

Every change goes through ``provisioning.workflow.transitions`` and is audited with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts import personas
from accounts.models import User
from provisioning import queue
from provisioning.audit import audit_record
from provisioning.capacity import cost
from provisioning.models import ChangeRequest, Cluster, Membership, ResourceState, Run, Step
from provisioning.plan import build_plan, role_assignments_for
from provisioning.problems import Problem, text_problem
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.steps import REMOVAL_TIERS
from provisioning.workflow import changes, principal_checks, selectors
from provisioning.workflow.transitions import (
    RequestError,
    TransitionError,
    request_locked,
    request_transition,
    resource_transition,
)
from provisioning.workflow.validation import spec_problems

Status = ChangeRequest.Status
Kind = ChangeRequest.Kind
AMENDABLE_KINDS = (Kind.NEW_WORKSPACE, Kind.ADD_CLUSTERS, Kind.GRANT_ACCESS)
MAX_REASON = 2000
MAX_CHANGES = 100


@dataclass(frozen=True)
class ClusterChange:
    """A cluster Azure did not create, lowered (fields given) or dropped."""

    name: str
    drop: bool = False
    vm_size: str | None = None
    priority: str | None = None
    min_nodes: int | None = None
    max_nodes: int | None = None


@dataclass(frozen=True)
class Amendment:
    """What changes in a failed request, and why."""

    reason: str
    drop_members: tuple[str, ...] = ()
    replace_members: tuple[tuple[str, str], ...] = ()  # (principal as requested, new principal)
    clusters: tuple[ClusterChange, ...] = ()


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise RequestError("say why", [Problem("reason", "a reason is required")])
    if len(reason) > MAX_REASON:
        raise RequestError("the reason is too long", [Problem("reason", f"at most {MAX_REASON} characters")])
    if (problem := text_problem("reason", reason, max_length=MAX_REASON, multiline=True)) is not None:
        raise RequestError("the reason cannot be saved", [problem])
    return reason


def _failed(request_id: int) -> ChangeRequest:
    cr = request_locked(request_id)
    if cr.kind == Kind.DECOMMISSION:  # its workspace is half removed: only a retry finishes it
        raise TransitionError(
            f"request #{cr.pk} is a decommission: an admin retries it, it is not amended or abandoned"
        )
    if cr.status != Status.FAILED:
        raise TransitionError(
            f"request #{cr.pk} is {cr.get_status_display().lower()}; only a failed request is amended or abandoned"
        )
    return cr


def done_steps(cr: ChangeRequest) -> dict[str, Step]:
    """The provisioning steps Azure completed for this request, over all its runs, by key."""
    return {
        s.key: s
        for s in Step.objects.filter(
            run__change_request=cr, run__purpose=Run.Purpose.PROVISION, status__in=Step.DONE
        ).order_by("run__number")
    }


def _grant_key(ra: dict[str, str]) -> str:
    return f"grant:{ra['principal'].lower()}:{ra['scope_type']}:{ra['scope_name']}:{ra['role']}"


# --- amend ------------------------------------------------------------------------------------------------


def _amended_members(
    spec: RequestSpec, amendment: Amendment
) -> tuple[RequestSpec, list[MemberSpec], list[MemberSpec]]:
    """The spec with members dropped or replaced; the members that leave, and those that come in."""
    by_name = {m.principal.lower(): m for m in spec.all_members()}
    replaced = {old.lower(): new.strip() for old, new in amendment.replace_members}
    leaving: list[MemberSpec] = []
    coming: list[MemberSpec] = []
    for name in [*(n.lower() for n in amendment.drop_members), *replaced]:
        if name not in by_name:
            raise RequestError(
                f"'{name}' is not a member of this request", [Problem("members", "unknown member")]
            )
        leaving.append(by_name[name])
    members: list[MemberSpec] = []
    for m in spec.members:
        key = m.principal.lower()
        if key in replaced:
            new = MemberSpec(principal=replaced[key], persona=m.persona, principal_type=m.principal_type)
            members.append(new)
            coming.append(new)
        elif key not in {n.lower() for n in amendment.drop_members}:
            members.append(m)
    workspace = spec.workspace
    if workspace is not None and workspace.security_group:
        key = workspace.security_group.lower()
        if key in replaced:
            workspace = replace(workspace, security_group=replaced[key])
            coming.append(MemberSpec(replaced[key], "data_scientist", principal_type="group"))
        elif key in {n.lower() for n in amendment.drop_members}:
            workspace = replace(workspace, security_group="")
    return replace(spec, workspace=workspace, members=tuple(members)), leaving, coming


def _amended_clusters(spec: RequestSpec, amendment: Amendment, done: dict[str, Step]) -> RequestSpec:
    by_name = {c.name.lower(): c for c in spec.clusters}
    changes = {c.name.lower(): c for c in amendment.clusters}
    for name in changes:
        if name not in by_name:
            raise RequestError(
                f"no cluster '{name}' in this request", [Problem("clusters", "unknown cluster")]
            )
        if f"cluster:{by_name[name].name}" in done:
            raise RequestError(
                f"cluster '{by_name[name].name}' exists in Azure already: change it with a new request once "
                "this one is done",
                [Problem("clusters", "only clusters Azure did not create are amended")],
            )
    clusters: list[ClusterSpec] = []
    for c in spec.clusters:
        change = changes.get(c.name.lower())
        if change is None:
            clusters.append(c)
        elif not change.drop:
            clusters.append(
                replace(
                    c,
                    vm_size=change.vm_size.upper() if change.vm_size else c.vm_size,
                    priority=change.priority or c.priority,
                    min_nodes=c.min_nodes if change.min_nodes is None else change.min_nodes,
                    max_nodes=c.max_nodes if change.max_nodes is None else change.max_nodes,
                )
            )
    return replace(spec, clusters=tuple(clusters))


def _widens(before: RequestSpec, after: RequestSpec, coming: list[MemberSpec]) -> list[str]:
    """What an amendment adds to access or cost (empty: it only narrows them)."""
    widened = [f"adds {m.principal}" for m in coming]
    old = {c.name: c for c in before.clusters}
    for c in after.clusters:
        was = old[c.name]
        if c.max_nodes > was.max_nodes or c.min_nodes > was.min_nodes:
            widened.append(f"raises the nodes of cluster {c.name}")
        if c.priority != was.priority and c.priority == "dedicated":
            widened.append(f"makes cluster {c.name} dedicated")
        if c.vm_size.upper() != was.vm_size.upper():
            new_cost = cost.clusters_cost([c]).clusters[0].hourly
            old_cost = cost.clusters_cost([was]).clusters[0].hourly
            if new_cost is None or old_cost is None or new_cost > old_cost:
                widened.append(f"changes cluster {c.name} to a size that may cost more ({c.vm_size})")
    return widened


def _revocations_of(
    cr: ChangeRequest, leaving: list[MemberSpec], done: dict[str, Step]
) -> list[dict[str, str]]:
    """The role assignments Azure already holds for members who leave: the run removes them."""
    names = (cr.plan or {}).get("names") or {}
    role = (cr.plan or {}).get("scientist_role") or "Data Scientist"
    return [
        ra
        for m in leaving
        for ra in role_assignments_for(m, names, scientist_role=role)
        if _grant_key(ra) in done and done[_grant_key(ra)].outcome == "created"
    ]


def _plan_of(cr: ChangeRequest, spec: RequestSpec, revocations: list[dict[str, str]]) -> dict[str, Any]:
    old = cr.plan or {}
    plan = build_plan(
        spec,
        kind=cr.kind,
        request_id=cr.pk,
        owner=cr.requester.principal_name,
        existing_names=old.get("names"),
        subscription_id=old.get("subscription_id", ""),
        workspace_quotas=old.get("workspace_quotas"),
        scientist_role=old.get("scientist_role") or "Data Scientist",
    )
    plan["revocations"] = revocations
    return plan


def request_amend(*, request_id: int, actor: User, amendment: Amendment) -> ChangeRequest:
    """Amend a failed request (its requester or an admin); narrowing runs again, widening is re-approved."""
    reason = _require_reason(amendment.reason)
    if len(amendment.drop_members) + len(amendment.replace_members) + len(amendment.clusters) > MAX_CHANGES:
        raise RequestError(f"at most {MAX_CHANGES} changes in one amendment")
    if not (amendment.drop_members or amendment.replace_members or amendment.clusters):
        raise RequestError(
            "the amendment changes nothing", [Problem("amendment", "change at least one thing")]
        )
    with transaction.atomic():
        cr = _failed(request_id)
        if cr.requester_id != actor.pk and not personas.is_admin(actor):
            raise PermissionDenied("only the requester or an admin amends a request")
        if cr.kind not in AMENDABLE_KINDS or cr.runs.filter(purpose=Run.Purpose.ROLLBACK).exists():
            raise TransitionError(f"request #{cr.pk} cannot be amended: roll it back or keep what exists")
        before = RequestSpec.from_json(cr.spec)
        done = done_steps(cr)
        spec, leaving, coming = _amended_members(before, amendment)
        spec = _amended_clusters(spec, amendment, done)
        problems = [
            p
            for p in spec_problems(spec, kind=cr.kind, workspace=cr.workspace, request_id=cr.pk)
            if p.field.startswith(("members", "clusters", "workspace.security_group"))
        ]
        if problems:
            raise RequestError("the amended request has problems", problems)
        widened = _widens(before, spec, coming)
        revocations = _revocations_of(cr, leaving, done)
        plan = _plan_of(cr, spec, revocations)
        old_spec = cr.spec
        cr.spec, cr.plan, cr.amended_by = spec.to_json(), plan, actor
        cr.save(update_fields=["spec", "plan", "amended_by", "updated_at"])
        audit_record(
            actor=actor,
            action="request.amended",
            obj=cr,
            object_type="change_request",
            request_id=cr.pk,
            workspace_name=cr.workspace_name,
            before=old_spec,
            after={**cr.spec, "widens": widened},
            message=reason,
        )
        _leave(cr, leaving, revocations, actor=actor, reason=reason)
        _drop_clusters(cr, before, spec, actor=actor, reason=reason)
        if widened:
            members_to_check = principal_checks.principals_to_check(cr)
            request_transition(
                cr,
                Status.SUBMITTED,
                actor=actor,
                message=f"amended: {'; '.join(widened)}: an approver other than {actor} decides",
                approver=None,
                first_approver=None,
                first_approved_at=None,
                decided_at=None,
                principal_check=None if members_to_check else [],
            )
            if members_to_check:
                transaction.on_commit(lambda: principal_checks.principal_check_enqueue(request_id=cr.pk))
        else:
            _run_again(cr, actor=actor, message=f"amended ({reason}); runs again from what is done")
    return cr


def _leave(
    cr: ChangeRequest,
    leaving: list[MemberSpec],
    revocations: list[dict[str, str]],
    *,
    actor: User,
    reason: str,
) -> None:
    """Members dropped by an amendment leave the approved state: at once, or once the run removed their roles."""
    granted = {ra["principal"].lower() for ra in revocations}
    for m in leaving:
        rows = Membership.objects.filter(change_request=cr, principal_name__iexact=m.principal)
        target = ResourceState.REVOKING if m.principal.lower() in granted else ResourceState.REVOKED
        resource_transition(
            rows, target, actor=actor, request_id=cr.pk, message=f"dropped by amendment: {reason}"
        )


def _drop_clusters(
    cr: ChangeRequest, before: RequestSpec, after: RequestSpec, *, actor: User, reason: str
) -> None:
    kept = {c.name.lower(): c for c in after.clusters}
    for c in before.clusters:
        rows = Cluster.objects.filter(change_request=cr, name__iexact=c.name)
        if c.name.lower() not in kept:
            resource_transition(
                rows,
                ResourceState.REVOKED,
                actor=actor,
                request_id=cr.pk,
                message=f"dropped by amendment: {reason}",
            )
        elif kept[c.name.lower()] != c:
            new = kept[c.name.lower()]
            rows.update(
                vm_size=new.vm_size.upper(),
                priority=new.priority,
                min_nodes=new.min_nodes,
                max_nodes=new.max_nodes,
            )


def _run_again(cr: ChangeRequest, *, actor: User, message: str) -> None:
    """A new run of the request's plan, continuing from the steps done (the engine's retry)."""
    request_transition(cr, Status.PROVISIONING, actor=actor, message=message)
    for rows in selectors.rows_of_request(cr):
        resource_transition(
            rows.filter(state=ResourceState.FAILED), ResourceState.PROVISIONING, actor=actor, request_id=cr.pk
        )
    run = Run.objects.create_next(cr)
    transaction.on_commit(lambda: queue.run_enqueue(request_id=cr.pk, job_id=run.job_id))


# --- abandon ----------------------------------------------------------------------------------------------


def _require_admin(actor: User, what: str) -> None:
    if not personas.is_admin(actor):
        raise PermissionDenied(f"only admins {what}")


def created_by(cr: ChangeRequest) -> list[dict[str, str]]:
    """What this request's runs created in Azure (not what existed before), each with its Azure id."""
    kinds = {
        "role_grant": "role_assignment",
        "cluster": "cluster",
        "workspace": "workspace",
        "storage_account": "storage_account",
        "key_vault": "key_vault",
        "container_registry": "container_registry",
        "app_insights": "app_insights",
        "resource_group": "resource_group",
    }
    made = []
    for step in done_steps(cr).values():
        if step.kind in kinds and step.outcome == "created" and step.azure_id:
            made.append({"kind": kinds[step.kind], "azure_id": step.azure_id, "name": step.target})
    return sorted(made, key=lambda m: (REMOVAL_TIERS[m["kind"]], m["name"]))


def request_keep(*, request_id: int, actor: User, reason: str) -> ChangeRequest:
    """Abandon a failed request, keeping what Azure holds: done parts become active, the rest is dropped."""
    _require_admin(actor, "abandon a request")
    reason = _require_reason(reason)
    with transaction.atomic():
        cr = _failed(request_id)
        if cr.runs.filter(purpose=Run.Purpose.ROLLBACK).exists():
            raise TransitionError(f"request #{cr.pk} was partly rolled back: roll it back again")
        done = done_steps(cr)
        if cr.kind == Kind.NEW_WORKSPACE and "workspace" not in done:
            raise TransitionError(
                f"request #{cr.pk}'s workspace was never created in Azure: roll the request back instead"
            )
        done_by: dict[str, Any] = {
            "actor": actor,
            "request_id": cr.pk,
            "message": f"kept as Azure holds it: {reason}",
        }
        workspaces, clusters, memberships = selectors.rows_of_request(cr)
        resource_transition(
            workspaces.filter(state=ResourceState.FAILED),
            ResourceState.ACTIVE,
            **done_by,
            fields=lambda ws: {
                "azure_id": done["workspace"].azure_id if "workspace" in done else ws.azure_id
            },
        )
        made = {c.name for c in clusters if f"cluster:{c.name}" in done}
        failed_clusters = clusters.filter(state=ResourceState.FAILED)
        resource_transition(failed_clusters.filter(name__in=made), ResourceState.ACTIVE, **done_by)
        resource_transition(failed_clusters.exclude(name__in=made), ResourceState.REVOKED, **done_by)
        granted = {key.split(":")[1] for key in done if key.startswith("grant:")}
        failed_members = memberships.filter(state=ResourceState.FAILED)
        holding = [m.pk for m in failed_members if m.principal_name.lower() in granted]
        resource_transition(failed_members.filter(pk__in=holding), ResourceState.ACTIVE, **done_by)
        resource_transition(failed_members.exclude(pk__in=holding), ResourceState.REVOKED, **done_by)
        resource_transition(
            Membership.objects.filter(change_request=cr, state=ResourceState.REVOKING),
            ResourceState.REVOKED,
            **done_by,
        )
        if cr.kind == Kind.CHANGE_WORKSPACE:
            changes.changes_keep(cr, done, actor=actor, message=f"kept as Azure holds it: {reason}")
        request_transition(cr, Status.ABANDONED, actor=actor, message=f"kept what Azure holds: {reason}")
    return cr


def request_rollback(*, request_id: int, actor: User, reason: str) -> ChangeRequest:
    """Abandon a failed request by rolling it back: a run deletes what it created, and nothing else."""
    _require_admin(actor, "roll a request back")
    reason = _require_reason(reason)
    with transaction.atomic():
        cr = _failed(request_id)
        if cr.kind == Kind.CHANGE_WORKSPACE:
            raise TransitionError(
                f"request #{cr.pk} changes what existed before it: a rollback would delete clusters it replaced "
                "rather than restore them. Keep what Azure holds, then ask for the opposite change"
            )
        removals = created_by(cr)
        previous = cr.runs.filter(purpose=Run.Purpose.ROLLBACK).order_by("-number").first()
        if previous is not None:  # a rollback that failed runs again, with the removals it first planned
            removals = list((previous.rollback_plan or {}).get("removals", removals))
        request_transition(cr, Status.ROLLING_BACK, actor=actor, message=f"roll back: {reason}")
        for rows in selectors.rows_of_request(cr):
            resource_transition(
                rows, ResourceState.REVOKING, actor=actor, request_id=cr.pk, message="rolled back"
            )
        plan = {
            "kind": "rollback",
            "subscription_id": (cr.plan or {}).get("subscription_id", ""),
            "removals": removals,
        }
        run = Run.objects.create_next(cr, rollback=plan)
        transaction.on_commit(lambda: queue.run_enqueue(request_id=cr.pk, job_id=run.job_id))
    return cr
