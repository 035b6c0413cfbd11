"""Entra ID user sign-in for the stand-in: authorize, the authorization code grant, keys and logout.

The authorize endpoint shows a page listing the directory's users as buttons (a demo's "who are you");
a ``login_hint`` naming a user signs in at once, which is what tests use. Codes are single-use, live ten
minutes and are bound to the client, the redirect URI and the PKCE challenge (S256), as Entra ID binds
them. Id tokens are RS256-signed with a key made at start and published at the keys endpoint. Tests can
make the next id token wrong in a chosen way (``IdTokenTamper``) or mint one directly (``mint``).

Simplifications: app roles are held by the user (``Principal.roles``) and appear in the tokens of every
app, as if assigned on each enterprise application; no password is asked; only ``response_mode=query``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from provisioning.standin.arm import Context
from provisioning.standin.entra import EntraApi
from provisioning.standin.state import App, AuthCode, Principal, State
from provisioning.standin.wire import ENTRA, HttpError, Request, Response, Route, aad_error, route

CODE_LIFETIME = 600
ID_TOKEN_LIFETIME = 3600
# Pages a browser visits; with ``StandIn(browser_http=True)`` they are also served over plain HTTP.
BROWSER_OPERATIONS = frozenset({"entra.authorize", "entra.logout"})
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@dataclass
class SigningKey:
    """An RSA key the stand-in signs id tokens with, named by its key id."""

    kid: str
    private: rsa.RSAPrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(secrets.token_urlsafe(16), rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def jwk(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return {"kty": "RSA", "use": "sig", "kid": self.kid, "n": public["n"], "e": public["e"]}


@dataclass(frozen=True)
class IdTokenTamper:
    """How the next id token goes wrong: claims replaced (None removes one), another key, alg or kid.

    ``key`` None signs with the stand-in's current key (for ``alg="HS256"`` pass the secret, for
    ``alg="none"`` nothing).
    """

    claims: dict[str, Any] = field(default_factory=dict)
    key: Any = None
    alg: str = "RS256"
    kid: str | None = None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _with_query(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _page(status: int, title: str, body: str) -> Response:
    document = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem}"
        "button{display:block;width:100%;text-align:left;margin:.4rem 0;padding:.6rem;font-size:1rem;"
        "cursor:pointer}small{color:#555}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(status, document.encode(), dict(NO_STORE), "text/html; charset=utf-8")


def _error_page(status: int, aadsts: int, message: str) -> HttpError:
    text = f"<p>AADSTS{aadsts}: {html.escape(message)}</p>"
    return HttpError(_page(status, "Sorry, but we're having trouble signing you in.", text))


def _invalid_grant(aadsts: int, description: str) -> HttpError:
    return aad_error(400, "invalid_grant", aadsts, description, NO_STORE)


class SignInApi:
    """The user sign-in half of the stand-in's Entra ID."""

    def __init__(self, ctx: Context, entra: EntraApi) -> None:
        self.ctx = ctx
        self.state = ctx.state
        self.entra = entra
        self.keys: list[SigningKey] = [SigningKey.generate()]
        self.tampers: list[IdTokenTamper] = []
        entra.grants["authorization_code"] = self.authorization_code

    def routes(self) -> list[Route]:
        tenant = r"/(?P<tenant>[^/]+)"
        authorize = tenant + r"/oauth2/v2\.0/authorize"
        return [
            route("GET", authorize, "entra.authorize", self.authorize, area=ENTRA, auth=False),
            route("POST", authorize, "entra.authorize", self.authorize, area=ENTRA, auth=False),
            route("GET", tenant + r"/discovery/v2\.0/keys", "entra.keys", self.jwks, area=ENTRA, auth=False),
            route(
                "GET", tenant + r"/oauth2/v2\.0/logout", "entra.logout", self.logout, area=ENTRA, auth=False
            ),
        ]

    def reset(self) -> None:
        """Forget pending tampering (the signing keys stay: clients may have cached them)."""
        self.tampers.clear()

    def rotate_key(self) -> str:
        """Sign with a new key from now on; the old one stays published. Returns the new key id."""
        self.keys.insert(0, SigningKey.generate())
        return self.keys[0].kid

    # --- authorize ----

    def authorize(self, req: Request) -> Response:
        self.entra.tenant_of(req)
        params = {**req.query, **(req.form() if req.method == "POST" else {})}
        app = self._app(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            raise _error_page(
                400,
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect "
                f"URIs configured for the application '{app.client_id}'.",
            )
        problem = self._request_problem(params)
        if problem is not None:
            error, aadsts, message = problem
            return self._redirect(
                redirect_uri, params, error=error, error_description=f"AADSTS{aadsts}: {message}"
            )
        hint = params.get("login_hint", "").strip()
        user = self._user(hint) if hint else None
        if user is None:
            return self._picker(req, params, unknown=hint)
        if not user.enabled:
            raise _error_page(400, 50057, "The user account is disabled.")
        return self._redirect(
            redirect_uri, params, code=self._new_code(app, user, params), session_state=str(uuid.uuid4())
        )

    def _app(self, client_id: str) -> App:
        app = self.state.apps.get(client_id.lower())
        if app is None:
            raise _error_page(
                400,
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.ctx.tenant_id}'.",
            )
        return app

    @staticmethod
    def _request_problem(params: dict[str, str]) -> tuple[str, int, str] | None:
        """What Entra ID answers (redirecting back) to a malformed authorization request."""
        if params.get("response_type") != "code":
            return "unsupported_response_type", 700054, "response_type must be 'code' here."
        if params.get("response_mode", "query") != "query":
            return "invalid_request", 900144, "The stand-in supports only response_mode=query."
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope", 70011, "The provided request must include an 'openid' scope."
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return "invalid_request", 5000745, "The stand-in supports only the S256 code challenge method."
        return None

    def _user(self, hint: str) -> Principal | None:
        hint = hint.lower()
        return next(
            (
                p
                for p in self.state.principals.values()
                if p.kind == "user"
                and (hint in {p.upn.lower(), p.object_id.lower()} or (p.guest and hint == p.mail.lower()))
            ),
            None,
        )

    def _new_code(self, app: App, user: Principal, params: dict[str, str]) -> str:
        code = secrets.token_urlsafe(48)
        self.state.auth_codes[code] = AuthCode(
            client_id=app.client_id,
            redirect_uri=params["redirect_uri"],
            object_id=user.object_id,
            scope=params.get("scope", ""),
            nonce=params.get("nonce", ""),
            code_challenge=params.get("code_challenge", ""),
            code_challenge_method=params.get("code_challenge_method", ""),
            expires=time.monotonic() + CODE_LIFETIME,
        )
        return code

    @staticmethod
    def _redirect(redirect_uri: str, params: dict[str, str], **answer: str) -> Response:
        if params.get("state"):
            answer["state"] = params["state"]
        return Response(302, None, {"Location": _with_query(redirect_uri, answer), **NO_STORE})

    def _picker(self, req: Request, params: dict[str, str], *, unknown: str) -> Response:
        hidden = "".join(
            f"<input type='hidden' name='{html.escape(k)}' value='{html.escape(v)}'>"
            for k, v in sorted(params.items())
            if k != "login_hint"
        )
        users = sorted((p for p in self.state.principals.values() if p.kind == "user"), key=lambda p: p.upn)
        buttons = "".join(
            f"<button type='submit' name='login_hint' value='{html.escape(p.upn)}'>{html.escape(p.display_name)}"
            f"<br><small>{html.escape(p.upn)} · {html.escape(', '.join(p.roles) or 'no app role')}</small></button>"
            for p in users
        )
        notice = (
            f"<p><strong>No user {html.escape(unknown)} in this directory.</strong></p>" if unknown else ""
        )
        action = html.escape(req.path)
        body = (
            f"{notice}<p>Local Azure stand-in: choose who signs in (no password is asked).</p>"
            f"<form method='post' action='{action}'>{hidden}{buttons or '<p>The directory has no users.</p>'}</form>"
        )
        return _page(200, "Pick an account", body)

    # --- token: the authorization code grant ----

    def authorization_code(self, req: Request, form: dict[str, str]) -> Response:
        app = self.entra.authenticated_app(req, form)
        grant = self._redeem(form.get("code", ""))
        self._check_grant(grant, app, form)
        user = self.state.principals.get(grant.object_id)
        if user is None:
            raise _invalid_grant(50034, "The user account does not exist in the directory.")
        issuer = f"{req.base_url}/{self.ctx.tenant_id}/v2.0"
        claims = self.claims_for(user, client_id=app.client_id, nonce=grant.nonce, issuer=issuer)
        body = self.entra.issue_access_token(app.client_id, "User.Read")
        body.update(
            scope="openid profile email User.Read",
            id_token=self._next_id_token(claims),
            client_info=_b64url(json.dumps({"uid": user.object_id, "utid": self.ctx.tenant_id}).encode()),
        )
        return Response(200, body, dict(NO_STORE))

    def _redeem(self, code: str) -> AuthCode:
        """The code's grant, consumed: a code is redeemable once, whatever the outcome."""
        if code in self.state.redeemed_codes:
            raise _invalid_grant(
                54005, "OAuth2 Authorization code was already redeemed, please retry with a new valid code."
            )
        grant = self.state.auth_codes.pop(code, None)
        if grant is None:
            raise _invalid_grant(70000, "The provided value for the 'code' parameter is not valid.")
        self.state.redeemed_codes.add(code)
        if time.monotonic() > grant.expires:
            raise _invalid_grant(70008, "The provided authorization code or refresh token has expired.")
        return grant

    @staticmethod
    def _check_grant(grant: AuthCode, app: App, form: dict[str, str]) -> None:
        if grant.client_id != app.client_id:
            raise _invalid_grant(70000, "The authorization code was issued to another application.")
        if form.get("redirect_uri", "") != grant.redirect_uri:
            raise _invalid_grant(
                70000, "The redirect URI does not match the one used to request the authorization code."
            )
        if grant.code_challenge:
            verifier = form.get("code_verifier", "")
            expected = _b64url(hashlib.sha256(verifier.encode()).digest())
            if not verifier or not secrets.compare_digest(expected, grant.code_challenge):
                raise _invalid_grant(
                    501481,
                    "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                )

    # --- id tokens ----

    def claims_for(self, user: Principal, *, client_id: str, nonce: str, issuer: str) -> dict[str, Any]:
        """The claims of a v2.0 id token for this user and app (roles only when the user has some)."""
        now = int(time.time())
        pairwise = hashlib.sha256(f"{user.object_id}:{client_id}".encode()).digest()
        claims: dict[str, Any] = {
            "aud": client_id,
            "iss": issuer,
            "iat": now,
            "nbf": now,
            "exp": now + ID_TOKEN_LIFETIME,
            "name": user.display_name,
            "oid": user.object_id,
            "preferred_username": user.upn,
            "sub": _b64url(pairwise),
            "tid": self.ctx.tenant_id,
            "uti": secrets.token_urlsafe(16),
            "ver": "2.0",
        }
        if nonce:
            claims["nonce"] = nonce
        if user.mail:
            claims["email"] = user.mail
        if user.guest:
            # As Entra ID signs a guest in: its home address as preferred_username, the identity provider
            # of its home tenant (idp), and the optional claim acct = 1 (a guest account).
            claims["preferred_username"] = user.mail or user.upn
            claims["idp"] = "https://sts.windows.net/9188040d-6c67-4c5b-b112-36a304b66dad/"
            claims["acct"] = 1
        if user.roles:
            claims["roles"] = list(user.roles)
        return claims

    def _next_id_token(self, claims: dict[str, Any]) -> str:
        tamper = self.tampers.pop(0) if self.tampers else IdTokenTamper()
        return self.mint(claims, tamper)

    def mint(self, claims: dict[str, Any], tamper: IdTokenTamper | None = None) -> str:
        """Sign these claims, changed as ``tamper`` says."""
        tamper = tamper or IdTokenTamper()
        merged = {**claims, **tamper.claims}
        payload = {k: v for k, v in merged.items() if v is not None}
        headers = {"kid": tamper.kid or self.keys[0].kid, "typ": "JWT"}
        if tamper.alg == "none":
            return jwt.encode(payload, "", algorithm="none", headers=headers)
        key = tamper.key if tamper.key is not None else self.keys[0].private
        return jwt.encode(payload, key, algorithm=tamper.alg, headers=headers)

    def jwks(self, req: Request) -> Response:
        self.entra.tenant_of(req, allow_common=True)
        return Response(200, {"keys": [k.jwk() for k in self.keys]})

    # --- logout ----

    def logout(self, req: Request) -> Response:
        self.entra.tenant_of(req, allow_common=True)
        target = req.query.get("post_logout_redirect_uri", "")
        registered = {uri for app in self.state.apps.values() for uri in app.redirect_uris}
        if target and target in registered:
            state = {"state": req.query["state"]} if req.query.get("state") else {}
            return Response(302, None, {"Location": _with_query(target, state), **NO_STORE})
        return _page(
            200, "You signed out of your account", "<p>It's a good idea to close all browser windows.</p>"
        )


class SignInKnobs:
    """The stand-in's sign-in API for tests and demos (a part of ``StandIn``)."""

    state: State
    signin: SignInApi
    tenant_id: str
    client_id: str
    base_url: str

    def register_app(self, display_name: str, *, redirect_uris: Sequence[str] = ()) -> App:
        """Another app registration (e.g. the portal's sign-in app) with a secret and redirect URIs.

        Apps outlive ``reset()``, like the default one.
        """
        app = App(str(uuid.uuid4()), secrets.token_urlsafe(32), str(uuid.uuid4()), display_name)
        app.redirect_uris.extend(redirect_uris)
        with self.state.lock:
            self.state.apps[app.client_id] = app
            self.state.principals[app.principal_id] = Principal(
                app.principal_id, "servicePrincipal", display_name, app_id=app.client_id, created=0.0
            )
        return app

    def add_redirect_uri(self, uri: str, client_id: str | None = None) -> None:
        """Allow one more redirect URI (and post-logout redirect URI) for an app (default: the stand-in's)."""
        with self.state.lock:
            self.state.apps[(client_id or self.client_id).lower()].redirect_uris.append(uri)

    def sign_in_environment(self, app: App) -> dict[str, str]:
        """The ENTRA_* settings' environment variables for signing in to this stand-in as ``app``."""
        return {
            "AUTH_MODE": "entra",
            "ENTRA_TENANT_ID": self.tenant_id,
            "ENTRA_CLIENT_ID": app.client_id,
            "ENTRA_CLIENT_SECRET": app.secret,
            "ENTRA_AUTHORITY_HOST": self.base_url,
            "ENTRA_DISABLE_INSTANCE_DISCOVERY": "true",
        }

    def tamper_next_id_token(
        self,
        *,
        claims: dict[str, Any] | None = None,
        key: Any = None,
        alg: str = "RS256",
        kid: str | None = None,
    ) -> None:
        """Make the next id token the token endpoint issues wrong: claims replaced (None removes one),
        signed with another key (or an HS256 secret, or alg "none"), or naming another key id."""
        self.signin.tampers.append(IdTokenTamper(dict(claims or {}), key, alg, kid))

    def mint_id_token(
        self,
        object_id: str,
        *,
        client_id: str | None = None,
        nonce: str = "",
        claims: dict[str, Any] | None = None,
        key: Any = None,
        alg: str = "RS256",
        kid: str | None = None,
    ) -> str:
        """An id token for a directory user, as the token endpoint would issue it, changed as asked."""
        user = self.state.principal(object_id)
        if user is None:
            raise KeyError(f"no directory object {object_id}")
        issuer = f"{self.base_url}/{self.tenant_id}/v2.0"
        base = self.signin.claims_for(user, client_id=client_id or self.client_id, nonce=nonce, issuer=issuer)
        return self.signin.mint(base, IdTokenTamper(dict(claims or {}), key, alg, kid))

    def mint_access_token(
        self,
        object_id: str,
        *,
        client_id: str | None = None,
        scope: str = "access_as_user",
        claims: dict[str, Any] | None = None,
        key: Any = None,
        alg: str = "RS256",
    ) -> str:
        """A v2.0 access token for the portal's own API (``api://{client id}/access_as_user``), as Entra ID
        issues one to a client that signed the user in: the API's client id as audience, the scope in
        ``scp``, the user's app roles in ``roles``; changed as asked (None removes a claim)."""
        user = self.state.principal(object_id)
        if user is None:
            raise KeyError(f"no directory object {object_id}")
        issuer = f"{self.base_url}/{self.tenant_id}/v2.0"
        base = self.signin.claims_for(user, client_id=client_id or self.client_id, nonce="", issuer=issuer)
        base.update(
            scp=scope, azp="04b07795-8ddb-461a-bbee-02f9e1bf7b46", azpacr="0", uti=secrets.token_urlsafe(16)
        )
        for name in ("email", "idp", "acct"):
            base.pop(name, None)
        return self.signin.mint(base, IdTokenTamper(dict(claims or {}), key, alg, None))

    def rotate_signing_key(self) -> str:
        """Sign id tokens with a new key (the old one stays published); returns the new key id."""
        return self.signin.rotate_key()
