"""People and groups of the tenant, searched as a team lead types a member (Microsoft Graph).

The portal's sign-in app reads the directory with its own app-only token (MSAL client credentials,
Graph application permissions ``User.Read.All`` and ``GroupMember.Read.All``): the web holds the
sign-in secret, never the provisioning credential. Each search is bounded: a prefix of 2 to 64
characters, at most ``RESULTS`` answers, answers kept a minute per prefix, and at most ``BURST``
searches per person in ``BURST_SECONDS`` (the form also waits for a pause in typing).
"""

from __future__ import annotations

import logging
from typing import Any

import requests
from django.conf import settings
from django.core.cache import cache

from accounts.entra import EntraConfig, app_token, http_client

logger = logging.getLogger(__name__)

KINDS = ("user", "group")
MIN_PREFIX, MAX_PREFIX = 2, 64
RESULTS = 8
CACHE_SECONDS = 60
BURST, BURST_SECONDS = 10, 10


class DirectoryUnavailable(Exception):
    """The directory cannot be searched now (not configured, Entra ID or Graph unreachable, too many searches)."""


def enabled() -> bool:
    """Whether searching is possible: the portal signs people in with Entra ID."""
    return settings.AUTH_MODE == "entra" and bool(settings.ENTRA_CLIENT_ID and settings.ENTRA_CLIENT_SECRET)


def _token() -> str:
    token = app_token(EntraConfig.from_settings(), f"{settings.GRAPH_ENDPOINT}/.default")
    if token is None:
        raise DirectoryUnavailable("Entra ID gave no token to search the directory")
    return token


def _query(kind: str, prefix: str) -> dict[str, str]:
    literal = prefix.replace("'", "''")
    if kind == "group":
        return {
            "$filter": f"startswith(displayName,'{literal}')",
            "$select": "id,displayName,mail,securityEnabled",
            "$top": str(RESULTS * 2),
        }
    return {
        "$filter": " or ".join(
            f"startswith({prop},'{literal}')" for prop in ("displayName", "userPrincipalName", "mail")
        ),
        "$select": "id,displayName,userPrincipalName,mail,accountEnabled,userType",
        "$top": str(RESULTS * 2),
    }


def _answer(kind: str, found: dict[str, Any]) -> dict[str, str] | None:
    """What the form offers for one directory object (None for those that cannot get access)."""
    if kind == "group":
        if not found.get("securityEnabled"):
            return None
        return {"value": str(found["displayName"]), "label": str(found.get("mail") or "security group")}
    if found.get("accountEnabled") is False:
        return None
    guest = str(found.get("userType") or "").lower() == "guest"
    label = str(found.get("displayName") or "") + (" (guest)" if guest else "")
    return {"value": str(found.get("userPrincipalName") or ""), "label": label}


def _throttled(user_id: int) -> bool:
    key = f"directory-search:{user_id}"
    cache.add(key, 0, BURST_SECONDS)
    try:
        return cache.incr(key) > BURST
    except ValueError:  # expired between add and incr
        cache.set(key, 1, BURST_SECONDS)
        return False


def directory_search(*, kind: str, prefix: str, user_id: int) -> list[dict[str, str]]:
    """Users (by name, UPN or mail) or security groups (by name) starting with ``prefix``.

    Empty for a prefix too short or too long; ``DirectoryUnavailable`` when searching is not possible.
    """
    prefix = prefix.strip()
    if kind not in KINDS or not MIN_PREFIX <= len(prefix) <= MAX_PREFIX:
        return []
    if not enabled():
        raise DirectoryUnavailable("the portal does not sign in with Entra ID")
    cache_key = f"directory:{kind}:{prefix.lower()}"
    kept = cache.get(cache_key)
    if kept is not None:
        return list(kept)
    if _throttled(user_id):
        raise DirectoryUnavailable("too many searches: wait a few seconds")
    try:
        response = http_client().get(
            f"{settings.GRAPH_ENDPOINT}/v1.0/{'groups' if kind == 'group' else 'users'}",
            params=_query(kind, prefix),
            headers={"Authorization": f"Bearer {_token()}"},
            timeout=10,
        )
        response.raise_for_status()
    except requests.RequestException as exc:
        logger.warning("directory search failed: %s", exc.__class__.__name__)
        raise DirectoryUnavailable("Entra ID could not be searched; type the address") from exc
    answers = [a for a in (_answer(kind, o) for o in response.json().get("value", [])) if a and a["value"]]
    answers = answers[:RESULTS]
    cache.set(cache_key, answers, CACHE_SECONDS)
    return answers
