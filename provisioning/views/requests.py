"""The team lead's pages: requesting a workspace, following requests, and changing managed workspaces.

Views validate the forms and call one service. The rules (naming, policy, uniqueness) are in
``provisioning.workflow.validation`` and every status change in ``provisioning.workflow.services``; a draft is saved
even when it breaks a rule, and its edit page shows each problem next to the field to change.
"""

from __future__ import annotations

from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import personas
from accounts.models import User
from provisioning import naming
from provisioning.capacity import checks as capacity
from provisioning.capacity import cost
from provisioning.capacity import report as capacity_report
from provisioning.models import (
    AccessReview,
    AllowedRegion,
    ChangeRequest,
    EnvironmentPolicy,
    ResourceState,
    Workspace,
)
from provisioning.spec import RequestSpec
from provisioning.views import fragments
from provisioning.views.changes import change_page
from provisioning.views.drafts import form_token, save_draft
from provisioning.views.drift import request_observed_context, workspace_drift_context
from provisioning.views.progress import progress_context
from provisioning.views.recovery import recovery_context
from provisioning.views.summary import request_summary, role_groups
from provisioning.workflow import (
    decommission,
    key_vaults,
    quota_requests,
    renewals,
    selectors,
    services,
    validation,
)
from provisioning.workflow.forms import RequestForms, WorkspaceForm, request_data
from provisioning.workflow.reconcile import with_open_drift

Kind = ChangeRequest.Kind
# Decommissioning or decommissioned: the workspace takes no new request.
GONE = (ResourceState.REVOKING, ResourceState.DECOMMISSIONED)
Status = ChangeRequest.Status
FORM_TEMPLATE = "provisioning/request_form.html"
LATEST_REQUESTS = 10  # on the workspace page; the requests page lists them all, filtered by workspace
PROGRESS_STATUSES = frozenset(
    {
        Status.APPROVED,
        Status.PROVISIONING,
        Status.SUCCEEDED,
        Status.FAILED,
        Status.ABANDONED,
        Status.ROLLING_BACK,
        Status.ROLLED_BACK,
    }
)
NAME_LABELS = (
    ("resource_group", "Resource group"),
    ("workspace", "Workspace"),
    ("storage_work", "Storage account (workspace artifacts)"),
    ("storage_data", "Storage account (team data)"),
    ("data_lake", "Data lake (ADLS Gen2)"),
    ("key_vault", "Key vault"),
    ("registry", "Container registry"),
    ("app_insights", "Application insights"),
)
NAV_OF_NEW: dict[str, str] = {kind: "new" if kind == Kind.NEW_WORKSPACE else "workspaces" for kind in Kind}
TITLES: dict[str, str] = {
    Kind.NEW_WORKSPACE: "Request a new workspace",
    Kind.ADD_CLUSTERS: "Request clusters",
    Kind.GRANT_ACCESS: "Request access for members",
    Kind.REVOKE_ACCESS: "Request access revocation",
}


def _user(request: HttpRequest) -> User:
    """The signed-in user (every view here requires one)."""
    return cast(User, request.user)


def _require_team_lead(user: Any) -> None:
    if not personas.is_team_lead(user):
        raise PermissionDenied("only team leads can request workspaces, clusters and access")


# --- The name preview -------------------------------------------------------------------------


def _naming_ready(inp: naming.NamingInput) -> bool:
    """Whether enough is typed for the names to mean something."""
    parts = (inp.department, inp.team, inp.region, inp.region_abbv, inp.environment)
    return bool(inp.custom_name.strip() or all(p.strip() for p in parts))


def name_preview(data: Any) -> dict[str, Any]:
    """Context of the name preview: the names the convention gives, their problems, and names taken."""
    inp = naming.NamingInput(
        **{
            f: str(data.get(f) or "")
            for f in ("department", "team", "region", "region_abbv", "environment", "custom_name")
        },
        project=str(data.get("project") or "") if data.get("purpose") == "project" else "",
    )
    if not _naming_ready(inp):
        return {"preview_ready": False}
    data_lake = bool(data.get("data_lake"))
    names = naming.resource_names(inp, data_lake=data_lake).as_dict()
    labels = WorkspaceForm.base_fields
    problems = [(labels[p.field].label, p.message) for p in naming.naming_problems(inp, data_lake=data_lake)]
    region = AllowedRegion.objects.filter(name=inp.region.strip().lower()).first()
    if wrong := validation.region_abbreviation_problem(region, inp.region_abbv):
        problems.append((labels[wrong.field].label, wrong.message))
    in_use = [] if problems else validation.names_in_use(naming.resource_names(inp, data_lake=data_lake))
    return {
        "preview_ready": True,
        "names": [(label, names[key]) for key, label in NAME_LABELS if names[key]],
        "problems": problems,
        "in_use": [p.message for p in in_use],
    }


@login_required
@require_GET
def preview_names(request: HttpRequest) -> HttpResponse:
    """The names a new workspace would get from what is typed so far (fetched by htmx as the lead types)."""
    _require_team_lead(request.user)
    return render(request, "provisioning/_name_preview.html", name_preview(request.GET))


# --- Saving, submitting, cancelling --------------------------------------------------------------


def _render_form(
    request: HttpRequest, forms: RequestForms, *, cr: ChangeRequest | None = None
) -> HttpResponse:
    workspace = forms.workspace
    nav = NAV_OF_NEW[forms.kind] if cr is None else "requests"
    context: dict[str, Any] = {
        "nav": nav,
        "forms": forms,
        "cr": cr,
        "workspace": workspace,
        "title": f"Edit draft #{cr.pk}" if cr else TITLES[forms.kind],
        "form_token": form_token(request),
        # A new workspace's requester joins it as a team lead unless they untick this (kept when re-shown).
        "offer_lead_joins": cr is None and forms.kind == Kind.NEW_WORKSPACE,
        "lead_joins": request.method != "POST" or request.POST.get("lead_joins") == "1",
    }
    if forms.workspace_form is not None:
        context.update(name_preview(forms.workspace_form.data))
    return render(request, FORM_TEMPLATE, context)


def _after_problem(cr: ChangeRequest) -> HttpResponse:
    """Back to the draft's form when it can still be fixed, else to the request."""
    cr.refresh_from_db(fields=["status"])
    target = "provisioning:request_edit" if cr.is_editable else "provisioning:request_detail"
    return redirect(target, pk=cr.pk)


def _submit(request: HttpRequest, cr: ChangeRequest) -> HttpResponse:
    try:
        services.request_submit(request_id=cr.pk, actor=_user(request))
    except services.RequestError as exc:
        if exc.problems:
            messages.error(
                request,
                f"Request #{cr.pk} cannot be submitted yet: {exc.message}. "
                "It is kept as a draft; fix what is shown below, then submit it again.",
            )
        else:
            messages.error(request, f"Could not submit request #{cr.pk}: {exc.message}.")
        return _after_problem(cr)
    messages.success(request, f"Request #{cr.pk} is submitted for approval.")
    return redirect("provisioning:request_detail", pk=cr.pk)


def _save(request: HttpRequest, forms: RequestForms, *, cr: ChangeRequest | None) -> HttpResponse:
    """Save the draft (problems and all), then submit it when the team lead asked to."""
    spec = forms.spec()
    saved = save_draft(
        request, user=_user(request), kind=forms.kind, spec=spec, workspace=forms.workspace, cr=cr
    )
    if isinstance(saved, HttpResponse):
        return saved
    cr = saved
    if request.POST.get("action") == "submit":
        return _submit(request, cr)
    problems = validation.spec_problems(spec, kind=cr.kind, workspace=cr.workspace, request_id=cr.pk)
    if problems:
        messages.warning(request, f"Draft #{cr.pk} is saved. Fix what is shown below before submitting it.")
        return redirect("provisioning:request_edit", pk=cr.pk)
    messages.success(request, f"Draft #{cr.pk} is saved. Submit it for approval when it is ready.")
    return redirect("provisioning:request_detail", pk=cr.pk)


def _request_page(
    request: HttpRequest, *, kind: str, cr: ChangeRequest | None = None, workspace: Workspace | None = None
) -> HttpResponse:
    """GET shows the forms; POST saves (and maybe submits) or shows the form's errors."""
    if request.method == "POST":
        forms = RequestForms(kind=kind, data=request.POST, workspace=workspace)
        if forms.is_valid():
            return _save(request, forms, cr=cr)
    elif cr is not None:
        forms = _draft_forms(cr)
    else:
        forms = RequestForms(kind=kind, workspace=workspace)
    return _render_form(request, forms, cr=cr)


def _draft_forms(cr: ChangeRequest) -> RequestForms:
    """A saved draft in its forms, with every problem that would stop it being submitted."""
    spec = RequestSpec.from_json(cr.spec)
    forms = RequestForms(kind=cr.kind, data=request_data(spec, kind=cr.kind), workspace=cr.workspace)
    forms.is_valid()
    forms.add_problems(validation.spec_problems(spec, kind=cr.kind, workspace=cr.workspace, request_id=cr.pk))
    return forms


@login_required
@require_http_methods(["GET", "POST"])
def new_workspace(request: HttpRequest) -> HttpResponse:
    """One page for a new workspace: its details, clusters and members; save as draft or submit."""
    _require_team_lead(request.user)
    return _request_page(request, kind=Kind.NEW_WORKSPACE)


@login_required
@require_http_methods(["GET", "POST"])
def request_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Change a draft; it opens with the problems that would stop it being submitted."""
    _require_team_lead(request.user)
    cr = get_object_or_404(selectors.requests_of(request.user), pk=pk)
    if not cr.is_editable:
        status = cr.get_status_display().lower()
        messages.info(request, f"Request #{cr.pk} is {status}: it can no longer be edited.")
        return redirect("provisioning:request_detail", pk=cr.pk)
    if cr.kind == Kind.CHANGE_WORKSPACE and cr.workspace is not None:
        return change_page(request, cr.workspace, user=_user(request), cr=cr)
    return _request_page(request, kind=cr.kind, cr=cr, workspace=cr.workspace)


@login_required
@require_POST
def request_submit(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a saved draft for approval."""
    _require_team_lead(request.user)
    cr = get_object_or_404(selectors.requests_of(request.user), pk=pk)
    return _submit(request, cr)


@login_required
@require_POST
def request_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    """Withdraw a draft or a request still waiting for approval."""
    _require_team_lead(request.user)
    cr = get_object_or_404(selectors.requests_of(request.user), pk=pk)
    try:
        services.request_cancel(request_id=cr.pk, actor=_user(request))
    except services.TransitionError as exc:
        messages.error(request, f"Could not cancel: {exc.message}.")
    else:
        messages.success(request, f"Request #{cr.pk} is cancelled.")
    return redirect("provisioning:request_detail", pk=cr.pk)


@login_required
@require_POST
def request_copy(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a new draft from a rejected or cancelled request, to correct and submit again."""
    _require_team_lead(request.user)
    cr = get_object_or_404(selectors.requests_of(request.user), pk=pk)
    try:
        copy = services.request_copy(request_id=cr.pk, actor=_user(request))
    except services.TransitionError as exc:
        messages.error(request, f"Could not copy: {exc.message}.")
        return redirect("provisioning:request_detail", pk=cr.pk)
    messages.success(
        request,
        f"Draft #{copy.pk} holds request #{cr.pk}'s content: change what was refused, then submit it.",
    )
    return redirect("provisioning:request_edit", pk=copy.pk)


# --- Reading requests -----------------------------------------------------------------------------


def _requester_actions(cr: ChangeRequest, user: Any) -> dict[str, bool]:
    mine = cr.requester_id == user.pk and personas.is_team_lead(user)
    return {
        "can_edit": mine and cr.is_editable,
        "can_submit": mine and cr.can_transition(Status.SUBMITTED),
        "can_cancel": mine and cr.can_transition(Status.CANCELLED),
        "can_copy": mine and cr.status in services.COPYABLE,
    }


def _workspace_visible(cr: ChangeRequest, user: Any) -> bool:
    """Whether the request's workspace page can be linked (it exists and the user may see it).

    Kept a minute per user and workspace: it only decides whether the name is a link (the workspace page
    checks who may see it), and building a team lead's visibility query cost a tenth of the page."""
    workspace = cr.workspace
    if workspace is None:
        return False
    key = f"workspace-visible:{user.pk}:{workspace.pk}"
    # Asked only when not kept: building the query is the cost.
    visible = lambda: selectors.workspaces_visible_to(user).filter(pk=workspace.pk).exists()  # noqa: E731
    return bool(cache.get_or_set(key, visible, fragments.FRAGMENT_SECONDS))


def _capacity_check(cr: ChangeRequest, spec: RequestSpec) -> capacity.Check | None:
    """The capacity check of a request still waiting to be decided (made once for the whole page)."""
    if capacity.asks_cores(spec) and cr.status in (Status.DRAFT, Status.SUBMITTED):
        return capacity_report.request_check_kept(cr, spec)
    return None


def _quota_context(cr: ChangeRequest, spec: RequestSpec, check: capacity.Check) -> dict[str, Any]:
    """The quota requests a request waits on, and the subscription limits it could ask more of."""
    workspace = spec.workspace or cr.workspace
    subscription = workspace.subscription_id if workspace is not None else ""
    region = workspace.region if workspace is not None else ""
    return {
        "quota_waits": quota_requests.quota_requests_waited_on(cr),
        "quota_shortfalls": quota_requests.quota_shortfalls(cr, check, subscription, region),
    }


def _role_groups(plan: dict[str, Any]) -> dict[str, Any]:
    """The plan's role assignments grouped by person and by scope, for the collapsed lists."""
    granted = plan.get("role_assignments") or []
    return {
        "by_person": role_groups(granted, by="principal"),
        "by_scope": role_groups(granted, by="scope"),
        "revoked_by_person": role_groups(plan.get("revocations") or [], by="principal"),
    }


def _access_policy(
    cr: ChangeRequest, spec: RequestSpec, check: capacity.Check | None
) -> EnvironmentPolicy | None:
    """The environment's policy, for how long the access a request grants lasts (read by the capacity check
    already when the request has clusters; None when it grants nobody or is decided)."""
    if not spec.members or cr.status not in (Status.DRAFT, Status.SUBMITTED):
        return None
    if check is not None and check.policy is not None:
        return check.policy
    workspace = spec.workspace or cr.workspace
    return EnvironmentPolicy.read(workspace.environment) if workspace else None


@login_required
@require_GET
def request_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A request, where it stands, and its full plan: every resource, cluster and role assignment."""
    cr = get_object_or_404(selectors.requests_visible_to(request.user), pk=pk)
    spec = RequestSpec.from_json(cr.spec)
    check = _capacity_check(cr, spec)
    context: dict[str, Any] = {
        "nav": "requests",
        "cr": cr,
        "spec": spec,
        "plan": decommission.decommission_plan_shown(cr)
        if cr.kind == Kind.DECOMMISSION
        else services.request_plan(cr, check=check),
        "can_decide": cr.can_approve(request.user),
        "workspace_visible": _workspace_visible(cr, request.user),
        "copied_from_visible": cr.copied_from_id is not None
        and selectors.requests_visible_to(request.user).filter(pk=cr.copied_from_id).exists(),
        "summary": request_summary(cr, spec, check=check, policy=_access_policy(cr, spec, check)),
        **_requester_actions(cr, request.user),
    }
    context.update(_role_groups(context["plan"]))
    if spec.clusters:
        context["cost"] = cost.clusters_cost(spec.clusters)
    if check is not None:
        context["capacity"] = check
        context.update(_quota_context(cr, spec, check))
    if cr.status == Status.DRAFT:
        context["problems"] = validation.spec_problems(
            spec, kind=cr.kind, workspace=cr.workspace, request_id=cr.pk, check=check
        )
    if cr.status in PROGRESS_STATUSES:
        context.update(progress_context(cr))
        context["show_progress"] = True
    context.update(recovery_context(cr, request.user))
    context.update(request_observed_context(cr))
    return render(request, "provisioning/request_detail.html", context)


# --- Workspaces ------------------------------------------------------------------------------------


@login_required
@require_GET
def workspace_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A workspace's resources, clusters and members; its team leads request changes from here."""
    live_reviews = AccessReview.objects.filter(workspace=OuterRef("pk")).exclude(
        status=AccessReview.Status.CLOSED
    )
    workspace = get_object_or_404(
        with_open_drift(selectors.workspaces_visible_to(request.user))
        .select_related("owner")
        # Two things a page seldom has, asked in the workspace's own query rather than in two more.
        .annotate(
            holds_deleted_vaults=key_vaults.holds_deleted_vaults(),
            live_review_id=Subquery(live_reviews.values("pk")[:1]),
        ),
        pk=pk,
    )
    seldom = cast(Any, workspace)  # its two annotations, which the model's type does not know
    can_change = (
        personas.is_team_lead(request.user)
        and workspace.state not in GONE
        and not workspace.is_observed  # adopted, not taken over: the portal never changes it
        and selectors.manages(request.user, workspace.pk)
    )
    memberships = workspace.memberships.exclude(state=ResourceState.REVOKED)
    clusters = list(selectors.clusters_of(workspace))
    clusters_cost = cost.clusters_cost(clusters)
    context = {
        "nav": "workspaces",
        "workspace": workspace,
        "clusters": clusters,
        "cost": clusters_cost,
        "quotas": workspace.quotas.all(),
        "memberships": memberships,
        "has_active_members": any(m.state == ResourceState.ACTIVE for m in memberships),
        "can_change": can_change,
        **_renew_context(request.user, workspace, can_change=can_change),
        "form_token": form_token(request),
        # On an active workspace not observed (the only one decommission is offered on), can_change is whether
        # the user is a team lead who manages it: asked once.
        "can_decommission": decommission.can_decommission(request.user, workspace, manages=can_change),
        "deleted_vaults": key_vaults.deleted_vaults_of(workspace) if seldom.holds_deleted_vaults else [],
        "can_purge": key_vaults.can_purge(request.user),
        **_latest_requests(request.user, workspace),
        **workspace_drift_context(request.user, workspace, can_change=can_change),
        "live_review": AccessReview.objects.get(pk=seldom.live_review_id) if seldom.live_review_id else None,
        "can_start_review": personas.is_admin(request.user) and workspace.state == ResourceState.ACTIVE,
    }
    return render(request, "provisioning/workspace_detail.html", context)


def _renew_context(user: Any, workspace: Workspace, *, can_change: bool) -> dict[str, Any]:
    """Whether the viewer may renew memberships here (a team lead who manages it, or an admin), and the
    policy's defaults they renew within without an admin."""
    if workspace.state != ResourceState.ACTIVE or workspace.is_observed:
        return {"can_renew": False}
    if not (can_change or personas.is_admin(user)):
        return {"can_renew": False}
    policy = EnvironmentPolicy.read(workspace.environment)
    defaults = (
        f"{policy.scientist_default_days} days for data scientists, {policy.lead_default_days} for team leads"
    )
    return {"can_renew": True, "renew_defaults": defaults}


@login_required
@require_POST
def membership_renew(request: HttpRequest, pk: int) -> HttpResponse:
    """Renew a member's access (within the policy's default at once; longer, a request an admin approves)."""
    workspace = get_object_or_404(selectors.workspaces_visible_to(request.user), pk=pk)
    membership_id = request.POST.get("membership", "")
    try:
        cr = renewals.membership_renew(
            workspace_id=workspace.pk,
            membership_id=int(membership_id) if membership_id.isdigit() else 0,
            actor=request.user,
            days=request.POST.get("days", "")[:8],
        )
    except renewals.RenewalError as exc:
        messages.error(request, f"Could not renew: {exc.message}.")
        return redirect("provisioning:workspace_detail", pk=workspace.pk)
    if cr is not None:
        messages.success(request, f"Renewal past the policy's default: request #{cr.pk} waits for an admin.")
        return redirect("provisioning:request_detail", pk=cr.pk)
    messages.success(request, "Access renewed.")
    return redirect("provisioning:workspace_detail", pk=workspace.pk)


def _latest_requests(user: Any, workspace: Workspace) -> dict[str, Any]:
    """The workspace's latest requests (the full list is the requests page, filtered by workspace), kept
    rendered under each one's last change (a status moves by save()): only that is read while kept."""
    visible = selectors.requests_visible_to(user).filter(workspace=workspace).order_by("-created_at", "-id")
    latest = list(visible.values_list("pk", "updated_at")[: LATEST_REQUESTS + 1])
    shown = latest[:LATEST_REQUESTS]
    rows = selectors.request_rows(visible.filter(pk__in=[pk for pk, _ in shown]))
    return {
        "change_requests": SimpleLazyObject(lambda: list(rows)),
        "latest_count": len(shown),
        "more_requests": len(latest) > LATEST_REQUESTS,
        "latest_version": fragments.version_key(shown),
        "kept_for": fragments.FRAGMENT_SECONDS,
    }


def _change_page(request: HttpRequest, pk: int, kind: str) -> HttpResponse:
    _require_team_lead(request.user)
    workspaces = (
        selectors.workspaces_open_to_grants_by(request.user)
        if kind == Kind.GRANT_ACCESS
        else selectors.workspaces_managed_by(request.user)
    )
    workspace = get_object_or_404(workspaces, pk=pk)
    return _request_page(request, kind=kind, workspace=workspace)


@login_required
@require_http_methods(["GET", "POST"])
def add_clusters(request: HttpRequest, pk: int) -> HttpResponse:
    """Request new compute clusters in a workspace the team lead manages."""
    return _change_page(request, pk, Kind.ADD_CLUSTERS)


@login_required
@require_http_methods(["GET", "POST"])
def add_members(request: HttpRequest, pk: int) -> HttpResponse:
    """Request access to a managed workspace for more team leads or data scientists."""
    return _change_page(request, pk, Kind.GRANT_ACCESS)


@login_required
@require_http_methods(["GET", "POST"])
def workspace_change(request: HttpRequest, pk: int) -> HttpResponse:
    """Change or delete clusters, change members' roles or remove them: a request with a plan of diffs."""
    _require_team_lead(request.user)
    workspace = get_object_or_404(selectors.workspaces_managed_by(request.user), pk=pk)
    return change_page(request, workspace, user=_user(request))


@login_required
@require_http_methods(["GET", "POST"])
def revoke_members(request: HttpRequest, pk: int) -> HttpResponse:
    """Request that active members of a managed workspace lose their access."""
    return _change_page(request, pk, Kind.REVOKE_ACCESS)
