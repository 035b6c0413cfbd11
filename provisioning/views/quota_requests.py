"""Quota increase requests: the ask form (team leads and admins), the list, and the admins' decisions."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import personas
from provisioning.models import AllowedRegion, AllowedSubscription, VmSize
from provisioning.models.quota_requests import LOW_PRIORITY_RESOURCE, MAX_JUSTIFICATION
from provisioning.workflow import quota_requests as service
from provisioning.workflow.transitions import RequestError

PAGE_ROWS = 25


class QuotaAskForm(forms.Form):
    """What a team lead asks Azure for: a subscription, a region, a VM family and the limit wanted."""

    subscription_id = forms.ChoiceField(label="Subscription")
    region = forms.ChoiceField()
    family = forms.ChoiceField(label="VM family", help_text="Or all low-priority cores of the region")
    requested_limit = forms.IntegerField(
        label="New limit (vCPUs)",
        min_value=1,
        max_value=10_000,
        help_text="The whole limit, not the increase",
    )
    justification = forms.CharField(
        max_length=MAX_JUSTIFICATION,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Azure support reads it",
    )
    change_request = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        subscriptions = AllowedSubscription.objects.filter(is_active=True).order_by("subscription_id")
        cast(forms.ChoiceField, self.fields["subscription_id"]).choices = [
            (s.subscription_id, str(s)) for s in subscriptions
        ]
        regions = AllowedRegion.objects.filter(is_active=True).order_by("name")
        cast(forms.ChoiceField, self.fields["region"]).choices = [(r.name, r.name) for r in regions]
        families = sorted(set(VmSize.objects.values_list("family", flat=True)))
        cast(forms.ChoiceField, self.fields["family"]).choices = [
            (f, f) for f in [*families, LOW_PRIORITY_RESOURCE]
        ]


def _require_asker(user: Any) -> None:
    if not (personas.is_team_lead(user) or personas.is_admin(user)):
        raise PermissionDenied("only team leads and admins can ask for more quota")


def _initial(request: HttpRequest) -> dict[str, Any]:
    names = {
        "subscription": "subscription_id",
        "region": "region",
        "family": "family",
        "limit": "requested_limit",
    }
    wanted = {field: request.GET.get(param, "")[:60] for param, field in names.items()}
    wanted["change_request"] = request.GET.get("change_request", "")[:12]
    return {k: v for k, v in wanted.items() if v}


@login_required
@require_http_methods(["GET", "POST"])
def quota_request_new(request: HttpRequest) -> HttpResponse:
    """Ask for more subscription quota (from a refused request's page, or the capacity page)."""
    _require_asker(request.user)
    form = QuotaAskForm(request.POST or None, initial=_initial(request))
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            qr = service.quota_request_ask(
                requester=request.user,  # type: ignore[arg-type]
                subscription_id=data["subscription_id"],
                region=data["region"],
                family=data["family"],
                requested_limit=data["requested_limit"],
                justification=data["justification"],
                change_request_id=data["change_request"],
            )
        except RequestError as exc:
            for problem in exc.problems or []:
                form.add_error(problem.field if problem.field in form.fields else None, problem.message)
            if not exc.problems:
                form.add_error(None, exc.message)
        else:
            messages.success(request, f"Quota request #{qr.pk} sent: an admin decides, then Azure does.")
            if data["change_request"]:
                return redirect("provisioning:request_detail", pk=data["change_request"])
            return redirect("provisioning:quota_requests")
    return render(request, "provisioning/quotaincreaserequest_form.html", {"nav": "capacity", "form": form})


@login_required
@require_GET
def quota_request_list(request: HttpRequest) -> HttpResponse:
    """Quota requests with Azure's state (and its reason when denied); admins decide from here."""
    _require_asker(request.user)
    rows = service.quota_requests_visible_to(request.user)  # type: ignore[arg-type]
    page = Paginator(rows, PAGE_ROWS).get_page(request.GET.get("page"))
    context = {"nav": "capacity", "page": page, "is_admin": personas.is_admin(request.user)}
    return render(request, "provisioning/quotaincreaserequest_list.html", context)


@login_required
@require_POST
def quota_request_approve(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin approves: the worker files it with Azure."""
    qr = get_object_or_404(service.quota_requests_visible_to(request.user), pk=pk)  # type: ignore[arg-type]
    try:
        service.quota_request_approve(quota_request_id=qr.pk, approver=request.user)  # type: ignore[arg-type]
    except RequestError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Quota request #{qr.pk} approved: it is being filed with Azure.")
    return redirect("provisioning:quota_requests")


@login_required
@require_POST
def quota_request_reject(request: HttpRequest, pk: int) -> HttpResponse:
    """An admin rejects, with a reason the requester reads."""
    qr = get_object_or_404(service.quota_requests_visible_to(request.user), pk=pk)  # type: ignore[arg-type]
    try:
        service.quota_request_reject(
            quota_request_id=qr.pk,
            approver=request.user,  # type: ignore[arg-type]
            reason=request.POST.get("reason", "")[: service.MAX_REASON + 1],
        )
    except RequestError as exc:
        messages.error(request, exc.message + "".join(f" {p.message}." for p in exc.problems))
    else:
        messages.success(request, f"Quota request #{qr.pk} rejected.")
    return redirect("provisioning:quota_requests")
