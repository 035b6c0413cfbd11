"""Personal access tokens: made, used and revoked by their owner, every one of those audited.

A token is ``amlp_`` and 43 URL-safe characters (256 random bits). It is shown once; the database keeps its
SHA-256. It lasts the days its owner chose (at most ``API_TOKEN_MAX_DAYS``), a person holds at most
``API_TOKEN_MAX_LIVE`` live ones, and revoking one takes effect on its next use. Each use records the time
and an audit event naming the token, so what a script did is traced to the token that did it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from accounts import personas
from accounts.models import PersonalAccessToken, User
from provisioning.audit import audit_record
from provisioning.problems import unsafe_character

PREFIX = "amlp_"
MAX_NAME = 100


class TokenError(Exception):
    """Why a token cannot be made (safe to show)."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class MadeToken:
    """A new token: its row, and the token itself, to show once."""

    row: PersonalAccessToken
    token: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def live_tokens(user: User) -> list[PersonalAccessToken]:
    """The person's tokens that work now, newest first."""
    now = timezone.now()
    return list(
        PersonalAccessToken.objects.filter(user=user, revoked_at__isnull=True, expires_at__gt=now).order_by(
            "-created_at", "-id"
        )
    )


def token_create(*, user: User, name: str, days: int) -> MadeToken:
    """A new token for ``user``'s scripts, named and lasting ``days``."""
    if not personas.personas_of(user):
        raise PermissionDenied("only people with a role in the portal make API tokens")
    name = (name or "").strip()
    if not name:
        raise TokenError("name the token (what uses it)", "name")
    if len(name) > MAX_NAME or unsafe_character(name) is not None:
        raise TokenError(f"the name must be at most {MAX_NAME} visible characters", "name")
    max_days = settings.API_TOKEN_MAX_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= max_days:
        raise TokenError(f"a token lasts 1 to {max_days} days", "days")
    token = PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        # Locks the person's row: two tokens made at once cannot both pass the limit.
        User.objects.select_for_update().filter(pk=user.pk).first()
        if len(live_tokens(user)) >= settings.API_TOKEN_MAX_LIVE:
            raise TokenError(
                f"you hold {settings.API_TOKEN_MAX_LIVE} live tokens already: revoke one first", "name"
            )
        row = PersonalAccessToken.objects.create(
            user=user,
            name=name,
            prefix=token[: len(PREFIX) + 6],
            token_hash=token_hash(token),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
        audit_record(
            actor=user,
            action="api_token.created",
            obj=row,
            after={"name": name, "prefix": row.prefix, "expires_at": row.expires_at},
            message=f"API token {name!r} made, lasting {days} days",
        )
    return MadeToken(row, token)


def token_revoke(*, user: User, token_id: int) -> PersonalAccessToken:
    """Revoke one of ``user``'s tokens (idempotent: revoking a revoked token changes nothing)."""
    with transaction.atomic():
        row = PersonalAccessToken.objects.select_for_update().filter(pk=token_id, user=user).first()
        if row is None:
            raise PermissionDenied("that is not one of your tokens")
        if row.revoked_at is None:
            row.revoked_at = timezone.now()
            row.save(update_fields=["revoked_at"])
            audit_record(
                actor=user,
                action="api_token.revoked",
                obj=row,
                after={"name": row.name, "prefix": row.prefix},
                message=f"API token {row.name!r} revoked",
            )
    return row


def token_user(token: str, *, method: str, path: str) -> tuple[User, PersonalAccessToken] | None:
    """The owner of a live token and the token, the use recorded and audited; None for any other string."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    now = timezone.now()
    with transaction.atomic():
        row = (
            PersonalAccessToken.objects.select_related("user")
            .filter(token_hash=token_hash(token), revoked_at__isnull=True, expires_at__gt=now)
            .first()
        )
        if row is None or not row.user.is_active:
            return None
        PersonalAccessToken.objects.filter(pk=row.pk).update(last_used_at=now)
        audit_record(
            actor=row.user,
            action="api_token.used",
            obj=row,
            after={"name": row.name, "method": method[:10], "path": path[:300]},
            message=f"API token {row.name!r}: {method[:10]} {path[:300]}",
        )
    return row.user, row
