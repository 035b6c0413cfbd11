"""Sign-in and sign-out: Microsoft Entra ID (AUTH_MODE=entra) or local Django accounts (AUTH_MODE=local).

The Entra flow (state, nonce, PKCE verifier) lives in the server-side session, keyed by its state, so an
answer is only accepted in the browser session that started it, and only once.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from accounts import directory, personas, services, signin_audit
from accounts.entra import EntraSignIn, SignInError

logger = logging.getLogger(__name__)

FLOWS = "entra_flows"
MAX_PENDING_FLOWS = 3  # a few tabs may start signing in at once
FLOW_SECONDS = 600
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
_local_login = auth_views.LoginView.as_view(
    template_name="accounts/login.html", redirect_authenticated_user=True
)


def _entra_mode() -> bool:
    return bool(settings.AUTH_MODE == "entra")


def _refuse_without_sign_in() -> None:
    """A process started with AUTH_MODE=none (worker, scheduler) signs nobody in, even if asked to serve."""
    if settings.AUTH_MODE == "none":
        raise PermissionDenied("this process serves no sign-in (AUTH_MODE=none)")


def safe_next(candidate: str | None) -> str:
    """A path on this site to go to after sign-in; anything else (another host, a scheme) becomes "/"."""
    if (
        candidate
        and candidate.startswith("/")
        and not candidate.startswith(("//", "/\\"))
        and url_has_allowed_host_and_scheme(candidate, allowed_hosts=None)
    ):
        return candidate
    return "/"


def login_page(request: HttpRequest) -> HttpResponseBase:
    """The sign-in page: a "Sign in with Microsoft" button, or the local password form."""
    _refuse_without_sign_in()
    if not _entra_mode():
        return _local_login(request)
    if request.method != "GET":
        return HttpResponse(status=405, headers={"Allow": "GET"})
    next_url = safe_next(request.GET.get("next"))
    if request.user.is_authenticated:
        return redirect(next_url)
    return render(request, "accounts/login_entra.html", {"next": next_url})


@require_GET
def signin(request: HttpRequest) -> HttpResponse:
    """Start an Entra ID sign-in: remember the flow in the session, send the browser to Entra ID."""
    if not _entra_mode():
        raise Http404("Entra ID sign-in is off (AUTH_MODE=local)")
    hint = request.GET.get("login_hint", "")[:254]
    try:
        flow = EntraSignIn.from_settings().begin(redirect_uri=_redirect_uri(request), login_hint=hint)
    except SignInError as exc:
        return _refused(request, exc)
    flows = _live_flows(request)
    flows[flow["state"]] = {"flow": flow, "next": safe_next(request.GET.get("next")), "at": time.time()}
    request.session[FLOWS] = dict(sorted(flows.items(), key=lambda kv: kv[1]["at"])[-MAX_PENDING_FLOWS:])
    return redirect(flow["auth_uri"])


@require_GET
def callback(request: HttpRequest) -> HttpResponse:
    """Finish an Entra ID sign-in: redeem the code, validate the id token, sync the user, rotate the session."""
    if not _entra_mode():
        raise Http404("Entra ID sign-in is off (AUTH_MODE=local)")
    flows = _live_flows(request)
    pending = flows.pop(request.GET.get("state", ""), None)
    request.session[FLOWS] = flows  # each flow serves once, whatever the outcome
    if pending is None:
        problem = "the answer's state matches no sign-in started" if flows else "no sign-in was started"
        return _refused(request, SignInError(f"{problem} in this browser (in the last ten minutes)"))
    answer = {k: v for k, v in request.GET.items() if isinstance(v, str)}
    try:
        identity = EntraSignIn.from_settings().complete(flow=pending["flow"], auth_response=answer)
    except SignInError as exc:
        return _refused(request, exc)
    user = services.user_sign_in(identity=identity)
    if not user.is_active:
        logout(request)
        return _refused(request, SignInError("this account is disabled in the portal", status=403), user=user)
    if not personas.personas_of(user):
        logout(request)
        return render(request, "no_persona.html", {"entra": True}, status=403)
    login(request, user, backend=MODEL_BACKEND)  # a new session key: nothing fixed before sign-in survives
    request.session.pop(FLOWS, None)
    return redirect(pending["next"])


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    """Sign out (POST only): end the portal session, then Entra ID's too.

    Entra's end-session endpoint is reached from a page of the portal, not by redirecting the POST:
    the Content-Security-Policy's ``form-action 'self'`` makes browsers refuse a form submission that
    redirects to another origin.
    """
    logout(request)
    if not _entra_mode():
        return redirect(settings.LOGOUT_REDIRECT_URL)
    back = settings.ENTRA_POST_LOGOUT_REDIRECT_URI or request.build_absolute_uri(
        reverse("accounts:signed_out")
    )
    url = EntraSignIn.from_settings().end_session_url(post_logout_redirect_uri=back)
    return render(request, "accounts/signing_out.html", {"end_session_url": url})


def admin_login(request: HttpRequest) -> HttpResponseBase:
    """The Django admin's sign-in. With Entra ID it is the portal's: no password form for accounts Entra owns."""
    _refuse_without_sign_in()
    if not _entra_mode():
        return admin.site.login(request)
    next_url = safe_next(request.GET.get("next") or reverse("admin:index"))
    if not request.user.is_authenticated:
        return redirect_to_login(next_url, login_url=reverse("accounts:login"))
    if request.user.is_active and request.user.is_staff:
        return redirect(next_url)
    raise PermissionDenied("the Django admin is for the portal's admins")


def admin_logout(request: HttpRequest) -> HttpResponseBase:
    """The Django admin's "Log out": with Entra ID, the portal's sign-out (which ends the Entra session too)."""
    if not _entra_mode():
        return admin.site.logout(request)
    return logout_view(request)


@require_GET
def signed_out(request: HttpRequest) -> HttpResponse:
    """Where Entra ID sends the browser back after signing out."""
    return render(request, "accounts/signed_out.html")


def _redirect_uri(request: HttpRequest) -> str:
    return str(settings.ENTRA_REDIRECT_URI or request.build_absolute_uri(reverse("accounts:callback")))


def _live_flows(request: HttpRequest) -> dict[str, dict[str, Any]]:
    flows = request.session.get(FLOWS) or {}
    oldest = time.time() - FLOW_SECONDS
    return {state: entry for state, entry in flows.items() if entry.get("at", 0) >= oldest}


def _refused(request: HttpRequest, error: SignInError, *, user: Any = None) -> HttpResponse:
    logger.warning("sign-in refused: %s", error.reason)
    signin_audit.sign_in_refused(request=request, reason=error.reason, user=user)
    return render(request, "accounts/signin_refused.html", {"reason": error.reason}, status=error.status)


@require_GET
def directory_search(request: HttpRequest) -> HttpResponse:
    """The people (or security groups) whose name or address starts with what is typed in a member field,
    as the options of the form's datalist (htmx asks as the team lead types, after a pause)."""
    if not request.user.is_authenticated:
        raise PermissionDenied("sign in first")
    if not (personas.is_team_lead(request.user) or personas.is_admin(request.user)):
        raise PermissionDenied("only team leads and admins search the directory")
    kind = request.GET.get("kind", "user")
    typed = next(
        (str(v) for k, v in request.GET.items() if k == "q" or k.endswith(("principal", "security_group"))),
        "",
    )
    try:
        found = directory.directory_search(kind=kind, prefix=typed, user_id=request.user.pk)
        unavailable = ""
    except directory.DirectoryUnavailable as exc:
        found, unavailable = [], str(exc)
    response = render(
        request, "accounts/_directory_options.html", {"found": found, "unavailable": unavailable}
    )
    response["Cache-Control"] = "private, no-store"
    return response
