"""Every write of the request workflow. Views, commands and jobs call these.

A status change locks the request row and goes through ``provisioning.workflow.transitions`` (the
status machine, saved and audited in the same transaction); work is enqueued only once the
transaction has committed.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import queue
from provisioning.audit import audit_record
from provisioning.capacity import checks as capacity
from provisioning.models import (
    ChangeRequest,
    Cluster,
    EnvironmentPolicy,
    Membership,
    ResourceState,
    Run,
    Workspace,
)
from provisioning.plan import build_plan
from provisioning.problems import text_problem
from provisioning.spec import RequestSpec
from provisioning.workflow import decommission, name_checks, principal_checks, renewals, selectors
from provisioning.workflow.changes import approved_state, clusters_named
from provisioning.workflow.transitions import (
    RequestError,
    TransitionError,
    request_locked,
    request_made,
    request_transition,
    resource_transition,
)
from provisioning.workflow.validation import Problem, bounds_problems, spec_problems

Status = ChangeRequest.Status
Kind = ChangeRequest.Kind
MAX_REASON = 2000


def _require_problem_free(
    spec: RequestSpec,
    *,
    kind: str,
    workspace: Workspace | None,
    request_id: int | None,
    check: capacity.Check | None = None,
) -> None:
    problems = spec_problems(spec, kind=kind, workspace=workspace, request_id=request_id, check=check)
    if problems:
        raise RequestError("the request has problems to fix", problems)


def _require_within_bounds(spec: RequestSpec) -> None:
    """No request is saved past the bounds (too many rows, too long or unsafe text), even as a draft."""
    problems = bounds_problems(spec)
    if problems:
        raise RequestError("the request is past the portal's limits", problems)


def _workspace_name_for(spec: RequestSpec, workspace: Workspace | None) -> str:
    if workspace is not None:
        return workspace.workspace_name
    if spec.workspace is None:
        raise RequestError("a new-workspace request needs its workspace details")
    return spec.workspace.names().workspace


def request_create(
    *,
    requester: User,
    kind: str,
    spec: RequestSpec,
    workspace: Workspace | None = None,
    copied_from: int | None = None,
    form_token: str = "",
    lead_joins: bool = True,
) -> ChangeRequest:
    """Save a new draft. Team leads request new workspaces, and changes to workspaces they manage.

    ``form_token``: the one-time token of the form posted; the same form posted again (a double click, a
    browser resending) gives back the request it made instead of a second one. ``lead_joins``: the team lead
    asking for a new workspace becomes its first member, as a team lead, unless the request says otherwise
    (its members are then exactly those it names).
    """
    if not personas.is_team_lead(requester):
        raise PermissionDenied("only team leads can make requests")
    if kind == Kind.NEW_WORKSPACE and lead_joins:
        spec = spec.with_lead(requester.upn or requester.email)
    _require_within_bounds(spec)
    form_token = form_token.strip()[:64] if FORM_TOKEN.fullmatch(form_token.strip()[:64]) else ""
    if form_token and (made := _made_by_form(requester, form_token)) is not None:
        return made
    if kind == Kind.NEW_WORKSPACE:
        workspace = None
    elif kind == Kind.GRANT_ACCESS and workspace is not None and workspace.purpose == "pool":
        if not selectors.may_grant_access(requester, workspace.pk):  # a lead of one of the pool's teams
            raise PermissionDenied("you can only request access to pools of the teams you lead")
    elif workspace is None or not selectors.manages(requester, workspace.pk):
        raise PermissionDenied("you can only request changes to workspaces you manage")
    elif workspace.is_observed:
        raise RequestError(
            f"workspace {workspace.workspace_name} is observed (adopted from Azure, not managed by the portal): "
            "the portal does not change it until an admin takes over its management"
        )
    try:
        with transaction.atomic():
            cr = request_made(
                actor=requester,
                message=f"copied from request #{copied_from}" if copied_from else "",
                kind=kind,
                requester=requester,
                workspace=workspace,
                workspace_name=_workspace_name_for(spec, workspace),
                spec=spec.to_json(),
                copied_from_id=copied_from,
                form_token=form_token,
            )
    except IntegrityError:
        made = _made_by_form(requester, form_token) if form_token else None
        if made is None:
            raise
        return made  # the same form, posted twice at once: the other post made it
    return cr


FORM_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _made_by_form(requester: User, form_token: str) -> ChangeRequest | None:
    return ChangeRequest.objects.filter(requester=requester, form_token=form_token).first()


COPYABLE = (Status.REJECTED, Status.CANCELLED)


def request_copy(*, request_id: int, actor: User) -> ChangeRequest:
    """A new draft holding a rejected or cancelled request's content, to fix and submit (its requester only).

    A request refused for one field (a storage name taken elsewhere in Azure) is corrected without
    typing the rest again; the refused request itself stays as it was decided.
    """
    cr = ChangeRequest.objects.select_related("workspace").filter(pk=request_id).first()
    if cr is None:
        raise RequestError(f"request #{request_id} does not exist")
    if cr.requester_id != actor.pk:
        raise PermissionDenied("only the requester can copy a request")
    if cr.status not in COPYABLE:
        raise TransitionError(
            f"request #{cr.pk} is {cr.get_status_display().lower()}: only rejected or cancelled requests "
            "are copied into a new draft"
        )
    return request_create(
        requester=actor,
        kind=cr.kind,
        spec=RequestSpec.from_json(cr.spec),
        workspace=cr.workspace,
        copied_from=cr.pk,
        lead_joins=False,  # the copy's members are the original's, as decided
    )


def request_update(*, request_id: int, actor: User, spec: RequestSpec) -> ChangeRequest:
    """Replace a draft's content; only its requester may, and only while it is a draft."""
    with transaction.atomic():
        cr = request_locked(request_id)
        if cr.requester_id != actor.pk:
            raise PermissionDenied("only the requester can edit a request")
        if not cr.is_editable:
            raise TransitionError(
                f"request #{cr.pk} is {cr.get_status_display().lower()} and can no longer be edited"
            )
        _require_within_bounds(spec)
        before = cr.spec
        cr.spec = spec.to_json()
        cr.workspace_name = _workspace_name_for(spec, cr.workspace)
        cr.save()
        audit_record(
            actor=actor,
            action="request.edited",
            obj=cr,
            object_type="change_request",
            request_id=cr.pk,
            workspace_name=cr.workspace_name,
            before=before,
            after=cr.spec,
        )
    return cr


def request_submit(*, request_id: int, actor: User) -> ChangeRequest:
    """Send a draft for approval, once it passes policy, naming and uniqueness checks."""
    with transaction.atomic():
        cr = request_locked(request_id)
        if cr.requester_id != actor.pk:
            raise PermissionDenied("only the requester can submit a request")
        spec = RequestSpec.from_json(cr.spec)
        if cr.can_transition(Status.SUBMITTED):
            _require_problem_free(spec, kind=cr.kind, workspace=cr.workspace, request_id=cr.pk)
        members = principal_checks.principals_to_check(cr)
        request_transition(
            cr,
            Status.SUBMITTED,
            actor=actor,
            submitted_at=timezone.now(),
            name_check=None,
            # Nothing to look up: checked at once, so neither the page nor the sweeper waits for a worker.
            principal_check=None if members else [],
            principal_checked_at=None if members else timezone.now(),
        )
        if cr.kind == Kind.NEW_WORKSPACE:
            transaction.on_commit(lambda: name_checks.name_check_enqueue(request_id=cr.pk))
        if cr.kind == Kind.DECOMMISSION:  # decommission: checked again, Azure read afresh for its plan
            decommission.decommission_submitted(cr)
        if members:
            transaction.on_commit(lambda: principal_checks.principal_check_enqueue(request_id=cr.pk))
    return cr


def request_cancel(*, request_id: int, actor: User) -> ChangeRequest:
    """Withdraw a draft or submitted request (its requester only)."""
    with transaction.atomic():
        cr = request_locked(request_id)
        if cr.requester_id != actor.pk:
            raise PermissionDenied("only the requester can cancel a request")
        request_transition(cr, Status.CANCELLED, actor=actor)
    return cr


def _require_approver(cr: ChangeRequest, approver: User) -> None:
    if not personas.is_admin(approver):
        raise PermissionDenied("only admins can approve or reject requests")
    if cr.requester_id == approver.pk:
        raise PermissionDenied("nobody approves or rejects their own request")
    if cr.amended_by_id == approver.pk:
        raise PermissionDenied("nobody approves or rejects their own amendment")


def request_plan(cr: ChangeRequest, *, check: capacity.Check | None = None) -> dict[str, Any]:
    """The plan of a request as it stands (the stored plan once approved).

    ``check``: the request's capacity check when the caller has made it (its budgets are not read again).
    """
    if cr.plan is not None:
        return cr.plan
    if cr.kind == Kind.DECOMMISSION:  # decommission: made from what Azure holds (workflow.decommission)
        return decommission.decommission_plan(cr)
    if cr.kind == Kind.RENEW_ACCESS:
        return renewals.renewal_plan(cr)
    spec = RequestSpec.from_json(cr.spec)
    ws = cr.workspace
    revoked = (
        [
            {"principal": m.principal_name, "persona": m.persona, "principal_type": m.principal_type}
            for m in Membership.objects.filter(pk__in=spec.revoke, workspace=ws)
        ]
        if ws is not None
        else []
    )
    clusters, members = approved_state(ws) if ws is not None and _changes_existing(spec) else ({}, {})
    return build_plan(
        spec,
        kind=cr.kind,
        request_id=cr.pk,
        owner=cr.requester.principal_name if cr.requester_id else "",
        existing_names=ws.plan_names() if ws is not None else None,
        subscription_id=ws.subscription_id if ws is not None else "",
        revoked=revoked,
        workspace_quotas=workspace_quotas_for(cr, spec, check=check),
        current_clusters=clusters,
        current_members=members,
        scientist_role=_scientist_role(spec, ws, check),
    )


def _scientist_role(spec: RequestSpec, ws: Workspace | None, check: capacity.Check | None) -> str:
    """The data scientists' workspace role: the workspace's own, or its environment policy's for a new one
    (read by the capacity check already when the request has clusters)."""
    if ws is not None:
        return ws.scientist_role
    if check is not None and check.policy is not None:
        return check.policy.scientist_role
    return EnvironmentPolicy.read(
        spec.workspace.environment if spec.workspace is not None else ""
    ).scientist_role


def request_preview(
    *, kind: str, spec: RequestSpec, workspace: Workspace | None, requester: User | None = None
) -> tuple[dict[str, Any], list[Problem]]:
    """The plan a request would have, and its problems, without saving anything (``plan_config``)."""
    owner = requester or (workspace.owner if workspace is not None else None)
    cr = ChangeRequest(
        kind=kind,
        requester=owner,
        workspace=workspace,
        workspace_name=_workspace_name_for(spec, workspace),
        spec=spec.to_json(),
    )
    check = capacity.request_check(spec, workspace=workspace)
    problems = spec_problems(spec, kind=kind, workspace=workspace, check=check)
    return request_plan(cr, check=check), problems


def _changes_existing(spec: RequestSpec) -> bool:
    return bool(spec.cluster_updates or spec.cluster_deletes or spec.persona_changes)


def workspace_quotas_for(
    cr: ChangeRequest, spec: RequestSpec, *, check: capacity.Check | None = None
) -> list[dict[str, Any]]:
    """The team's dedicated budgets in the region as they are now, applied as workspace quota when clusters
    are made (the plan keeps them as they were at approval).

    ``check``: the request's capacity check, when made already: the budgets it read are used.
    """
    if cr.kind not in (Kind.NEW_WORKSPACE, Kind.ADD_CLUSTERS):
        return []
    team = capacity.request_team(spec, cr.workspace)
    if team is None:
        return []
    known = check.budgets if check is not None else None
    budgets = known if known is not None else capacity.team_budgets(team)
    return [{"family": b.family, "limit": b.dedicated_cores} for b in budgets]


def _materialize(cr: ChangeRequest, spec: RequestSpec, approver: User, *, scientist_role: str) -> Workspace:
    """Create the desired-state rows an approved request stands for (those it lacks, when an amended
    request is approved again)."""
    if cr.kind == Kind.NEW_WORKSPACE and cr.workspace_id is None:
        ws_spec = spec.workspace
        assert ws_spec is not None  # nosec B101 # the spec was validated to have a workspace (mypy narrowing)
        inp = ws_spec.naming_input()
        names = ws_spec.names()
        workspace = Workspace.objects.create(
            subscription_id=ws_spec.subscription_id,
            region=inp.region,
            department=inp.department,
            team=inp.team,
            region_abbv=inp.region_abbv,
            environment=inp.environment,
            custom_name=inp.custom_name,
            security_group=ws_spec.security_group,
            data_lake=ws_spec.data_lake,
            purpose=ws_spec.purpose,
            project=inp.project,
            pool_teams=[f"{d}/{t}" for d, t in ws_spec.pool_team_pairs()]
            if ws_spec.purpose == "pool"
            else [],
            resource_group=names.resource_group,
            workspace_name=names.workspace,
            storage_work=names.storage_work,
            storage_data=names.storage_data,
            data_lake_name=names.data_lake,
            key_vault=names.key_vault,
            registry=names.registry,
            app_insights=names.app_insights,
            scientist_role=scientist_role,  # what the plan approved with it gives data scientists
            owner=cr.requester,
        )
        cr.workspace = workspace
    else:
        assert cr.workspace is not None  # nosec B101 # an approved change request has its workspace (mypy narrowing)
        workspace = cr.workspace
    # An amended request approved again already has rows: only those it lacks are made.
    again = cr.amended_by_id is not None
    made = (
        {n.lower() for n in Cluster.objects.filter(change_request=cr).values_list("name", flat=True)}
        if again
        else set()
    )
    Cluster.objects.bulk_create(
        Cluster(
            workspace=workspace,
            change_request=cr,
            name=c.name,
            vm_size=c.vm_size.upper(),
            priority=c.priority,
            min_nodes=c.min_nodes,
            max_nodes=c.max_nodes,
            idle_seconds=c.idle_seconds,
            justification=c.justification.strip(),
        )
        for c in spec.clusters
        if c.name.lower() not in made
    )
    found = principal_checks.object_ids(cr)
    members = (
        {
            n.lower()
            for n in Membership.objects.filter(change_request=cr)
            .exclude(state=ResourceState.REVOKED)
            .values_list("principal_name", flat=True)
        }
        if again
        else set()
    )
    Membership.objects.bulk_create(
        Membership(
            workspace=workspace,
            change_request=cr,
            principal_name=m.principal.lower() if m.principal_type == "user" else m.principal,
            principal_type=m.principal_type,
            persona=m.persona,
            object_id=found.get((m.principal_type, m.principal.lower()), ""),
        )
        for m in spec.all_members()
        if m.principal.lower() not in members
    )
    resource_transition(
        Membership.objects.filter(pk__in=spec.revoke, workspace=workspace),
        ResourceState.REVOKING,
        actor=approver,
        request_id=cr.pk,
        message=f"revoked by request #{cr.pk}",
    )
    if spec.cluster_deletes:
        resource_transition(
            clusters_named(workspace, spec.cluster_deletes),
            ResourceState.REVOKING,
            actor=approver,
            request_id=cr.pk,
            message=f"deleted by request #{cr.pk}",
        )
    return workspace


def request_approve(*, request_id: int, approver: User) -> ChangeRequest:
    """Approve a submitted request: re-check it, fix its plan, create the desired state, enqueue on commit."""
    with transaction.atomic():
        cr = request_locked(request_id)
        _require_approver(cr, approver)
        if not cr.can_transition(Status.APPROVED):
            raise TransitionError(
                f"request #{cr.pk} is {cr.get_status_display().lower()}; it cannot be approved"
            )
        if cr.kind == Kind.DECOMMISSION:  # decommission: its own checks, plan and second approval (pro)
            return decommission.decommission_approve(cr, approver)
        if cr.kind == Kind.RENEW_ACCESS:  # a later end date: applied at approval, nothing for Azure
            return renewals.renewal_approve(cr, approver)
        spec = RequestSpec.from_json(cr.spec)
        check = capacity.request_check(spec, workspace=cr.workspace, request_id=cr.pk)
        _require_problem_free(spec, kind=cr.kind, workspace=cr.workspace, request_id=cr.pk, check=check)
        taken = name_checks.taken_name_problems(cr)
        if taken:
            raise RequestError("names are taken elsewhere in Azure", taken)
        refused = principal_checks.refused_principal_problems(cr)
        if refused:
            raise RequestError("Entra ID does not accept some members", refused)
        if check.needs_second_approval and cr.first_approver_id is None:
            return _first_approval(cr, approver, check)
        if check.needs_second_approval and cr.first_approver_id == approver.pk:
            raise PermissionDenied(
                "this request goes over budget: a second admin must approve it, not the first approver"
            )
        plan = request_plan(cr, check=check)
        _materialize(cr, spec, approver, scientist_role=plan.get("scientist_role") or "Data Scientist")
        request_transition(
            cr, Status.APPROVED, actor=approver, approver=approver, decided_at=timezone.now(), plan=plan
        )
        transaction.on_commit(lambda: queue.provisioning_enqueue(request_id=cr.pk))
    return cr


def _first_approval(cr: ChangeRequest, approver: User, check: capacity.Check) -> ChangeRequest:
    """Record the first of the two approvals an over-budget request needs; it stays submitted."""
    cr.first_approver = approver
    cr.first_approved_at = timezone.now()
    cr.save(update_fields=["first_approver", "first_approved_at", "updated_at"])
    assert check.team is not None  # nosec B101 # a capacity check of a request is for its team (mypy narrowing)
    audit_record(
        actor=approver,
        action="request.first_approval",
        obj=cr,
        object_type="change_request",
        request_id=cr.pk,
        workspace_name=cr.workspace_name,
        after={"over": [line.sentence(check.team) for line in check.over]},
        message="over budget: a second admin must approve",
    )
    return cr


def request_reject(*, request_id: int, approver: User, reason: str) -> ChangeRequest:
    """Reject a submitted request with a reason the requester will read."""
    reason = reason.strip()
    if not reason:
        raise RequestError("say why the request is rejected", [Problem("reason", "a reason is required")])
    if (problem := text_problem("reason", reason, max_length=MAX_REASON, multiline=True)) is not None:
        raise RequestError("the reason cannot be saved", [problem])
    with transaction.atomic():
        cr = request_locked(request_id)
        _require_approver(cr, approver)
        request_transition(
            cr,
            Status.REJECTED,
            actor=approver,
            approver=approver,
            decided_at=timezone.now(),
            reason=reason,
            message=reason,
        )
    return cr


def request_retry(*, request_id: int, actor: User) -> ChangeRequest:
    """An admin retries a failed request: a new run resumes it, skipping the steps already done."""
    if not personas.is_admin(actor):
        raise PermissionDenied("only admins can retry provisioning")
    with transaction.atomic():
        cr = request_locked(request_id)
        if cr.status != Status.FAILED:
            raise TransitionError(
                f"request #{cr.pk} is {cr.get_status_display().lower()}; only failed requests can be retried"
            )
        if cr.runs.filter(purpose=Run.Purpose.ROLLBACK).exists():
            raise TransitionError(
                f"request #{cr.pk}'s rollback failed: roll it back again, or keep what Azure holds"
            )
        request_transition(cr, Status.PROVISIONING, actor=actor, message="retry")
        for rows in selectors.rows_of_request(cr):
            resource_transition(
                rows.filter(state=ResourceState.FAILED),
                ResourceState.PROVISIONING,
                actor=actor,
                request_id=cr.pk,
            )
        run = Run.objects.create_next(cr)
        transaction.on_commit(lambda: queue.run_enqueue(request_id=cr.pk, job_id=run.job_id))
    return cr


def membership_link_user(*, user: User) -> int:
    """Bind the memberships naming this user's UPN, not bound yet, to the user's object id.

    Runs at sign-in (inside its transaction), so "My access" keeps finding memberships a team lead added
    by UPN before the person first signed in, even after the UPN changes. Only a member of the tenant
    binds, only by UPN: a guest's address and the email claim are set by their owner. A row bound to
    another object id is never rebound; naming it is audited as a refused binding. The worker's Graph
    look-up still resolves each membership itself when it grants the roles. Returns how many were bound.
    """
    if not user.entra_object_id:
        return 0
    names = {name.lower() for name in (user.upn, user.email) if name}
    named = Q(pk__in=[])
    for name in names:
        named |= Q(principal_name__iexact=name)
    users = Membership.objects.filter(named, principal_type=Membership.PrincipalType.USER)
    others = list(
        users.exclude(object_id="")
        .exclude(object_id__iexact=user.entra_object_id)
        .exclude(state=ResourceState.REVOKED)
        .values_list("pk", "principal_name", "workspace__workspace_name")
    )
    if others:
        audit_record(
            actor=user,
            action="membership.binding_refused",
            obj=user,
            after={
                "object_id": user.entra_object_id,
                "memberships": [{"id": pk, "name": name, "workspace": ws} for pk, name, ws in others],
            },
            message=f"{user.principal_name} signed in with the name of memberships bound to another object id: "
            "no access to them",
        )
    if user.entra_guest or not user.upn:
        return 0
    return users.filter(object_id="", principal_name__iexact=user.upn).update(object_id=user.entra_object_id)
