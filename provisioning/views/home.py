"""The landing page: each persona goes where their work is."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from accounts import personas


@login_required
def home(request: HttpRequest) -> HttpResponse:
    """Send admins to the approval queue, team leads to their requests, data scientists to their access."""
    if personas.is_admin(request.user):
        return redirect("provisioning:approval_queue")
    if personas.is_team_lead(request.user):
        return redirect("provisioning:my_requests")
    if personas.is_data_scientist(request.user):
        return redirect("provisioning:my_access")
    return render(request, "no_persona.html", status=403)
