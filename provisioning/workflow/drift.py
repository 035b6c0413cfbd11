"""What an admin does about drift: accept it, or remediate it (admins only, every action audited).

- ``drift_accept``: the approved state becomes what Azure has. A changed cluster setting is copied into its
  ``Cluster`` row; a missing cluster leaves the approved state (revoked); access granted by hand with the
  portal's Team Lead or Data Scientist role on the workspace becomes a membership. Anything else stays
  accepted as a known exception, which later reconciles leave alone while it lasts.
- ``drift_remediate``: a ``remediate_drift`` request, approved by the admin who asks (it restores what was
  approved already, so no second approver), whose plan the provisioning engine runs like any other:
  clusters back to their approved settings or re-created, missing assignments and resources re-created,
  and access added by hand removed, but only the items the admin names (never "every open item").
  Nothing without the portal's ``managed-by`` tag is modified: unmanaged resources and resources whose tag
  was removed cannot be remediated, only accepted.
- ``drift_remediation_finished``: the end of that run; its items become remediated, or open again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts import personas
from provisioning import queue
from provisioning.arm import CUSTOM_ROLES, WORKSPACE_PROVIDER, arm_id
from provisioning.audit import audit_record
from provisioning.drift import (
    ACCESS_ADDED,
    ACCESS_REMOVED,
    CHANGED,
    CLUSTER_FIELDS,
    MISSING,
    TAG_FIELD,
    UNMANAGED,
)
from provisioning.models import ChangeRequest, Cluster, DriftItem, Membership, ResourceState, Step, Workspace
from provisioning.problems import text_problem
from provisioning.spec import RequestSpec
from provisioning.steps import StepSpec, steps_for_plan
from provisioning.workflow.expiry import default_end
from provisioning.workflow.reconcile import drift_audit
from provisioning.workflow.transitions import (
    RequestError,
    request_made,
    request_transition,
    resource_transition,
)

Status = DriftItem.Status
MAX_ITEMS = 500
MAX_REASON = 1000
# The portal's custom roles, on the workspace, as the persona a membership has.
PERSONA_OF_ROLE = {"Team Lead": "team_lead", "Data Scientist": "data_scientist"}
# The resources a workspace needs to be created again (its step depends on them): name key -> plan type.
WORKSPACE_NEEDS = {
    "storage_work": "storage_account",
    "key_vault": "key_vault",
    "registry": "container_registry",
    "app_insights": "app_insights",
}


OBSERVED_REFUSAL = (
    "workspace {name} is observed (adopted, not managed by the portal): the portal never modifies it. "
    "Take over its management first, or accept the drift"
)


class DriftError(RequestError):
    """A drift action cannot be done as asked; the message says why and what to do instead."""


def drift_items_visible_to(user: Any) -> QuerySet[DriftItem]:
    """Drift items are for admins only."""
    if not personas.is_admin(user):
        return DriftItem.objects.none()
    return DriftItem.objects.select_related("workspace", "remediation")


def _require_admin(actor: Any, what: str) -> None:
    if not personas.is_admin(actor):
        raise PermissionDenied(f"only admins can {what}")


def _item_ids(item_ids: Iterable[Any]) -> list[int]:
    try:
        ids = sorted({int(i) for i in item_ids})
    except (TypeError, ValueError) as exc:
        raise DriftError("drift items are named by their numbers") from exc
    if not ids:
        raise DriftError("choose at least one drift item")
    if len(ids) > MAX_ITEMS:
        raise DriftError(f"at most {MAX_ITEMS} drift items at once")
    return ids


def _open_items(ids: list[int], *, workspace: Workspace | None = None) -> list[DriftItem]:
    """The open items with these ids, locked; every id must name one."""
    rows = DriftItem.objects.select_for_update(of=("self",)).select_related("workspace").filter(pk__in=ids)
    if workspace is not None:
        rows = rows.filter(workspace=workspace)
    items = list(rows.order_by("pk"))
    absent = sorted(set(ids) - {i.pk for i in items})
    if absent:
        where = f" of workspace {workspace.workspace_name}" if workspace is not None else ""
        raise DriftError(f"no drift item #{absent[0]}{where}")
    closed = [i for i in items if i.status != Status.OPEN]
    if closed:
        raise DriftError(f"drift item #{closed[0].pk} is {closed[0].get_status_display().lower()}, not open")
    return items


def _is_cluster(item: DriftItem) -> bool:
    return item.details.get("type") == "cluster"


def _label(item: DriftItem) -> str:
    return f"#{item.pk} ({item.get_kind_display().lower()}{': ' + item.field if item.field else ''})"


# --- accepting ---------------------------------------------------------------------------------------------


def _accept_cluster_changes(items: list[DriftItem], actor: Any, reason: str) -> None:
    """Copy Azure's settings into the clusters' rows, one audited change per cluster."""
    by_cluster: dict[tuple[int, str], list[DriftItem]] = defaultdict(list)
    for item in items:
        by_cluster[(item.workspace_id, item.details["name"].lower())].append(item)
    for (workspace_id, name), changes in by_cluster.items():
        cluster = (
            Cluster.objects.select_for_update()
            .filter(workspace_id=workspace_id, name__iexact=name, state=ResourceState.ACTIVE)
            .first()
        )
        if cluster is None:
            raise DriftError(f"cluster {name} is no longer an active cluster of the workspace")
        fields = [item.field for item in changes]
        before = {f: getattr(cluster, f) for f in fields}
        for item in changes:
            value = item.actual
            setattr(cluster, item.field, str(value).upper() if item.field == "vm_size" else value)
        if cluster.min_nodes > cluster.max_nodes:
            raise DriftError(
                f"cluster {cluster.name}: min nodes {cluster.min_nodes} would pass max nodes {cluster.max_nodes}; "
                "accept its max_nodes item together with this one"
            )
        cluster.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="cluster.updated",
            obj=cluster,
            workspace_name=changes[0].workspace.workspace_name,
            before=before,
            after={f: getattr(cluster, f) for f in fields},
            message=f"accepted from Azure ({', '.join(_label(i) for i in changes)}): {reason}",
        )


def _accept_missing_cluster(item: DriftItem, actor: Any, reason: str) -> None:
    """The cluster Azure no longer holds leaves the approved state (revoked, through the one door)."""
    cluster = Cluster.objects.filter(
        workspace=item.workspace, name__iexact=item.details["name"], state=ResourceState.ACTIVE
    ).first()
    if cluster is None:
        return
    message = f"gone from Azure, accepted ({_label(item)}): {reason}"
    for target in (ResourceState.REVOKING, ResourceState.REVOKED):
        resource_transition(Cluster.objects.filter(pk=cluster.pk), target, actor=actor, message=message)


def _joins_as(item: DriftItem) -> str | None:
    """The persona access added by hand stands for: the portal's custom role for a user or group on the
    workspace (a group only as a data scientist, as the portal grants groups)."""
    d, ws = item.details, item.workspace
    role = d.get("role_name", "")
    persona = "data_scientist" if role == ws.scientist_role else PERSONA_OF_ROLE.get(role)
    workspace_scope = arm_id(ws.subscription_id, ws.resource_group, WORKSPACE_PROVIDER, ws.workspace_name)
    kind = str(d.get("principal_type", "")).lower()
    if (
        item.kind != ACCESS_ADDED
        or persona is None
        or str(d.get("scope", "")).lower() != workspace_scope.lower()
    ):
        return None
    if kind == "user" or (kind == "group" and persona == "data_scientist"):
        return persona
    return None


def _accept_member(item: DriftItem, persona: str, actor: Any, reason: str) -> None:
    """Access added by hand with the portal's role becomes an active membership (with no request)."""
    d, ws = item.details, item.workspace
    kind = (
        Membership.PrincipalType.GROUP
        if d["principal_type"].lower() == "group"
        else Membership.PrincipalType.USER
    )
    name = d.get("principal_name") or d["principal_id"]
    name = name.lower() if kind == Membership.PrincipalType.USER else name
    live = ws.memberships.exclude(state=ResourceState.REVOKED)
    same = (
        live.filter(object_id__iexact=d["principal_id"]).first()
        or live.filter(principal_name__iexact=name).first()
    )
    if same is not None:
        raise DriftError(
            f"{same.principal_name} is already a member of {ws.workspace_name} as {same.get_persona_display()}: "
            "change their access with a request instead"
        )
    member = Membership.objects.create(
        workspace=ws,
        principal_type=kind,
        principal_name=name,
        object_id=d["principal_id"],
        persona=persona,
        state=ResourceState.ACTIVE,
        change_request=None,
        expires_at=default_end(ws, persona),  # accepted access ends like any other
    )
    audit_record(
        actor=actor,
        action="membership.accepted",
        obj=member,
        workspace_name=ws.workspace_name,
        after={"state": member.state, "name": name, "persona": persona, "object_id": member.object_id},
        message=f"access granted outside the portal, accepted ({_label(item)}): {reason}",
    )


def drift_accept(*, item_ids: Iterable[Any], actor: Any, reason: str) -> list[DriftItem]:
    """Accept open drift items with a reason: the approved state becomes what Azure has (module docstring)."""
    _require_admin(actor, "accept drift")
    reason = (reason or "").strip()
    if not reason:
        raise DriftError("say why the drift is accepted: a reason is required")
    if len(reason) > MAX_REASON:
        raise DriftError(f"the reason is too long: at most {MAX_REASON} characters")
    if (problem := text_problem("reason", reason, max_length=MAX_REASON, multiline=True)) is not None:
        raise DriftError(problem.message)
    ids = _item_ids(item_ids)
    now = timezone.now()
    with transaction.atomic():
        items = _open_items(ids)
        changed = [i for i in items if i.kind == CHANGED and _is_cluster(i) and i.field in CLUSTER_FIELDS]
        _accept_cluster_changes(changed, actor, reason)
        absorbed = {i.pk for i in changed}
        for item in items:
            if item.kind == MISSING and _is_cluster(item):
                _accept_missing_cluster(item, actor, reason)
                absorbed.add(item.pk)
            elif (persona := _joins_as(item)) is not None:
                _accept_member(item, persona, actor, reason)
                absorbed.add(item.pk)
        for item in items:
            # An item the approved state took in is closed; an exception stands while Azure keeps it.
            item.status, item.reason = Status.ACCEPTED, reason
            item.closed_at = now if item.pk in absorbed else None
            item.save(update_fields=["status", "reason", "closed_at"])
            drift_audit(
                item,
                "drift.accepted",
                actor=actor,
                message=reason,
                approved_state_changed=item.pk in absorbed,
            )
    return items


# --- remediating -------------------------------------------------------------------------------------------


def refusal(item: DriftItem) -> str | None:
    """Why an item cannot be remediated (None: it can); access added by hand only when named."""
    if item.kind == UNMANAGED:
        return (
            f"drift item #{item.pk}: {item.details.get('name', item.resource_id)} was not made by the portal and "
            "lacks its managed-by tag, so the portal never modifies it: accept it as a known exception, or "
            "remove it in Azure"
        )
    if item.field == TAG_FIELD:
        return (
            f"drift item #{item.pk}: {item.details.get('name', item.resource_id)} lost the portal's managed-by "
            "tag, so the portal no longer modifies it: put the tag back in Azure, or accept the item"
        )
    if item.kind == ACCESS_ADDED and not item.details.get("scope_managed"):
        return f"drift item #{item.pk}: the access is on something the portal does not manage: accept it"
    return None


def _automatic(item: DriftItem) -> bool:
    """Remediated with "every open item": all but what is refused and access added by hand."""
    return item.kind != ACCESS_ADDED and refusal(item) is None


def _plan_resources(ws: Workspace, wanted: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """The resources to make again, as the workspace's approved plan has them (tags and settings)."""
    if not wanted:
        return []
    origin = (
        ws.change_requests.filter(kind=ChangeRequest.Kind.NEW_WORKSPACE, plan__isnull=False)
        .order_by("pk")
        .first()
    )
    if origin is None:
        raise DriftError(
            f"workspace {ws.workspace_name} has no approved plan to make its resources from again"
        )
    resources: list[dict[str, Any]] = list((origin.plan or {}).get("resources", []))
    names = ws.plan_names()
    if ("resource_group", ws.resource_group) in wanted:
        wanted = {(r["type"], r["name"]) for r in resources}
    if ("workspace", ws.workspace_name) in wanted:
        wanted |= {(kind, names[key]) for key, kind in WORKSPACE_NEEDS.items()}
    wanted.add(("resource_group", ws.resource_group))
    return [r for r in resources if (r["type"], r["name"]) in wanted]


def _cluster_settings(ws: Workspace, item: DriftItem) -> dict[str, Any]:
    cluster = ws.clusters.filter(name__iexact=item.details["name"], state=ResourceState.ACTIVE).first()
    if cluster is None:
        raise DriftError(f"drift item #{item.pk}: cluster {item.details['name']} is no longer approved")
    settings = {"name": cluster.name, **{f: getattr(cluster, f) for f in CLUSTER_FIELDS}}
    return {**settings, **({"justification": cluster.justification} if cluster.justification else {})}


def _grant(ws: Workspace, item: DriftItem) -> dict[str, str]:
    d = item.details
    member = ws.memberships.filter(object_id__iexact=d["principal_id"], state=ResourceState.ACTIVE).first()
    if member is None:
        raise DriftError(f"drift item #{item.pk}: {d['principal']} is no longer an active member")
    grant = {k: d[k] for k in ("persona", "role", "scope_type", "scope_name")}
    return {"principal": member.principal_name, "principal_type": member.principal_type, **grant}


def _remediation_lines(
    clusters: dict[str, dict[str, Any]],
    resources: set[tuple[str, str]],
    grants: list[dict[str, str]],
    removals: list[dict[str, str]],
) -> list[dict[str, Any]]:
    """A remediation as a plan's diff: clusters back to their approved settings, what is missing made again,
    access added by hand deleted."""
    lines: list[dict[str, Any]] = [
        {"action": "update", "object": "cluster", "name": name, "fields": {}} for name in clusters
    ]
    lines += [
        {"action": "create", "object": kind, "name": name, "fields": {}} for kind, name in sorted(resources)
    ]
    lines += [
        {
            "action": "create",
            "object": "role_assignment",
            "name": f"{g['role']} for {g['principal']} on {g['scope_type'].replace('_', ' ')} {g['scope_name']}",
            "fields": {},
        }
        for g in grants
    ]
    lines += [
        {"action": "delete", "object": "role_assignment", "name": r["name"], "fields": {}} for r in removals
    ]
    return lines


def remediation_plan(ws: Workspace, items: list[DriftItem]) -> dict[str, Any]:
    """A plan (the keys of ``provisioning.plan.build_plan``'s) that restores the items' approved state."""
    clusters: dict[str, dict[str, Any]] = {}
    grants, removals, resources = [], [], set()
    for item in items:
        d = item.details
        if _is_cluster(item):
            settings = _cluster_settings(ws, item)
            clusters[settings["name"]] = settings
        elif item.kind == MISSING:
            resources.add((d["type"], d["name"]))
        elif item.kind == ACCESS_REMOVED:
            grants.append(_grant(ws, item))
        elif item.kind == ACCESS_ADDED:
            name = f"{d.get('role') or d['role_definition_id']} for {d.get('principal')} on {d.get('scope')}"
            removals.append({"kind": "role_assignment", "azure_id": d["assignment_id"], "name": name})
    plan = {
        "kind": ChangeRequest.Kind.REMEDIATE_DRIFT.value,
        "subscription_id": ws.subscription_id,
        "names": ws.plan_names(),
        "scientist_role": ws.scientist_role,
        "resources": _plan_resources(ws, resources),
        "custom_roles": sorted({g["role"] for g in grants} & set(CUSTOM_ROLES)),
        "clusters": list(clusters.values()),
        "workspace_quotas": [],
        "cluster_updates": [],
        "cluster_deletes": [],
        "role_assignments": grants,
        "revocations": [],
        "removals": removals,
        "changes": _remediation_lines(clusters, resources, grants, removals),
    }
    specs = steps_for_plan(plan)
    dangling = sorted({d for s in specs for d in s.depends_on} - {s.key for s in specs})
    if dangling:  # a step waiting for one the plan lacks would never start
        raise DriftError(f"these items cannot be remediated on their own (they need {', '.join(dangling)})")
    return plan


def drift_remediate(*, workspace_id: int, actor: Any, item_ids: Iterable[Any] | None = None) -> ChangeRequest:
    """Restore the approved state of a workspace's open drift items with a run of the engine.

    ``item_ids``: the items the admin chose (access added by hand is removed only when named here);
    None: every open item that can be remediated without a choice (access added by hand left alone).
    """
    _require_admin(actor, "remediate drift")
    ids = None if item_ids is None else _item_ids(item_ids)
    with transaction.atomic():
        ws = Workspace.objects.select_for_update().filter(pk=workspace_id).first()
        if ws is None or ws.state != ResourceState.ACTIVE:
            raise DriftError("only the drift of an active workspace can be remediated")
        if ws.is_observed:
            raise DriftError(OBSERVED_REFUSAL.format(name=ws.workspace_name))
        if ids is None:
            items = [i for i in ws.drift_items.select_for_update().filter(status=Status.OPEN).order_by("pk")]
            items = [i for i in items if _automatic(i)]
            if not items:
                raise DriftError(
                    f"workspace {ws.workspace_name} has no open drift the portal can remediate by itself "
                    "(access added by hand is removed only when you name its item)"
                )
        else:
            items = _open_items(ids, workspace=ws)
            refused = [r for r in map(refusal, items) if r]
            if refused:
                raise DriftError(refused[0])
        plan = remediation_plan(ws, items)
        cr = _remediation_request(ws, items, plan, actor)
        for item in items:
            item.status, item.remediation = Status.REMEDIATING, cr
            item.save(update_fields=["status", "remediation"])
            drift_audit(item, "drift.remediating", actor=actor, request_id=cr.pk, message=f"request #{cr.pk}")
        transaction.on_commit(lambda: queue.provisioning_enqueue(request_id=cr.pk))
    return cr


def _remediation_request(
    ws: Workspace, items: list[DriftItem], plan: dict[str, Any], actor: Any
) -> ChangeRequest:
    """The request that carries the remediation: asked and approved by the same admin, through the door."""
    labels = ", ".join(_label(i) for i in items)
    cr = request_made(
        actor=actor,
        message=f"remediation of drift {labels}",
        kind=ChangeRequest.Kind.REMEDIATE_DRIFT,
        requester=actor,
        workspace=ws,
        workspace_name=ws.workspace_name,
        spec={**RequestSpec().to_json(), "drift_items": [i.pk for i in items]},
    )
    now = timezone.now()
    request_transition(
        cr, ChangeRequest.Status.SUBMITTED, actor=actor, message=f"remediate {labels}", submitted_at=now
    )
    request_transition(
        cr,
        ChangeRequest.Status.APPROVED,
        actor=actor,
        message="restores the approved state: no second approver needed",
        approver=actor,
        decided_at=now,
        plan=plan,
    )
    return cr


def _step_of(item: DriftItem, specs: list[StepSpec]) -> str:
    """The key of the step of a remediation plan that restores this item ("" if none does)."""
    d = item.details
    for spec in specs:
        p = spec.params
        if _is_cluster(item) and spec.kind == "cluster" and p["name"].lower() == d["name"].lower():
            return spec.key
        if (
            item.kind == ACCESS_ADDED
            and spec.kind == "remove"
            and p["azure_id"].lower() == d["assignment_id"].lower()
        ):
            return spec.key
        if (
            item.kind == ACCESS_REMOVED
            and spec.kind == "role_grant"
            and (p["scope"].lower(), p["role"]) == (d["scope"].lower(), d["role"])
            and p["principal"].lower() == str(d["principal"]).lower()
        ):
            return spec.key
        if (
            item.kind == MISSING
            and not _is_cluster(item)
            and (spec.kind, p.get("name")) == (d["type"], d["name"])
        ):
            return spec.key
    return ""


def drift_remediation_finished(cr: ChangeRequest, ok: bool) -> int:
    """The end of a remediation run (the caller holds its transaction): its items become remediated, or
    open again, each by whether the step that restores it succeeded. Returns how many items changed."""
    items = list(
        DriftItem.objects.select_for_update()
        .select_related("workspace")
        .filter(remediation=cr, status__in=[Status.OPEN, Status.REMEDIATING])
    )
    done: set[str] = set()
    run = cr.runs.order_by("-number").first()
    if run is not None:
        done = set(run.steps.filter(status__in=Step.DONE).values_list("key", flat=True))
    specs = steps_for_plan(cr.plan or {})
    now, changed = timezone.now(), 0
    for item in items:
        if ok or _step_of(item, specs) in done:
            item.status, item.closed_at = Status.REMEDIATED, now
            action, message = "drift.remediated", f"request #{cr.pk} restored the approved state"
        elif item.status == Status.REMEDIATING:
            item.status = Status.OPEN
            action, message = "drift.reopened", f"request #{cr.pk} failed: {_failure(run)}"
        else:
            continue
        item.save(update_fields=["status", "closed_at"])
        drift_audit(item, action, actor="worker", request_id=cr.pk, message=message)
        changed += 1
    return changed


def _failure(run: Any) -> str:
    failed = (
        run.steps.filter(status=Step.Status.FAILED).order_by("position").first() if run is not None else None
    )
    if failed is None:
        return "the run did not finish"
    return f"{failed.target}: {failed.error_code}: {failed.error_message}"[:500]
