"""``/api/v1/`` reads: workspaces (members, clusters, drift), capacity, the audit trail and my access.

The same selectors as the pages decide what each caller sees: a workspace the caller may not see is a 404;
capacity, drift and the audit are for admins.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import personas
from provisioning import exports
from provisioning.api.pagination import NewestFirst
from provisioning.api.serializers import (
    ClusterSerializer,
    DriftItemSerializer,
    MembershipSerializer,
    WorkspaceSerializer,
)
from provisioning.capacity import report as capacity_report
from provisioning.models import AuditEvent, Cluster, Membership, Persona, ResourceState, Workspace
from provisioning.roles import persona_abilities
from provisioning.views.access import studio_url
from provisioning.workflow import drift, selectors

BUDGETS_PER_PAGE = 25


class WorkspaceViewSet(viewsets.ReadOnlyModelViewSet):
    """Workspaces the caller may see: admins every one, team leads those they manage, members theirs."""

    serializer_class = WorkspaceSerializer
    queryset = Workspace.objects.none()

    def get_queryset(self) -> QuerySet[Workspace]:
        workspaces = (
            selectors.workspaces_visible_to(self.request.user).select_related("owner").order_by("-id")
        )
        if name := self.request.query_params.get("name", "").strip()[:33]:
            workspaces = workspaces.filter(workspace_name__icontains=name)
        if (state := self.request.query_params.get("state", "")) in ResourceState.values:
            workspaces = workspaces.filter(state=state)
        return workspaces

    @extend_schema(
        parameters=[
            OpenApiParameter("name", str, description="Workspace name, or part of it"),
            OpenApiParameter("state", str, enum=list(ResourceState.values)),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(responses=MembershipSerializer(many=True), description="Members, revoked ones left out.")
    @action(detail=True, methods=["get"])
    def members(self, request: Request, pk: Any = None) -> Response:
        ws = self.get_object()
        rows = ws.memberships.exclude(state=ResourceState.REVOKED).order_by("persona", "principal_name")
        return Response(MembershipSerializer(rows, many=True).data)

    @extend_schema(responses=ClusterSerializer(many=True))
    @action(detail=True, methods=["get"])
    def clusters(self, request: Request, pk: Any = None) -> Response:
        return Response(ClusterSerializer(selectors.clusters_of(self.get_object()), many=True).data)

    @extend_schema(
        responses=DriftItemSerializer(many=True),
        description="Where Azure differs from what the portal approved (admins; open items first).",
    )
    @action(detail=True, methods=["get"])
    def drift(self, request: Request, pk: Any = None) -> Response:
        if not personas.is_admin(request.user):
            raise PermissionDenied("only portal administrators can see drift")
        ws = self.get_object()
        items = (
            drift.drift_items_visible_to(request.user).filter(workspace=ws).order_by("status", "-last_seen")
        )
        return Response(DriftItemSerializer(items[:500], many=True).data)


FIGURES = inline_serializer(
    "CapacityFigures",
    {
        "key": serializers.CharField(),
        "label": serializers.CharField(),
        "priority": serializers.CharField(),
        "used": serializers.IntegerField(allow_null=True),
        "limit": serializers.IntegerField(allow_null=True),
        "allocated": serializers.IntegerField(),
        "held": serializers.IntegerField(),
        "pending": serializers.IntegerField(),
    },
)


def _figures(f: capacity_report.Figures) -> dict[str, Any]:
    return {
        "key": f.key,
        "label": f.label,
        "priority": f.priority,
        "used": f.used,
        "limit": f.limit,
        "allocated": f.allocated,
        "held": f.held,
        "pending": f.pending,
    }


@extend_schema(
    parameters=[
        OpenApiParameter("team", str, description="department/team, or part of either"),
        OpenApiParameter("page", int, description="Page of team budgets (25 a page)"),
    ],
    responses={
        200: inline_serializer(
            "Capacity",
            {
                "regions": inline_serializer(
                    "RegionCapacity",
                    {
                        "region": serializers.CharField(),
                        "subscriptions": serializers.ListField(child=serializers.CharField()),
                        "refreshed_at": serializers.DateTimeField(allow_null=True),
                        "families": FIGURES.__class__(many=True),
                        "dedicated_total": FIGURES,
                        "low_priority_total": FIGURES,
                    },
                    many=True,
                ),
                "budgets": serializers.ListField(child=serializers.DictField()),
                "budget_pages": serializers.IntegerField(),
            },
        )
    },
    description="Cores used and allowed per region (Azure's quota, held, pending), and team budgets (admins).",
)
@api_view(["GET"])
def capacity(request: Request) -> Response:
    if not personas.is_admin(request.user):
        raise PermissionDenied("only portal administrators can see capacity")
    pages = Paginator(
        capacity_report.budgets_matching(request.query_params.get("team", "")[:60]), BUDGETS_PER_PAGE
    )
    page = pages.get_page(request.query_params.get("page"))
    overview = capacity_report.capacity_overview(budgets=page.object_list)
    regions = [
        {
            "region": r.region.name,
            "subscriptions": r.subscriptions,
            "refreshed_at": r.refreshed_at,
            "families": [_figures(f) for f in r.families],
            "dedicated_total": _figures(r.dedicated_total),
            "low_priority_total": _figures(r.low_priority_total),
        }
        for r in overview.regions
    ]
    budgets = [
        {
            "department": b.budget.department,
            "team": b.budget.team,
            "region": b.budget.region,
            "family": b.budget.family,
            "family_label": b.family_label,
            "dedicated_cores": b.budget.dedicated_cores,
            "low_priority_cores": b.budget.low_priority_cores,
            "held_dedicated": b.held_dedicated,
            "held_low_priority": b.held_low_priority,
            "pending_dedicated": b.pending_dedicated,
            "pending_low_priority": b.pending_low_priority,
        }
        for b in overview.budgets
    ]
    return Response({"regions": regions, "budgets": budgets, "budget_pages": pages.num_pages})


class AuditPagination(NewestFirst):
    page_size = 100


AUDIT_FILTERS = [
    OpenApiParameter("actor", str, description="Who did it: display name, UPN or id (part of it)"),
    OpenApiParameter("action", str, description="What was done, or its start (request.)"),
    OpenApiParameter("steps", bool, description="Include provisioning steps' events (left out by default)"),
    OpenApiParameter("workspace", str, description="Workspace name (part of it)"),
    OpenApiParameter("request", int, description="Request number"),
    OpenApiParameter("date_from", str, description="From this day (YYYY-MM-DD, UTC)"),
    OpenApiParameter("date_to", str, description="To this day, inclusive (YYYY-MM-DD, UTC)"),
]


class AuditViewSet(viewsets.GenericViewSet):
    """The audit trail (admins), newest first, a cursor per page; the same rows as the CSV export."""

    queryset = AuditEvent.objects.none()
    pagination_class = AuditPagination

    @extend_schema(
        parameters=AUDIT_FILTERS,
        responses=inline_serializer(
            "AuditEvent",
            {name: serializers.JSONField() for name in exports.CSV_COLUMNS},
            many=True,
        ),
    )
    def list(self, request: Request) -> Response:
        if not personas.is_admin(request.user):
            raise PermissionDenied("only portal administrators can read the audit trail")
        try:
            filters = exports.filters_clean(
                {k: v for k, v in request.query_params.items() if k in AUDIT_FILTER_NAMES and v}
            )
        except exports.ExportError as exc:
            raise serializers.ValidationError({"filters": [str(exc)]}) from exc
        events = exports.events_matching(selectors.audit_events_visible_to(request.user), filters)
        page = self.paginate_queryset(events)
        assert page is not None  # nosec B101 # the viewset always pages
        return self.get_paginated_response([exports.event_fields(e) for e in page])


# Every filter the audit page and its exports know.
AUDIT_FILTER_NAMES = frozenset({*exports.TEXT_FILTERS, "request", *exports.DATE_FILTERS, "steps"})


@extend_schema(
    responses={
        200: inline_serializer(
            "Access",
            {
                "workspace": WorkspaceSerializer(),
                "persona": serializers.CharField(),
                "principal_name": serializers.CharField(),
                "state": serializers.CharField(),
                "expires_at": serializers.DateTimeField(allow_null=True),
                "clusters": ClusterSerializer(many=True),
                "studio_url": serializers.URLField(),
                "config": serializers.DictField(),
                "role": serializers.CharField(),
                "can": serializers.ListField(child=serializers.CharField()),
                "cannot": serializers.ListField(child=serializers.CharField()),
            },
            many=True,
        )
    },
    description="The workspaces the caller is a member of (as a user or through a group), what their role "
    "lets them do, and how to connect.",
)
@api_view(["GET"])
def my_access(request: Request) -> Response:
    live = Cluster.objects.exclude(state=ResourceState.REVOKED).order_by("name")
    memberships: QuerySet[Membership] = (
        selectors.memberships_of(request.user)
        .select_related("workspace__owner")
        .prefetch_related(Prefetch("workspace__clusters", queryset=live, to_attr="live_clusters"))
    )
    found = []
    for m in memberships[:500]:
        ws = m.workspace
        abilities = persona_abilities(
            Persona.DATA_SCIENTIST if m.principal_type == "group" else m.persona, ws.scientist_role
        )
        found.append(
            {
                "workspace": WorkspaceSerializer(ws).data,
                "persona": m.persona,
                "principal_name": m.principal_name,
                "state": m.state,
                "expires_at": m.expires_at,
                "clusters": ClusterSerializer(ws.live_clusters, many=True).data,  # type: ignore[attr-defined]
                "studio_url": studio_url(ws),
                "config": ws.sdk_config(),
                "role": abilities.role,
                "can": list(abilities.can),
                "cannot": list(abilities.cannot),
            }
        )
    return Response(found)
