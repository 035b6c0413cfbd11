"""The profile page: who you are to the portal, and your API tokens (made, shown once, revoked)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.validators import MaxValueValidator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import personas, tokens
from accounts.models import PersonalAccessToken, User

TOKENS_SHOWN = 50


class TokenForm(forms.Form):
    name = forms.CharField(
        max_length=tokens.MAX_NAME, help_text="What uses it, e.g. 'nightly import from git'."
    )
    days = forms.IntegerField(
        min_value=1, initial=90, label="Lasts (days)", help_text="It stops working after this many days."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The setting is read when the form is made (tests and deployments change it).
        self.fields["days"].validators.append(MaxValueValidator(settings.API_TOKEN_MAX_DAYS))
        self.fields["days"].widget.attrs["max"] = settings.API_TOKEN_MAX_DAYS


def _render(
    request: HttpRequest, form: TokenForm, *, made: tokens.MadeToken | None = None, status: int = 200
) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    rows = PersonalAccessToken.objects.filter(user=user).order_by("-created_at", "-id")[:TOKENS_SHOWN]
    context = {
        "nav": "profile",
        "form": form,
        "made": made,
        "tokens": rows,
        "persona_list": sorted(personas.personas_of(user)),
        "max_days": settings.API_TOKEN_MAX_DAYS,
        "now": timezone.now(),
    }
    return render(request, "accounts/profile.html", context, status=status)


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    """GET: the page. POST: make a token and show it, this once (the page is never cached)."""
    if not personas.personas_of(request.user):
        raise PermissionDenied("you hold no role in the portal")
    if request.method != "POST":
        return _render(request, TokenForm())
    form = TokenForm(request.POST)
    if form.is_valid():
        try:
            made = tokens.token_create(
                user=request.user,  # type: ignore[arg-type]
                name=form.cleaned_data["name"],
                days=form.cleaned_data["days"],
            )
        except tokens.TokenError as exc:
            form.add_error(exc.field or None, exc.message)
        else:
            return _render(request, TokenForm(), made=made)
    return _render(request, form, status=400)


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    row = tokens.token_revoke(user=request.user, token_id=pk)  # type: ignore[arg-type]
    messages.success(request, f"Token {row.name!r} is revoked: it no longer works.")
    return redirect("accounts:profile")
