"""Reads already scoped to what a user may see. Views never filter by permission themselves."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.db.models import Q, QuerySet

from accounts import personas
from provisioning.audit import RUN_STARTS, STEP_PREFIX
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    Cluster,
    Membership,
    Persona,
    Purpose,
    ResourceState,
    Workspace,
)


def _principal_q(user: Any, prefix: str = "") -> Q:
    """Memberships that are this user.

    An Entra user is their object id: a membership bound to an object id is theirs only when it is theirs.
    A membership not bound yet (named by UPN, its Graph look-up still to come) is theirs when it names
    their UPN and they are a member of the tenant, not a guest; never by the email claim, which users
    can often set. Local accounts (no Entra identity: development) match by UPN or email.
    """
    q = Q(pk__in=[])
    user_row = Q(**{f"{prefix}principal_type": "user"})
    object_id = getattr(user, "entra_object_id", "")
    if object_id:
        q |= Q(**{f"{prefix}object_id": object_id})
        upn = getattr(user, "upn", "")
        if upn and not getattr(user, "entra_guest", False):
            q |= Q(**{f"{prefix}object_id": "", f"{prefix}principal_name__iexact": upn}) & user_row
        return q
    for name in {getattr(user, "upn", ""), getattr(user, "email", "")} - {""}:
        q |= Q(**{f"{prefix}principal_name__iexact": name}) & user_row
    return q


def memberships_of(user: Any) -> QuerySet[Membership]:
    """The user's own live memberships (what "My access" shows)."""
    if not user.is_authenticated:
        return Membership.objects.none()
    return (
        Membership.objects.filter(_principal_q(user))
        .exclude(state=ResourceState.REVOKED)
        .select_related("workspace")
        .order_by("workspace__workspace_name")
    )


def workspaces_managed_by(user: Any) -> QuerySet[Workspace]:
    """Workspaces a team lead may change: those they own or lead. Admins manage all."""
    if not user.is_authenticated:
        return Workspace.objects.none()
    if personas.is_admin(user):
        return Workspace.objects.all()
    if not personas.is_team_lead(user):
        return Workspace.objects.none()
    led = Membership.objects.filter(_principal_q(user), persona=Persona.TEAM_LEAD, state=ResourceState.ACTIVE)
    return Workspace.objects.filter(Q(owner=user) | Q(pk__in=led.values("workspace_id"))).distinct()


def manages(user: Any, workspace_id: int) -> bool:
    """Whether ``user`` may change the workspace: a team lead who owns or leads it, or an admin."""
    return workspaces_managed_by(user).filter(pk=workspace_id).exists()


def pools_open_to(user: Any) -> QuerySet[Workspace]:
    """Shared pools a team lead may request access to for people of their teams: pools that name a team
    of a workspace the lead manages (one query for the teams, the pools as a queryset)."""
    teams = set(
        workspaces_managed_by(user)
        .exclude(state__in=(ResourceState.REVOKED, ResourceState.DECOMMISSIONED))
        .order_by()
        .values_list("department", "team")
        .distinct()
    )
    if not teams:
        return Workspace.objects.none()
    q = Q(pk__in=[])
    for department, team in teams:
        q |= Q(pool_teams__contains=[f"{department}/{team}"])
    return Workspace.objects.filter(q, purpose=Purpose.POOL)


def workspaces_open_to_grants_by(user: Any) -> QuerySet[Workspace]:
    """Workspaces a team lead may request access to: those they manage, and the pools of their teams."""
    return Workspace.objects.filter(
        Q(pk__in=workspaces_managed_by(user).values("pk")) | Q(pk__in=pools_open_to(user).values("pk"))
    )


def may_grant_access(user: Any, workspace_id: int) -> bool:
    """Whether ``user`` may request access to the workspace (``manages`` it, or a pool of their teams)."""
    return manages(user, workspace_id) or pools_open_to(user).filter(pk=workspace_id).exists()


def workspaces_visible_to(user: Any) -> QuerySet[Workspace]:
    """Workspaces a user may look at: admins all; others those they manage or are members of."""
    if not user.is_authenticated:
        return Workspace.objects.none()
    if personas.is_admin(user):
        return Workspace.objects.all()
    member_of = memberships_of(user).values("workspace_id")
    managed = workspaces_managed_by(user).values("pk")
    return Workspace.objects.filter(Q(pk__in=member_of) | Q(pk__in=managed)).distinct()


def requests_visible_to(user: Any) -> QuerySet[ChangeRequest]:
    """Admins see every request but others' drafts; team leads see their own and their workspaces'."""
    qs = ChangeRequest.objects.select_related("requester", "workspace", "approver")
    if not user.is_authenticated:
        return qs.none()
    if personas.is_admin(user):
        return qs.filter(Q(requester=user) | ~Q(status=ChangeRequest.Status.DRAFT))
    if personas.is_team_lead(user):
        managed = workspaces_managed_by(user).values("pk")
        return qs.filter(
            Q(requester=user) | (Q(workspace__in=managed) & ~Q(status=ChangeRequest.Status.DRAFT))
        )
    return qs.none()


# What a row of a list of requests shows (its requester's name, and its approver's in a list of decisions):
# read without them, every column of the request, its workspace and approver cost 3.7 ms of a 16 ms page to
# turn into models, for 25 rows.
REQUEST_ROW_FIELDS = (
    "id",
    "kind",
    "status",
    "workspace_name",
    "created_at",
    "submitted_at",
    "decided_at",
    "updated_at",  # what a kept row is kept under (views.fragments)
)
PERSON_FIELDS = ("username", "first_name", "last_name", "upn", "email")


def request_rows(requests: QuerySet[ChangeRequest], *, approver: bool = False) -> QuerySet[ChangeRequest]:
    """``requests`` read as rows of a list: the columns a row shows, with its requester (and approver)."""
    people = ("requester", "approver") if approver else ("requester",)
    return (
        requests.select_related(None)
        .select_related(*people)
        .only(*REQUEST_ROW_FIELDS, *(f"{who}__{field}" for who in people for field in PERSON_FIELDS))
    )


def requests_of(user: Any) -> QuerySet[ChangeRequest]:
    """The user's own requests ("My requests")."""
    return requests_visible_to(user).filter(requester=user)


def approval_queue(user: Any) -> QuerySet[ChangeRequest]:
    """Submitted requests an admin may decide (never their own), oldest first."""
    if not personas.is_admin(user):
        return ChangeRequest.objects.none()
    return (
        ChangeRequest.objects.filter(status=ChangeRequest.Status.SUBMITTED)
        .exclude(requester=user)
        .select_related("requester", "workspace", "first_approver")
        .order_by("submitted_at", "id")
    )


def clusters_of(workspace: Workspace) -> QuerySet[Cluster]:
    return workspace.clusters.exclude(state=ResourceState.REVOKED)


def audit_events_visible_to(user: Any) -> QuerySet[AuditEvent]:
    """The audit trail is for admins only."""
    if not personas.is_admin(user):
        return AuditEvent.objects.none()
    return AuditEvent.objects.all()


def audit_run_steps(user: Any, events: list[AuditEvent]) -> dict[int, list[AuditEvent]]:
    """The step events of the runs ``events`` start, oldest first, by the id of the event that started
    each run (``request.provisioning`` or ``request.rolling_back``): one query for a whole page.

    A run's steps are its request's step events after the event that started it and before the next run's
    start (which may be on another page: it is read too, and its steps are not this page's)."""
    starts = [e for e in events if e.action in RUN_STARTS and e.request_id is not None]
    if not starts:
        return {}
    read = audit_events_visible_to(user).filter(
        Q(action__startswith=STEP_PREFIX) | Q(action__in=RUN_STARTS),
        request_id__in={e.request_id for e in starts},
        id__gte=min(e.pk for e in starts),
    )
    wanted = {e.pk for e in starts}
    steps: dict[int, list[AuditEvent]] = {pk: [] for pk in wanted}
    current: dict[int | None, int] = {}  # request id -> the run start its next steps belong to
    for event in read.order_by("id"):
        if event.action in RUN_STARTS:
            current[event.request_id] = event.pk
        elif current.get(event.request_id) in wanted:
            steps[current[event.request_id]].append(event)
    return steps


def rows_of_request(cr: ChangeRequest) -> tuple[QuerySet[Workspace], QuerySet[Cluster], QuerySet[Membership]]:
    """The desired-state rows a request stands for: the workspace it creates (if it creates one), its
    clusters, and the memberships it grants (not those it revokes, nor those an amendment dropped)."""
    workspaces = Workspace.objects.filter(
        change_requests=cr, change_requests__kind=ChangeRequest.Kind.NEW_WORKSPACE
    )
    return (
        workspaces,
        Cluster.objects.filter(change_request=cr).exclude(state=ResourceState.REVOKED),
        # Members an amendment dropped are revoking (their roles being removed) or revoked.
        Membership.objects.filter(change_request=cr).exclude(
            state__in=(ResourceState.REVOKING, ResourceState.REVOKED)
        ),
    )


def team_lead_addresses(workspace_ids: set[int]) -> dict[int, set[str]]:
    """The lower-case addresses of each workspace's team leads (active user members) and its owner."""
    leads: dict[int, set[str]] = defaultdict(set)
    rows = Membership.objects.filter(
        workspace_id__in=workspace_ids,
        persona=Persona.TEAM_LEAD,
        principal_type=Membership.PrincipalType.USER,
        state=ResourceState.ACTIVE,
    ).values_list("workspace_id", "principal_name")
    for workspace_id, name in rows:
        leads[workspace_id].add(name.lower())
    for workspace_id, email in Workspace.objects.filter(pk__in=workspace_ids).values_list(
        "pk", "owner__email"
    ):
        if email:
            leads[workspace_id].add(email.lower())
    return leads
