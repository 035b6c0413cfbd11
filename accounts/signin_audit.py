"""Sign-ins, failed sign-ins, lockouts and sign-outs in the hash-chained audit, for both sign-in methods.

- Entra ID: a completed sign-in is audited by ``services.user_sign_in`` ("user.signed_in", or
  "user.sign_in_refused" without an app role); a refused one (state, token, disabled account) by
  ``sign_in_refused`` below, called from the views.
- Local passwords: Django's auth signals. ``user_logged_in`` is audited only for a password sign-in
  (``accounts.backends.ThrottledBackend`` marks the request a password was offered on; Entra's callback and
  the tests' ``force_login`` never offer one); ``user_login_failed`` and django-axes' ``user_locked_out``.
- Sign-out, either method: ``user_logged_out``.

Nothing typed is stored unless it names an existing account (a password typed into the username field
stays out of the audit), and no password, code or token ever reaches this module.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_ip_address
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction
from django.dispatch import receiver
from django.http import HttpRequest

from provisioning.audit import audit_record

UNKNOWN = "unknown account"


def _method() -> str:
    return "entra" if settings.AUTH_MODE == "entra" else "local"


def _where(request: HttpRequest | None) -> dict[str, Any]:
    return {"method": _method(), "ip": get_client_ip_address(request) if request is not None else None}


def _record(*, actor: Any, action: str, user: Any, request: HttpRequest | None, message: str = "") -> None:
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=action,
            object_type="user",
            object_id=user.pk if user is not None else "",
            after=_where(request),
            message=message,
        )


def _account(username: Any) -> Any:
    """The account a typed username names, or None (the typed text is then not recorded)."""
    if not isinstance(username, str) or not username:
        return None
    return get_user_model().objects.filter(username=username).first()


@receiver(user_logged_in, dispatch_uid="accounts.signin_audit.signed_in")
def _signed_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if not getattr(request, "portal_password_offered", False):  # Entra's is audited by user_sign_in
        return
    _record(actor=user, action="user.signed_in", user=user, request=request)


@receiver(user_logged_out, dispatch_uid="accounts.signin_audit.signed_out")
def _signed_out(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    if user is not None:  # signing out with no session is not an event
        _record(actor=user, action="user.signed_out", user=user, request=request)


def _refused_while_locked_out(request: HttpRequest | None) -> bool:
    """Whether axes refused this attempt before any password was checked (accounts.backends marks it)."""
    return bool(getattr(request, "portal_refused_while_locked_out", False))


@receiver(user_login_failed, dispatch_uid="accounts.signin_audit.failed")
def _password_refused(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kw: Any
) -> None:
    user = _account(credentials.get("username"))
    if _refused_while_locked_out(request):
        message = "locked out: the password was not checked"
    else:
        message = "wrong password" if user else "no such account"
    _record(actor=user or UNKNOWN, action="user.sign_in_failed", user=user, request=request, message=message)


def _locked_out(sender: Any, request: HttpRequest | None, username: Any = None, **kwargs: Any) -> None:
    if _refused_while_locked_out(request):  # axes says so again at every attempt during the lockout
        return
    user = _account(username)
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    _record(
        actor=user or UNKNOWN,
        action="user.locked_out",
        user=user,
        request=request,
        message=f"{settings.AXES_FAILURE_LIMIT} failed sign-ins: locked out for {minutes} minutes",
    )


def sign_in_refused(*, request: HttpRequest, reason: str, user: Any = None) -> None:
    """An Entra ID sign-in that did not complete (the reason is the portal's own text, never Entra's)."""
    _record(actor=user or UNKNOWN, action="user.sign_in_refused", user=user, request=request, message=reason)


def connect() -> None:
    """Listen to django-axes' lockouts (called from ``AccountsConfig.ready``)."""
    from axes.signals import user_locked_out

    user_locked_out.connect(_locked_out, dispatch_uid="accounts.signin_audit.locked_out")
