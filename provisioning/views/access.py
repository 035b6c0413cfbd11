"""What a data scientist (or anyone granted access) can use, and how to connect to it."""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from provisioning.models import Cluster, Membership, MembershipReminder, Persona, ResourceState, Workspace
from provisioning.roles import Abilities, persona_abilities
from provisioning.views.filters import AccessSearchForm
from provisioning.workflow import selectors

PAGE_SIZE = 20
STUDIO_URL = (
    "https://ml.azure.com/?wsid=/subscriptions/{s}/resourcegroups/{rg}"
    "/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
)


@dataclass(frozen=True)
class AccessCard:
    """One workspace the user is a member of, with what they need to connect to it."""

    membership: Membership
    workspace: Workspace
    clusters: list[Cluster]
    exports: str
    studio_url: str
    abilities: Abilities  # what the member's role allows and forbids, in words
    leads: list[Membership]  # whom a data scientist asks for more


def studio_url(ws: Workspace) -> str:
    """The workspace's page in Azure Machine Learning studio."""
    return STUDIO_URL.format(s=ws.subscription_id, rg=ws.resource_group, ws=ws.workspace_name)


def shell_exports(ws: Workspace) -> str:
    """The ``export NAME="value"`` lines the tutorial printed at the end of its workspace script."""
    return "\n".join(f'export {name}="{value}"' for name, value in ws.environment_variables().items())


def _card(membership: Membership) -> AccessCard:
    ws = membership.workspace
    return AccessCard(
        membership=membership,
        workspace=ws,
        clusters=ws.live_clusters,  # type: ignore[attr-defined]
        exports=shell_exports(ws),
        studio_url=studio_url(ws),
        abilities=persona_abilities(
            Persona.DATA_SCIENTIST if membership.principal_type == "group" else membership.persona,
            ws.scientist_role,
        ),
        leads=ws.active_leads,  # type: ignore[attr-defined]
    )


@login_required
@require_GET
def my_access(request: HttpRequest) -> HttpResponse:
    """The workspaces the user is a member of (found by name or team): persona, state, clusters, connection."""
    form = AccessSearchForm(request.GET)
    live_clusters = Cluster.objects.exclude(state=ResourceState.REVOKED).order_by("name")
    reminders = MembershipReminder.objects.order_by("-created_at", "-id")
    leads = Membership.objects.filter(
        persona=Persona.TEAM_LEAD, state=ResourceState.ACTIVE, principal_type="user"
    )
    memberships = form.filter_memberships(selectors.memberships_of(request.user)).prefetch_related(
        Prefetch("workspace__clusters", queryset=live_clusters, to_attr="live_clusters"),
        Prefetch("reminders", queryset=reminders, to_attr="recent_reminders"),
        Prefetch("workspace__memberships", queryset=leads.order_by("principal_name"), to_attr="active_leads"),
    )
    page = Paginator(memberships, PAGE_SIZE).get_page(request.GET.get("page"))
    cards = [_card(m) for m in page]
    context = {
        "nav": "access",
        "cards": cards,
        "page_obj": page,
        "form": form,
        "filtered": form.is_bound and bool(request.GET.get("q")),
    }
    return render(request, "provisioning/my_access.html", context)


@login_required
@require_GET
def config_json(request: HttpRequest, pk: int) -> HttpResponse:
    """The workspace's SDK ``config.json``, as a download, for anyone who may see the workspace."""
    ws = get_object_or_404(selectors.workspaces_visible_to(request.user), pk=pk)
    response = HttpResponse(json.dumps(ws.sdk_config(), indent=2) + "\n", content_type="application/json")
    response["Content-Disposition"] = 'attachment; filename="config.json"'
    return response
