"""Day-2 changes to an existing workspace: what a ``change_workspace`` request may ask, and what its
success makes of the approved state.

A change request holds explicit edits (``RequestSpec.cluster_updates``, ``cluster_deletes``,
``persona_changes``, with the older ``clusters``, ``members`` and ``revoke``); ``provisioning.plan``
turns them into a diff against the approved state (create, update in place, replace, delete). Here:

- ``change_problems``: every edit names a live object of the workspace, changes something, and is not
  also changed by another open request (two plans against the same cluster would undo each other);
- ``changes_apply``: at the run's success, the approved state takes the new settings (one audited
  event per object), deleted clusters become revoked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q, QuerySet

from provisioning.arm import WORKSPACE_PROVIDER, arm_id
from provisioning.audit import audit_record
from provisioning.models import ChangeRequest, Cluster, Membership, ResourceState, Workspace
from provisioning.plan import CLUSTER_FIELDS, cluster_diff, cluster_settings
from provisioning.problems import Problem
from provisioning.spec import PERSONAS, RequestSpec
from provisioning.workflow.transitions import resource_transition

# Bounds of one change request, enforced here (the form, the config import and the API all come through).
MAX_CHANGES = 50


def _open_edits(workspace: Workspace, request_id: int | None) -> tuple[dict[str, int], dict[str, int]]:
    """Clusters and members another open or running request of the workspace changes: name -> request id."""
    clusters: dict[str, int] = {}
    members: dict[str, int] = {}
    others = ChangeRequest.objects.filter(
        workspace=workspace, status__in=ChangeRequest.PENDING_OR_LIVE | {ChangeRequest.Status.FAILED}
    )
    if request_id is not None:
        others = others.exclude(pk=request_id)
    revoked_ids: dict[int, int] = {}
    for pk, spec in others.values_list("pk", "spec"):
        for c in spec.get("cluster_updates", []):
            clusters.setdefault(c["name"].lower(), pk)
        for name in spec.get("cluster_deletes", []):
            clusters.setdefault(str(name).lower(), pk)
        for m in spec.get("persona_changes", []):
            members.setdefault(m["principal"].lower(), pk)
        for membership_id in spec.get("revoke", []):
            revoked_ids.setdefault(int(membership_id), pk)
    if revoked_ids:
        for pk, name in Membership.objects.filter(pk__in=revoked_ids).values_list("pk", "principal_name"):
            members.setdefault(name.lower(), revoked_ids[pk])
    return clusters, members


def edits_existing(spec: RequestSpec) -> bool:
    """Whether a request changes or removes what the workspace holds (not only adds to it)."""
    return bool(spec.cluster_updates or spec.cluster_deletes or spec.persona_changes or spec.revoke)


def observed_problem(workspace: Workspace) -> Problem:
    return Problem(
        "workspace",
        f"workspace {workspace.workspace_name} is observed (adopted, not managed by the portal): an admin "
        "takes over its management before it can be changed",
    )


def change_problems(spec: RequestSpec, workspace: Workspace, *, request_id: int | None) -> list[Problem]:
    """What is wrong with a request's updates, deletes, persona changes and revocations (policy on the new
    settings is checked with the created clusters', by ``validation``)."""
    problems: list[Problem] = []
    edits = len(spec.cluster_updates) + len(spec.cluster_deletes) + len(spec.persona_changes)
    if edits + len(spec.clusters) + len(spec.members) + len(spec.revoke) > MAX_CHANGES:
        problems.append(Problem("changes", f"at most {MAX_CHANGES} changes in one request"))
        return problems
    clusters, members = approved_state(workspace)
    busy_clusters, busy_members = _open_edits(workspace, request_id) if edits or spec.revoke else ({}, {})
    touched: set[str] = set()
    for i, c in enumerate(spec.cluster_updates):
        at = f"cluster_updates.{i}"
        key = c.name.lower()
        if key not in clusters:
            problems.append(Problem(f"{at}.name", f"the workspace has no active cluster named '{c.name}'"))
            continue
        if key in touched:
            problems.append(Problem(f"{at}.name", f"cluster '{c.name}' is changed twice in this request"))
        touched.add(key)
        if not cluster_diff(clusters[key], c):
            problems.append(Problem(f"{at}.name", f"the change to cluster '{c.name}' changes nothing"))
        if key in busy_clusters:
            problems.append(_busy(f"{at}.name", f"cluster '{c.name}'", busy_clusters[key]))
    for i, name in enumerate(spec.cluster_deletes):
        at = f"cluster_deletes.{i}"
        key = name.lower()
        if key not in clusters:
            problems.append(Problem(at, f"the workspace has no active cluster named '{name}'"))
            continue
        if key in touched:
            problems.append(Problem(at, f"cluster '{name}' is changed twice in this request"))
        touched.add(key)
        if key in busy_clusters:
            problems.append(_busy(at, f"cluster '{name}'", busy_clusters[key]))
    for i, c in enumerate(spec.clusters):
        if c.name.lower() in touched:
            problems.append(
                Problem(
                    f"clusters.{i}.name", f"cluster '{c.name}' is changed and created in the same request"
                )
            )
    revoked = {m["principal"].lower() for m in members.values() if m["pk"] in set(spec.revoke)}
    seen: set[str] = set()
    for i, m in enumerate(spec.persona_changes):
        at = f"persona_changes.{i}"
        key = m.principal.lower()
        if m.persona not in PERSONAS:
            problems.append(Problem(f"{at}.persona", "persona must be team_lead or data_scientist"))
        if key not in members:
            problems.append(Problem(f"{at}.principal", f"'{m.principal}' is not an active member"))
            continue
        if key in seen or key in revoked:
            problems.append(Problem(f"{at}.principal", f"'{m.principal}' is changed twice in this request"))
        seen.add(key)
        was = members[key]
        if was["persona"] == m.persona:
            problems.append(Problem(f"{at}.persona", f"'{m.principal}' is already {m.persona}"))
        if was["principal_type"] == "group" and m.persona != "data_scientist":
            problems.append(Problem(f"{at}.persona", "groups are granted the data scientist roles only"))
        if key in busy_members:
            problems.append(_busy(f"{at}.principal", f"'{m.principal}'", busy_members[key]))
    for i, membership_id in enumerate(spec.revoke):
        held = next((k for k, m in members.items() if m["pk"] == membership_id), "")
        if held in busy_members:
            problems.append(_busy(f"revoke.{i}", f"'{held}'", busy_members[held]))
    return problems


def _busy(field: str, what: str, other: int) -> Problem:
    return Problem(
        field, f"{what} is already changed by request #{other}: wait until it is done, or cancel it"
    )


def has_changes(spec: RequestSpec) -> bool:
    """Whether a change request asks anything at all."""
    return bool(
        spec.clusters
        or spec.members
        or spec.revoke
        or spec.cluster_updates
        or spec.cluster_deletes
        or spec.persona_changes
    )


def clusters_named(workspace: Workspace, names: Iterable[str]) -> QuerySet[Cluster]:
    """The workspace's live clusters with these names (any case)."""
    named = Q(pk__in=[])
    for name in names:
        named |= Q(name__iexact=name)
    return workspace.clusters.filter(named).exclude(state=ResourceState.REVOKED)


def approved_state(ws: Workspace) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """The workspace's active clusters (by lower-case name: settings, Azure id, pk) and active memberships
    (by lower-case principal), which a day-2 plan is computed against (two queries)."""
    workspace_id = arm_id(ws.subscription_id, ws.resource_group, WORKSPACE_PROVIDER, ws.workspace_name)
    clusters = {
        c.name.lower(): {
            **cluster_settings(c.as_spec()),
            "azure_id": f"{workspace_id}/computes/{c.name}",
            "pk": c.pk,
        }
        for c in ws.clusters.filter(state=ResourceState.ACTIVE)
    }
    members = {
        m.principal_name.lower(): {
            "principal": m.principal_name,
            "principal_type": m.principal_type,
            "persona": m.persona,
            "pk": m.pk,
        }
        for m in ws.memberships.filter(state=ResourceState.ACTIVE)
    }
    return clusters, members


def changes_apply(cr: ChangeRequest, *, actor: str, done: set[str] | None = None, message: str = "") -> None:
    """A change request's run succeeded: the approved state takes the new cluster settings and personas
    (audited, old -> new), and the clusters it deleted are revoked. Safe to call twice.

    ``done``: the keys of the steps Azure completed, when an admin keeps a failed change as Azure holds it:
    only what they did is applied; a cluster whose delete did not happen is active again, one deleted by a
    replace that never created it again is revoked.
    """
    ws = cr.workspace
    assert ws is not None  # nosec B101 # a change request always names its workspace (mypy narrowing)
    spec = RequestSpec.from_json(cr.spec)
    message = message or f"changed by request #{cr.pk}"

    def did(key: str) -> bool:
        return done is None or key in done

    if spec.cluster_updates:
        rows = {c.name.lower(): c for c in Cluster.objects.select_for_update().filter(workspace=ws)}
        for change in spec.cluster_updates:
            cluster = rows.get(change.name.lower())
            if cluster is None or cluster.state != ResourceState.ACTIVE:
                continue
            if did(f"cluster_update:{cluster.name}") or did(f"cluster:{cluster.name}"):
                _cluster_update(cluster, change, cr, actor=actor, message=message)
            elif did(f"cluster_delete:{cluster.name}"):  # replaced: deleted, never created again
                _gone(
                    Cluster.objects.filter(pk=cluster.pk), cr, actor=actor, message=f"{message}: deleted only"
                )
    if spec.cluster_deletes:
        named = list(clusters_named(ws, spec.cluster_deletes).filter(state=ResourceState.REVOKING))
        gone = [c.pk for c in named if did(f"cluster_delete:{c.name}")]
        kept = Cluster.objects.filter(pk__in=[c.pk for c in named if c.pk not in gone])
        _gone(Cluster.objects.filter(pk__in=gone), cr, actor=actor, message=message)
        for target in (ResourceState.FAILED, ResourceState.ACTIVE):  # not deleted: active again
            resource_transition(
                kept, target, actor=actor, request_id=cr.pk, message=f"{message}: not deleted"
            )
    for persona_change in spec.persona_changes:
        member = (
            Membership.objects.select_for_update()
            .filter(workspace=ws, principal_name__iexact=persona_change.principal, state=ResourceState.ACTIVE)
            .first()
        )
        granted = done is None or any(
            k.startswith(f"grant:{persona_change.principal.lower()}:") for k in done
        )
        if member is None or member.persona == persona_change.persona or not granted:
            continue
        before = member.persona
        member.persona = persona_change.persona
        member.save(update_fields=["persona"])
        audit_record(
            actor=actor,
            action="membership.updated",
            obj=member,
            request_id=cr.pk,
            workspace_name=ws.workspace_name,
            before={"persona": before},
            after={"persona": member.persona},
            message=message,
        )


def changes_keep(cr: ChangeRequest, done: Iterable[str], *, actor: Any, message: str) -> None:
    """An admin keeps a failed change as Azure holds it: what its runs did is applied, the rest is not."""
    changes_apply(cr, actor=actor, done=set(done), message=message)


def _gone(rows: QuerySet[Cluster], cr: ChangeRequest, *, actor: Any, message: str) -> None:
    """Clusters Azure no longer holds leave the approved state (active ones through revoking)."""
    for target in (ResourceState.REVOKING, ResourceState.REVOKED):
        resource_transition(rows, target, actor=actor, request_id=cr.pk, message=message)


def _cluster_update(cluster: Cluster, change: Any, cr: ChangeRequest, *, actor: Any, message: str) -> None:
    """The cluster's row takes the new settings, audited old -> new (nothing when they are the same)."""
    fields = cluster_diff(cluster_settings(cluster.as_spec()), change)
    if not fields and cluster.justification == change.justification.strip():
        return
    new = cluster_settings(change)
    for name in CLUSTER_FIELDS:
        setattr(cluster, name, new[name])
    cluster.justification = change.justification.strip()
    cluster.save(update_fields=[*CLUSTER_FIELDS, "justification"])
    audit_record(
        actor=actor,
        action="cluster.updated",
        obj=cluster,
        request_id=cr.pk,
        workspace_name=cr.workspace_name,
        before={f: old for f, (old, _) in fields.items()},
        after={f: value for f, (_, value) in fields.items()},
        message=message,
    )
