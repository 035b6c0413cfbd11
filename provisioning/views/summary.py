"""What an admin needs to decide a request, at the top of its page and in the approval queue.

The summary is read from what the request page has already loaded (the spec, the capacity check, the stored
name and member checks): it adds no query. The queue offers a quick decision only when the stored checks say
the request is clean and its capacity check (made for the whole page in a fixed number of queries) finds it
within every budget and quota; anything else is reviewed on the request's page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioning.capacity import checks as capacity
from provisioning.models import ChangeRequest, EnvironmentPolicy, Persona
from provisioning.problems import Problem
from provisioning.spec import RequestSpec
from provisioning.workflow import name_checks, principal_checks

Kind = ChangeRequest.Kind
Status = ChangeRequest.Status


@dataclass(frozen=True)
class RoleGroup:
    """Role assignments of a plan that share a person (or group) or a scope."""

    label: str
    kind: str  # "principal" or the scope's resource type
    assignments: list[dict[str, Any]]


@dataclass
class Summary:
    """Who asks what and where, and what stands in the way of approving it."""

    asks: list[str] = field(default_factory=list)
    region: str = ""
    environment: str = ""
    purpose: str = ""  # what the workspace is for: team, project X of team Y, pool for teams A, B
    names: str = ""  # "" (not checked for this kind) | "pending" | "free" | "taken"
    members: str = ""  # "" (nobody to look up) | "pending" | "found" | "refused"
    blocking: list[Problem] = field(default_factory=list)
    access: list[str] = field(default_factory=list)  # how long the access granted lasts, in words


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def asks(spec: RequestSpec) -> list[str]:
    """What the request asks for, counted ("3 clusters", "2 members added")."""
    parts = [
        (len(spec.clusters), "new cluster", "new clusters"),
        (len(spec.cluster_updates), "cluster changed", "clusters changed"),
        (len(spec.cluster_deletes), "cluster deleted", "clusters deleted"),
        (len(spec.all_members()), "member added", "members added"),
        (len(spec.persona_changes), "role changed", "roles changed"),
        (len(spec.revoke), "member removed", "members removed"),
    ]
    return [_count(n, one, many) for n, one, many in parts if n]


def _names_state(cr: ChangeRequest) -> str:
    if cr.kind != Kind.NEW_WORKSPACE:
        return ""
    if cr.name_check is None:
        return "pending" if cr.status == Status.SUBMITTED else ""
    return "taken" if cr.names_taken else "free"


def _members_state(cr: ChangeRequest) -> str:
    if cr.principal_check is None:
        return "pending" if cr.status == Status.SUBMITTED else ""
    if not cr.principal_check:
        return ""
    return "refused" if cr.principals_refused else "found"


def access_lasts(spec: RequestSpec, policy: EnvironmentPolicy | None) -> list[str]:
    """How long the access a request grants lasts, counted from its success: the policy's default per
    persona, and each member who asked fewer days."""
    if policy is None or not spec.members:
        return []
    lines = []
    for persona, label in Persona.choices:
        if any(m.persona == persona and not m.days for m in spec.members):
            default, _ = policy.membership_days(persona)
            people = f"{label[:1]}{label[1:].lower()}s"  # "Team leads"
            lines.append(f"{people}: {_count(default, 'day', 'days')} (the {policy.environment} default)")
    lines += [f"{m.principal}: {_count(m.days, 'day', 'days')} (asked)" for m in spec.members if m.days]
    return lines


def request_summary(
    cr: ChangeRequest,
    spec: RequestSpec,
    *,
    check: capacity.Check | None,
    policy: EnvironmentPolicy | None = None,
) -> Summary:
    """The summary at the top of a request's page (no query: everything is loaded already; ``policy``: the
    environment's, for how long access lasts)."""
    workspace = spec.workspace or cr.workspace
    blocking: list[Problem] = []
    if cr.status == Status.SUBMITTED:
        blocking = name_checks.taken_name_problems(cr) + principal_checks.refused_principal_problems(cr)
        if check is not None:
            blocking += check.problems()
    return Summary(
        asks=asks(spec),
        region=workspace.region if workspace is not None else "",
        environment=workspace.environment if workspace is not None else "",
        purpose=workspace.purpose_text if workspace is not None else "",
        names=_names_state(cr),
        members=_members_state(cr),
        blocking=blocking,
        access=access_lasts(spec, policy),
    )


def role_groups(assignments: list[dict[str, Any]], *, by: str) -> list[RoleGroup]:
    """Role assignments grouped by person (``by="principal"``) or by scope, in the plan's order."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for ra in assignments:
        key = (ra["principal"], "principal") if by == "principal" else (ra["scope_name"], ra["scope_type"])
        groups.setdefault(key, []).append(ra)
    return [RoleGroup(label, kind, found) for (label, kind), found in groups.items()]


def quick_approval_blocker(cr: ChangeRequest, check: capacity.Verdict) -> str:
    """Why the queue sends this request to its page rather than offering approval in the row ("" if it may).

    What is read: the stored name and member checks, and the request's capacity verdict (``check``, made for
    the whole page at once by ``capacity.requests_checks`` and kept per version of what it reads). A request
    that goes over a budget or quota, or whose capacity could not be checked in full, is decided on its
    page, where the figures and notes show.
    """
    if cr.kind in (Kind.DECOMMISSION, Kind.REMEDIATE_DRIFT):
        return "its plan is read from Azure: review it on its page"
    if cr.kind == Kind.NEW_WORKSPACE and cr.name_check is None:
        return "names are still being checked in Azure"
    if cr.names_taken:
        return "names are taken in Azure"
    if cr.principal_check is None:
        return "members are still being checked in Entra ID"
    if cr.principals_refused:
        return "Entra ID refuses some members"
    if check.refused:
        return "it goes over a budget or quota"
    if check.over:
        return "it goes over a budget or quota and needs two approvals: weigh it on its page"
    if check.notes:
        return "its capacity could not be checked in full: read the notes on its page"
    return ""


def capacity_verdict(check: capacity.Verdict) -> str:
    """One word on capacity for the queue's row: "" (no cores asked), "fits", "over" or "unchecked"."""
    if not check.asks:
        return ""
    if check.over:
        return "over"
    return "unchecked" if check.notes else "fits"
