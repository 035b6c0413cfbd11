"""Who calls the REST API: a personal access token or an Entra ID access token, both as ``Bearer``.

``amlp_…`` is a personal access token (``accounts.tokens``); anything else is read as an Entra ID access
token for the portal's API (``accounts.entra_api``). A token that is not accepted is a 401 with the reason
(never the token) and ``WWW-Authenticate: Bearer``; no token at all falls through to the session (the API's
documentation page, signed in, with the CSRF check DRF's session authentication makes).
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts import tokens
from accounts.entra import SignInError
from accounts.entra_api import identity_from_access_token
from accounts.services import user_for_api

logger = logging.getLogger(__name__)


class BearerAuthentication(authentication.BaseAuthentication):
    """``Authorization: Bearer <token>``: a personal access token, or an Entra ID access token."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != b"bearer":
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must be 'Bearer <token>'")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("the token holds characters no token has") from exc
        if token.startswith(tokens.PREFIX):
            found = tokens.token_user(token, method=request.method or "", path=request.path)
            if found is None:
                raise exceptions.AuthenticationFailed("the token is not valid: unknown, expired or revoked")
            return found
        return self._entra(token)

    def _entra(self, token: str) -> tuple[Any, Any]:
        if settings.AUTH_MODE != "entra":
            raise exceptions.AuthenticationFailed(
                "this portal does not sign in with Entra ID: use a personal access token"
            )
        try:
            identity = identity_from_access_token(token)
        except SignInError as exc:
            logger.info("API access token refused: %s", exc.reason)
            raise exceptions.AuthenticationFailed(exc.reason) from exc
        user = user_for_api(identity=identity)
        if user is None:
            raise exceptions.AuthenticationFailed("the access token holds no app role of the portal")
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class BearerScheme(OpenApiAuthenticationExtension):
    """How the OpenAPI schema describes ``BearerAuthentication``."""

    target_class = "accounts.api_auth.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal access token (amlp_…, made on your profile page) or an Entra ID access "
            "token for the portal's API (scope api://{client id}/access_as_user).",
        }
