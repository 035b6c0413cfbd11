"""Each person's mail preferences: which kinds of notification mail they receive. The rules are in
``provisioning.workflow.notifications`` (checked when a notification is written; Teams channels unaffected)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from provisioning.models import NotificationKind
from provisioning.workflow import notifications


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    """The kinds of mail, each on or off; saving keeps the ones ticked and turns the others off."""
    if request.method == "POST":
        notifications.preferences_set(user=request.user, enabled=request.POST.getlist("kind"))  # type: ignore[arg-type]
        messages.success(request, "Your mail preferences are saved.")
        return redirect("provisioning:notification_settings")
    chosen = notifications.preferences_of(request.user)  # type: ignore[arg-type]
    kinds = [(kind, label, chosen[kind]) for kind, label in NotificationKind.choices]
    return render(
        request, "provisioning/notification_settings.html", {"nav": "notifications", "kinds": kinds}
    )
