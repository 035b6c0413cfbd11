"""``/api/v1/requests/``: a request's life through the API, by the same services as the pages.

Every write calls one service of ``provisioning.workflow`` (the same rules, status machine, audit and
permissions); a request the caller may not see is a 404, an action the caller may not take a 403.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import personas
from provisioning.api.serializers import (
    AmendSerializer,
    ChangeRequestSerializer,
    ReasonSerializer,
    RequestCreateSerializer,
    RequestSpecSerializer,
    RequestUpdateSerializer,
    RunSerializer,
)
from provisioning.configfile import desired_state
from provisioning.models import ChangeRequest, Run, Step
from provisioning.problems import Problem
from provisioning.spec import RequestSpec
from provisioning.workflow import config_requests, recovery, selectors, services
from provisioning.workflow.transitions import RequestError
from provisioning.workflow.validation import spec_problems

Status = ChangeRequest.Status
Kind = ChangeRequest.Kind
PROBLEMS = inline_serializer(
    "Problems",
    {
        "detail": serializers.CharField(),
        "problems": inline_serializer(
            "Problem", {"field": serializers.CharField(), "message": serializers.CharField()}, many=True
        ),
    },
)
ERRORS = {400: PROBLEMS, 401: PROBLEMS, 403: PROBLEMS, 404: PROBLEMS, 409: PROBLEMS}
FILTERS = [
    OpenApiParameter("status", str, enum=list(Status.values)),
    OpenApiParameter("kind", str, enum=list(Kind.values)),
    OpenApiParameter("workspace", str, description="Workspace name, or part of it"),
    OpenApiParameter("mine", bool, description="Only the requests the caller made"),
]


class RequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    """Requests the caller may see: their own (drafts included) and, for team leads, their workspaces';
    admins see every request but others' drafts."""

    serializer_class = ChangeRequestSerializer
    queryset = ChangeRequest.objects.none()

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # As the pages: requests are team leads' and admins' (a data scientist sees their access instead).
        if not (personas.is_team_lead(request.user) or personas.is_admin(request.user)):
            raise PermissionDenied("requests are for team leads and admins")

    def get_queryset(self) -> QuerySet[ChangeRequest]:
        requests = selectors.requests_visible_to(self.request.user).order_by("-id")
        query = self.request.query_params
        if query.get("status") in Status.values:
            requests = requests.filter(status=query["status"])
        if query.get("kind") in Kind.values:
            requests = requests.filter(kind=query["kind"])
        if name := query.get("workspace", "").strip()[:33]:
            requests = requests.filter(workspace_name__icontains=name)
        if query.get("mine") in ("1", "true"):
            requests = requests.filter(requester=self.request.user)
        return requests

    def _visible(self, pk: Any) -> ChangeRequest:
        return get_object_or_404(selectors.requests_visible_to(self.request.user), pk=pk)

    def _shown(self, cr: ChangeRequest, code: int = status.HTTP_200_OK) -> Response:
        cr = selectors.requests_visible_to(self.request.user).filter(pk=cr.pk).first() or cr
        return Response(ChangeRequestSerializer(cr).data, status=code)

    @extend_schema(parameters=FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=RequestCreateSerializer,
        responses={201: ChangeRequestSerializer, **ERRORS},
        description="A new draft, from a kind and a spec, or from a tutorial config.yml (a new workspace, or "
        "the changes that make an existing one match the file). Team leads only.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not personas.is_team_lead(request.user):
            raise PermissionDenied("only team leads can make requests")
        body = RequestCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "config_yml" in data:
            cr = self._from_config(data["config_yml"])
        else:
            workspace = None
            if data["kind"] != Kind.NEW_WORKSPACE:
                if "workspace" not in data:
                    raise RequestError("a change names its workspace", [Problem("workspace", "required")])
                workspace = get_object_or_404(
                    selectors.workspaces_visible_to(request.user), pk=data["workspace"]
                )
            cr = services.request_create(
                requester=request.user,
                kind=data["kind"],
                spec=RequestSpecSerializer.spec_of(data["spec"]),
                workspace=workspace,
                lead_joins=data["lead_joins"],
            )
        return self._shown(cr, status.HTTP_201_CREATED)

    def _from_config(self, text: str) -> ChangeRequest:
        desired = desired_state(text, source="config.yml")
        cr = config_requests.request_from_config(requester=self.request.user, desired=desired)
        if cr is None:
            name = desired.workspace.workspace_name if desired.workspace is not None else ""
            raise RequestError(f"workspace {name} matches the file: there is nothing to request")
        return cr

    @extend_schema(
        request=RequestUpdateSerializer,
        responses={200: ChangeRequestSerializer, **ERRORS},
        description="Replace a draft's spec (its requester only). Problems are kept with the draft and shown "
        "by GET; submitting refuses a draft that has any.",
    )
    def partial_update(self, request: Request, pk: Any = None) -> Response:
        cr = self._visible(pk)
        body = RequestUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        spec = RequestSpecSerializer.spec_of(body.validated_data["spec"])
        return self._shown(services.request_update(request_id=cr.pk, actor=request.user, spec=spec))

    @extend_schema(
        responses={
            200: inline_serializer(
                "RequestProblems",
                {
                    "problems": inline_serializer(
                        "RuleProblem",
                        {"field": serializers.CharField(), "message": serializers.CharField()},
                        many=True,
                    )
                },
            ),
            **ERRORS,
        },
        description="What stops a draft or a submitted request from going ahead (the page's problem list).",
    )
    @action(detail=True, methods=["get"])
    def problems(self, request: Request, pk: Any = None) -> Response:
        cr = self._visible(pk)
        found: list[Any] = []
        if cr.status in (Status.DRAFT, Status.SUBMITTED) and cr.kind not in (
            Kind.DECOMMISSION,
            Kind.RENEW_ACCESS,
            Kind.REMEDIATE_DRIFT,
        ):
            found = spec_problems(
                RequestSpec.from_json(cr.spec), kind=cr.kind, workspace=cr.workspace, request_id=cr.pk
            )
        return Response({"problems": [{"field": p.field, "message": p.message} for p in found]})

    @extend_schema(
        responses={200: {"type": "object", "additionalProperties": True}, **ERRORS},
        description="Every resource and role assignment the request makes, changes or removes (the stored "
        "plan once approved).",
    )
    @action(detail=True, methods=["get"])
    def plan(self, request: Request, pk: Any = None) -> Response:
        return Response(services.request_plan(self._visible(pk)))

    @extend_schema(responses={200: RunSerializer(many=True), **ERRORS}, description="Runs and their steps.")
    @action(detail=True, methods=["get"])
    def steps(self, request: Request, pk: Any = None) -> Response:
        cr = self._visible(pk)
        runs = Run.objects.filter(change_request=cr).prefetch_related(
            Prefetch("steps", queryset=Step.objects.order_by("position"))
        )
        return Response(RunSerializer(runs, many=True).data)

    def _act(self, pk: Any, service: Any, **kwargs: Any) -> Response:
        cr = self._visible(pk)
        return self._shown(service(request_id=cr.pk, **kwargs))

    @extend_schema(request=None, responses={200: ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, pk: Any = None) -> Response:
        return self._act(pk, services.request_submit, actor=request.user)

    @extend_schema(request=None, responses={200: ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: Any = None) -> Response:
        return self._act(pk, services.request_cancel, actor=request.user)

    @extend_schema(request=None, responses={200: ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, pk: Any = None) -> Response:
        return self._act(pk, services.request_approve, approver=request.user)

    @extend_schema(request=ReasonSerializer, responses={200: ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, pk: Any = None) -> Response:
        body = ReasonSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._act(
            pk, services.request_reject, approver=request.user, reason=body.validated_data["reason"]
        )

    @extend_schema(request=AmendSerializer, responses={200: ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def amend(self, request: Request, pk: Any = None) -> Response:
        body = AmendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return self._act(pk, recovery.request_amend, actor=request.user, amendment=body.amendment())

    @extend_schema(request=None, responses={200: ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: Any = None) -> Response:
        return self._act(pk, services.request_retry, actor=request.user)

    @extend_schema(
        request=None,
        responses={201: ChangeRequestSerializer, **ERRORS},
        description="A new draft with a rejected or cancelled request's content (its requester only).",
    )
    @action(detail=True, methods=["post"])
    def copy(self, request: Request, pk: Any = None) -> Response:
        cr = self._visible(pk)
        return self._shown(
            services.request_copy(request_id=cr.pk, actor=request.user), status.HTTP_201_CREATED
        )
