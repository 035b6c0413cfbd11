"""Entra ID access tokens for the portal's API: who calls, checked as strictly as the sign-in's id token.

A script or a tool signs its user in with Entra ID and asks for the scope ``api://{client id}/access_as_user``
(``ENTRA_API_SCOPE``); the access token it gets is sent as ``Authorization: Bearer``. It is accepted when it
is signed with one of the tenant's published keys (RS256), issued by the tenant (v2.0 or v1.0 issuer), for
the portal's API (its audience is the app's client id or its application id URI), unexpired, a delegated
token (it names a user, ``oid``, and holds the API's scope in ``scp``), and from this tenant. The app roles in
``roles`` give the personas, as at sign-in. App-only tokens (client credentials, no user) are refused: every
action in the portal is someone's.
"""

from __future__ import annotations

from django.conf import settings

from accounts.entra import EntraIdentity, EntraSignIn, SignInError

ACCESS_TOKEN_CLAIMS = ["iss", "aud", "exp", "iat", "oid", "tid", "scp"]
# A bearer token longer than this is refused unread (an Entra ID access token is 1-3 KB).
MAX_TOKEN_LENGTH = 8192


def api_audiences(client_id: str) -> list[str]:
    """The audiences an access token for the portal's API may carry: v2.0 tokens name the client id, v1.0
    ones the application id URI (``api://{client id}`` unless ``ENTRA_API_AUDIENCE`` names another)."""
    uri = settings.ENTRA_API_AUDIENCE or f"api://{client_id}"
    return [client_id, uri]


def identity_from_access_token(token: str, *, signin: EntraSignIn | None = None) -> EntraIdentity:
    """Who an access token for the portal's API names, or SignInError saying why it is refused."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise SignInError("the access token is too long")
    signin = signin or EntraSignIn.from_settings()
    claims = signin.verified_claims(
        token,
        what="access token",
        audiences=api_audiences(signin.config.client_id),
        issuers=signin.access_token_issuers(),
        required=ACCESS_TOKEN_CLAIMS,
    )
    scopes = str(claims.get("scp", "")).split()
    if settings.ENTRA_API_SCOPE not in scopes:
        raise SignInError(f"the access token does not hold the portal's scope {settings.ENTRA_API_SCOPE}")
    # v2.0 access tokens name the user in preferred_username, v1.0 ones in upn.
    claims.setdefault("preferred_username", claims.get("upn", ""))
    return EntraIdentity.from_claims(claims)
