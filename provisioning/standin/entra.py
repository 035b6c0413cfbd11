"""Entra ID (the v2.0 endpoints MSAL uses): OpenID discovery and the token endpoint.

Grants are dispatched by ``grant_type`` through ``EntraApi.grants``: client credentials here; user
sign-in (authorize, the authorization code grant, keys, logout) lives in ``entra_signin``, which adds its
grant and routes. Access tokens are opaque random strings the stand-in remembers, so ARM and Graph can
tell a token it issued from any other; a token is only issued for a resource the stand-in serves
(``{base}/.default``), as Entra ID refuses scopes of unknown resources.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from typing import Any

from provisioning.standin.arm import Context
from provisioning.standin.state import App, IssuedToken
from provisioning.standin.wire import ENTRA, Request, Response, Route, aad_error, route

TOKEN_LIFETIME = 3600
WELL_KNOWN_TENANTS = ("common", "organizations")


class EntraApi:
    """OpenID configuration and the OAuth 2.0 token endpoint of the stand-in's tenant."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.grants: dict[str, Callable[[Request, dict[str, str]], Response]] = {
            "client_credentials": self.client_credentials,
        }
        # Where browsers reach the authorize and logout pages, when not this server (see StandIn).
        self.browser_base_url = ""

    def routes(self) -> list[Route]:
        tenant = r"/(?P<tenant>[^/]+)"
        return [
            route(
                "GET",
                tenant + r"/v2\.0/\.well-known/openid-configuration",
                "entra.openid_configuration",
                self.openid_configuration,
                area=ENTRA,
                auth=False,
            ),
            route(
                "GET",
                tenant + r"/\.well-known/openid-configuration",
                "entra.openid_configuration",
                self.openid_configuration_v1,
                area=ENTRA,
                auth=False,
            ),
            route("POST", tenant + r"/oauth2/v2\.0/token", "entra.token", self.token, area=ENTRA, auth=False),
        ]

    def tenant_of(self, req: Request, *, allow_common: bool = False) -> str:
        """The request's tenant (this stand-in's, or common/organizations where allowed), else AADSTS90002."""
        tenant = req.params["tenant"]
        if tenant.lower() == self.ctx.tenant_id.lower() or (
            allow_common and tenant.lower() in WELL_KNOWN_TENANTS
        ):
            return tenant.lower()
        raise aad_error(
            400,
            "invalid_tenant",
            90002,
            f"Tenant '{tenant}' not found. Check to make sure you have the "
            "correct tenant ID and are signing into the correct cloud.",
        )

    def openid_configuration(self, req: Request) -> Response:
        tenant = self.tenant_of(req, allow_common=True)
        base = f"{req.base_url}/{tenant}"
        browser = f"{self.browser_base_url or req.base_url}/{tenant}"
        issuer_tenant = "{tenantid}" if tenant in WELL_KNOWN_TENANTS else self.ctx.tenant_id
        return Response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{req.base_url}/{issuer_tenant}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{req.base_url}/oidc/userinfo",
                "authorization_endpoint": f"{browser}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{browser}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "acr",
                    "nonce",
                    "preferred_username",
                    "name",
                    "tid",
                    "ver",
                    "at_hash",
                    "c_hash",
                    "email",
                    "oid",
                ],
                "tenant_region_scope": "EU",
                "cloud_instance_name": req.base_url.split("://", 1)[-1],
                "cloud_graph_host_name": req.base_url.split("://", 1)[-1],
                "msgraph_host": req.base_url.split("://", 1)[-1],
            },
        )

    def openid_configuration_v1(self, req: Request) -> Response:
        tenant = self.tenant_of(req, allow_common=True)
        base = f"{req.base_url}/{tenant}"
        return Response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/token",
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "issuer": f"{req.base_url}/{self.ctx.tenant_id}/",
                "jwks_uri": f"{req.base_url}/common/discovery/keys",
                "end_session_endpoint": f"{base}/oauth2/logout",
                "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    def token(self, req: Request) -> Response:
        self.tenant_of(req)
        form = req.form()
        grant = form.get("grant_type", "")
        handler = self.grants.get(grant)
        if handler is None:
            raise aad_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant}'.",
            )
        return handler(req, form)

    def _client(self, req: Request, form: dict[str, str]) -> tuple[str, str]:
        """Client id and secret from the form (client_secret_post) or Basic auth (client_secret_basic)."""
        auth = req.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
            return client_id, secret
        return form.get("client_id", ""), form.get("client_secret", "")

    def authenticated_app(self, req: Request, form: dict[str, str]) -> App:
        """The registered app whose id and secret the request carries, or Entra ID's 400/401."""
        client_id, secret = self._client(req, form)
        app = self.state.apps.get(client_id.lower())
        if app is None:
            raise aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not "
                f"found in the directory '{self.ctx.tenant_id}'.",
            )
        if not secret or not secrets.compare_digest(secret, app.secret):
            raise aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being "
                "sent in the request is the client secret value, not the client secret ID, for a secret "
                f"added to app '{client_id}'.",
            )
        return app

    def client_credentials(self, req: Request, form: dict[str, str]) -> Response:
        client_id = self.authenticated_app(req, form).client_id
        scope = form.get("scope", "")
        self._check_scope(req, scope)
        return Response(
            200,
            self.issue_access_token(client_id, scope),
            {"Cache-Control": "no-store", "Pragma": "no-cache"},
        )

    def _check_scope(self, req: Request, scope: str) -> None:
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. "
                "Client credential flows must have a scope value with /.default suffixed to the "
                "resource identifier (application ID URI).",
            )
        resource = scopes[0][: -len("/.default")].rstrip("/").lower()
        served = {req.base_url.lower(), req.base_url.lower().replace("127.0.0.1", "localhost")}
        if resource not in served:
            raise aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found "
                f"in the tenant named {self.ctx.tenant_id}. This can happen if the application has not "
                "been installed by the administrator of the tenant or consented to by any user in the "
                "tenant. You might have sent your authentication request to the wrong tenant.",
            )

    def issue_access_token(self, client_id: str, scope: str) -> dict[str, Any]:
        """A new opaque bearer token the stand-in will accept, in the token endpoint's answer shape."""
        token = secrets.token_urlsafe(48)
        with self.state.lock:
            self.state.tokens[token] = IssuedToken(client_id, scope, time.monotonic() + TOKEN_LIFETIME)
        return {
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "ext_expires_in": TOKEN_LIFETIME,
            "access_token": token,
        }

    def bearer_valid(self, header: str) -> str | None:
        """None when the Authorization header carries a live token the stand-in issued, else the reason."""
        if not header:
            return "missing"
        scheme, _, token = header.partition(" ")
        issued = self.state.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if issued is None:
            return "invalid"
        return "expired" if time.monotonic() >= issued.expires else None
