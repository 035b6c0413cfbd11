"""Checks a request spec against policy, Azure's naming rules and what the portal already holds.

Every problem names the field it belongs to, as a path the form and the config importer both
understand: ``workspace.team``, ``clusters.1.name``, ``members.0.principal``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from provisioning import naming
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    ChangeRequest,
    Cluster,
    Membership,
    Policy,
    ResourceState,
    Workspace,
)
from provisioning.spec import PERSONAS, PRIORITIES, ClusterSpec, MemberSpec, RequestSpec

# A UPN or an email address: local part, "@", a domain with at least one dot.
PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9._%+'#-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
GROUP_RE = re.compile(r"^[^\x00-\x1f]{1,256}$")
MAX_IDLE_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Problem:
    """One reason a request cannot go ahead, tied to a field."""

    field: str
    message: str


def _workspace_problems(spec: RequestSpec) -> list[Problem]:
    ws = spec.workspace
    assert ws is not None
    problems: list[Problem] = []
    if not AllowedSubscription.objects.filter(subscription_id=ws.subscription_id, is_active=True).exists():
        problems.append(
            Problem(
                "workspace.subscription_id",
                f"subscription '{ws.subscription_id}' is not one the portal allows",
            )
        )
    if not AllowedRegion.objects.filter(name=ws.region, is_active=True).exists():
        problems.append(Problem("workspace.region", f"region '{ws.region}' is not one the portal allows"))
    for p in naming.naming_problems(ws.naming_input(), data_lake=ws.data_lake):
        problems.append(Problem(f"workspace.{p.field}", p.message))
    if ws.security_group and not GROUP_RE.match(ws.security_group):
        problems.append(Problem("workspace.security_group", "security group name is not valid"))
    return problems


def names_in_use(
    names: naming.ResourceNames, *, field: str = "workspace.team", exclude_request_id: int | None = None
) -> list[Problem]:
    """Names already held by a workspace in the portal or by another pending request."""
    problems: list[Problem] = []
    unique = {"workspace": names.workspace, **names.globally_unique()}
    lowered = {v.lower() for v in unique.values()}
    existing = Workspace.objects.filter(
        Q(workspace_name__in=lowered)
        | Q(storage_work__in=lowered)
        | Q(storage_data__in=lowered)
        | Q(key_vault__in=lowered)
        | Q(registry__in=lowered)
        | Q(data_lake_name__in=lowered)
    ).exclude(state=ResourceState.REVOKED)
    for workspace in existing:
        taken = {
            workspace.workspace_name,
            workspace.storage_work,
            workspace.storage_data,
            workspace.key_vault,
            workspace.registry,
            workspace.data_lake_name,
        } & lowered
        problems.append(
            Problem(
                field,
                f"name already used by workspace '{workspace.workspace_name}' in the portal: "
                f"{', '.join(sorted(taken))}; choose another team name or a custom name",
            )
        )
    pending = ChangeRequest.objects.filter(
        kind=ChangeRequest.Kind.NEW_WORKSPACE,
        status__in=ChangeRequest.PENDING_OR_LIVE,
        workspace_name__iexact=names.workspace,
    )
    if exclude_request_id is not None:
        pending = pending.exclude(pk=exclude_request_id)
    for other in pending:
        problems.append(
            Problem(
                field,
                f"workspace name '{names.workspace}' is already requested by request #{other.pk}; "
                "choose another team name or a custom name",
            )
        )
    return problems


def _cluster_problems(clusters: Iterable[ClusterSpec], workspace: Workspace | None) -> list[Problem]:
    policy = Policy.current()
    allowed_sizes = {
        s.upper() for s in AllowedVmSize.objects.filter(is_active=True).values_list("name", flat=True)
    }
    existing = set()
    if workspace is not None:
        existing = {
            n.lower()
            for n in Cluster.objects.filter(workspace=workspace)
            .exclude(state=ResourceState.REVOKED)
            .values_list("name", flat=True)
        }
    problems: list[Problem] = []
    seen: set[str] = set()
    clusters = list(clusters)
    if len(clusters) > policy.max_clusters_per_request:
        problems.append(
            Problem("clusters", f"at most {policy.max_clusters_per_request} clusters per request")
        )
    for i, c in enumerate(clusters):
        at = f"clusters.{i}"
        message = naming.cluster_name_problem(c.name)
        if message:
            problems.append(Problem(f"{at}.name", message))
        if c.name.lower() in seen:
            problems.append(Problem(f"{at}.name", f"cluster name '{c.name}' appears twice in this request"))
        elif c.name.lower() in existing:
            problems.append(Problem(f"{at}.name", f"the workspace already has a cluster named '{c.name}'"))
        seen.add(c.name.lower())
        if c.vm_size.upper() not in allowed_sizes:
            problems.append(Problem(f"{at}.vm_size", f"VM size '{c.vm_size}' is not one the portal allows"))
        if c.priority not in PRIORITIES:
            problems.append(Problem(f"{at}.priority", "priority must be low_priority or dedicated"))
        if not 1 <= c.max_nodes <= policy.max_nodes_per_cluster:
            problems.append(
                Problem(
                    f"{at}.max_nodes",
                    f"max nodes must be between 1 and {policy.max_nodes_per_cluster} (policy)",
                )
            )
        if c.min_nodes < 0 or c.min_nodes > c.max_nodes:
            problems.append(Problem(f"{at}.min_nodes", "min nodes must be between 0 and max nodes"))
        if not 0 <= c.idle_seconds <= MAX_IDLE_SECONDS:
            problems.append(
                Problem(f"{at}.idle_seconds", f"idle seconds must be between 0 and {MAX_IDLE_SECONDS}")
            )
    return problems


def _member_problems(members: Iterable[MemberSpec], workspace: Workspace | None) -> list[Problem]:
    live: set[str] = set()
    if workspace is not None:
        live = {
            n.lower()
            for n in Membership.objects.filter(workspace=workspace)
            .exclude(state=ResourceState.REVOKED)
            .values_list("principal_name", flat=True)
        }
    problems: list[Problem] = []
    seen: set[str] = set()
    for i, m in enumerate(members):
        at = f"members.{i}"
        if m.persona not in PERSONAS:
            problems.append(Problem(f"{at}.persona", "persona must be team_lead or data_scientist"))
        if m.principal_type == "user" and not PRINCIPAL_RE.match(m.principal):
            problems.append(
                Problem(f"{at}.principal", f"'{m.principal}' is not an email address or user principal name")
            )
        if m.principal_type == "group" and not GROUP_RE.match(m.principal):
            problems.append(Problem(f"{at}.principal", "group name is not valid"))
        key = m.principal.lower()
        if key in seen:
            problems.append(Problem(f"{at}.principal", f"'{m.principal}' appears twice in this request"))
        elif key in live:
            problems.append(
                Problem(f"{at}.principal", f"'{m.principal}' is already a member of the workspace")
            )
        seen.add(key)
    return problems


def _revoke_problems(revoke: Iterable[int], workspace: Workspace | None) -> list[Problem]:
    problems: list[Problem] = []
    for i, membership_id in enumerate(revoke):
        if (
            workspace is None
            or not Membership.objects.filter(
                pk=membership_id, workspace=workspace, state=ResourceState.ACTIVE
            ).exists()
        ):
            problems.append(Problem(f"revoke.{i}", f"membership {membership_id} is not an active member"))
    return problems


def spec_problems(
    spec: RequestSpec, *, kind: str, workspace: Workspace | None = None, request_id: int | None = None
) -> list[Problem]:
    """Everything wrong with a request; an empty list means it may be submitted or approved."""
    problems: list[Problem] = []
    if kind == ChangeRequest.Kind.NEW_WORKSPACE:
        if spec.workspace is None:
            return [Problem("workspace", "a new-workspace request needs its workspace details")]
        problems += _workspace_problems(spec)
        if not any(p.field.startswith("workspace.") for p in problems):
            field = "workspace.custom_name" if spec.workspace.custom_name else "workspace.team"
            problems += names_in_use(spec.workspace.names(), field=field, exclude_request_id=request_id)
    elif workspace is None:
        return [Problem("workspace", "choose the workspace this request changes")]
    elif workspace.state in (ResourceState.REVOKED,):
        problems.append(Problem("workspace", f"workspace '{workspace}' is retired"))
    if kind == ChangeRequest.Kind.ADD_CLUSTERS and not spec.clusters:
        problems.append(Problem("clusters", "add at least one cluster"))
    if kind == ChangeRequest.Kind.GRANT_ACCESS and not spec.members:
        problems.append(Problem("members", "add at least one member"))
    if kind == ChangeRequest.Kind.REVOKE_ACCESS and not spec.revoke:
        problems.append(Problem("revoke", "choose at least one member to revoke"))
    problems += _cluster_problems(spec.clusters, workspace)
    problems += _member_problems(spec.members, workspace)
    problems += _revoke_problems(spec.revoke, workspace)
    return problems
