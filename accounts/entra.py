"""Sign-in with Microsoft Entra ID: MSAL runs the authorization code flow, this module checks the id token.

Why the id token is validated here: since msal 1.38 MSAL only decodes it. MSAL still checks the state
and the nonce, but accepts a wrong audience, issuer or tenant, an expired token and an unknown signing
key. So ``EntraSignIn.validate_id_token`` checks the signature against the tenant's published keys
(RS256 only), the issuer, the audience, ``tid`` equal to the tenant, ``exp``/``nbf``/``iat`` with 120 s
of leeway, the nonce, and that ``oid`` and ``tid`` are there.

The flow (state, nonce, PKCE verifier) is kept by the caller in the server-side session. Tokens are
neither stored nor logged: each MSAL application, and so its token cache, lives for one call.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import jwt
import msal
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from msal.exceptions import MsalServiceError

logger = logging.getLogger(__name__)

# Multi-tenant authorities would let users of any tenant sign in.
MULTI_TENANT_AUTHORITIES = frozenset({"common", "organizations", "consumers"})
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
LEEWAY_SECONDS = 120
REQUIRED_CLAIMS = ["iss", "aud", "exp", "iat", "oid", "tid", "nonce"]
# MSAL adds openid and profile; offline_access is excluded: the portal never needs a refresh token.
SCOPES = ["email"]
HTTP_TIMEOUT_SECONDS = 10
# Discovery documents and signing keys are fetched again after a day (a key Entra ID withdraws goes too).
METADATA_SECONDS = 24 * 3600
# An unknown key id triggers one refetch of the keys (Entra ID rotates keys), at most this often per id.
KEY_MISS_REFETCH_SECONDS = 60
AUTH_RESPONSE_FIELDS = ("code", "state", "error", "error_description", "client_info", "session_state")

_lock = threading.Lock()
_metadata: dict[str, tuple[float, dict[str, Any]]] = {}
_keys: dict[str, tuple[float, dict[str, Any]]] = {}
_key_misses: dict[tuple[str, str], float] = {}
# MSAL caches discovery answers here (never tokens), so each sign-in does not fetch them again.
_msal_http_cache: dict[Any, Any] = {}
_default_http: requests.Session | None = None
# MSAL recommends form_post, but that answer is a cross-site POST: the SameSite=Lax session cookie (which
# holds the flow) would not come with it. The query answer carries only a PKCE-bound, single-use code.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)


def config_problems(*, tenant_id: str, client_id: str, client_secret: str) -> list[str]:
    """What is wrong with the sign-in settings (empty when they can work)."""
    problems = []
    if tenant_id.lower() in MULTI_TENANT_AUTHORITIES:
        problems.append(f"ENTRA_TENANT_ID={tenant_id!r} would let any tenant in; use your tenant id")
    elif not GUID.match(tenant_id.lower()):
        problems.append("ENTRA_TENANT_ID must be the directory (tenant) id, a GUID")
    if not client_id:
        problems.append("ENTRA_CLIENT_ID (the portal's application id) is required")
    if not client_secret:
        problems.append("ENTRA_CLIENT_SECRET is required")
    return problems


@dataclass(frozen=True)
class EntraConfig:
    """The portal's app registration and the tenant it signs users in from."""

    tenant_id: str
    client_id: str
    client_secret: str
    authority_host: str
    disable_instance_discovery: bool = False

    @classmethod
    def from_settings(cls) -> EntraConfig:
        """The ENTRA_* settings, read when used (the demo sets them after start-up)."""
        config = cls(
            tenant_id=settings.ENTRA_TENANT_ID.strip().lower(),
            client_id=settings.ENTRA_CLIENT_ID,
            client_secret=settings.ENTRA_CLIENT_SECRET,
            authority_host=settings.ENTRA_AUTHORITY_HOST.rstrip("/"),
            disable_instance_discovery=settings.ENTRA_DISABLE_INSTANCE_DISCOVERY,
        )
        problems = config_problems(
            tenant_id=config.tenant_id, client_id=config.client_id, client_secret=config.client_secret
        )
        if problems:
            raise ImproperlyConfigured("AUTH_MODE=entra: " + "; ".join(problems))
        return config

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"


class SignInError(Exception):
    """Why a sign-in attempt is refused. The reason is safe to show and to log: it never holds a token."""

    def __init__(self, reason: str, *, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class EntraIdentity:
    """Who signed in, from a validated id token. (tenant_id, object_id) is the identity; the rest is display."""

    tenant_id: str
    object_id: str
    upn: str
    email: str
    name: str
    roles: tuple[str, ...]
    # A guest (an account of another tenant or a personal one): its preferred_username and email are an
    # address its owner controls, so it never binds memberships named by address.
    guest: bool = False

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> EntraIdentity:
        tenant_id, object_id = str(claims["tid"]).lower(), str(claims["oid"]).lower()
        if not (GUID.match(tenant_id) and GUID.match(object_id)):
            raise SignInError("the id token's tid and oid must be GUIDs")
        roles = claims.get("roles") or []
        return cls(
            tenant_id=tenant_id,
            object_id=object_id,
            upn=str(claims.get("preferred_username") or "")[:254],
            email=str(claims.get("email") or "")[:254],
            name=str(claims.get("name") or "")[:150],
            roles=tuple(str(r) for r in roles) if isinstance(roles, list) else (),
            guest=_is_guest(claims),
        )


def _is_guest(claims: dict[str, Any]) -> bool:
    """Whether Entra ID signed in a guest: the optional claim ``acct`` is 1, the token names another identity
    provider (``idp``, present for guests and personal accounts), or the UPN is an invited guest's."""
    idp = str(claims.get("idp") or "")
    return (
        str(claims.get("acct", "0")) == "1"
        or (bool(idp) and idp.rstrip("/") != str(claims.get("iss", "")).rstrip("/"))
        or "#ext#" in str(claims.get("preferred_username") or "").lower()
    )


class TimeoutSession(requests.Session):
    """A requests session whose calls time out (MSAL adds no timeout to an injected client)."""

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_SECONDS)
        return super().request(*args, **kwargs)


def http_client() -> requests.Session:
    """The process's HTTP client for Entra ID; TLS trust follows REQUESTS_CA_BUNDLE."""
    global _default_http
    with _lock:
        if _default_http is None:
            _default_http = TimeoutSession()
        return _default_http


_client_apps: dict[tuple[str, str], msal.ConfidentialClientApplication] = {}


def app_token(config: EntraConfig, scope: str) -> str | None:
    """An app-only access token of the portal's sign-in app for ``scope`` (client credentials, cached by
    MSAL until it nears expiry); None when Entra ID refuses it."""
    key = (config.authority, config.client_id)
    http = http_client()  # takes the lock itself: not under it
    with _lock:
        app = _client_apps.get(key)
        if app is None:
            app = _client_apps[key] = msal.ConfidentialClientApplication(
                config.client_id,
                client_credential=config.client_secret,
                authority=config.authority,
                http_client=http,
                instance_discovery=not config.disable_instance_discovery,
                http_cache=_msal_http_cache,
            )
    result = app.acquire_token_for_client(scopes=[scope])
    if "access_token" not in result:
        logger.warning("Entra ID refused an app token: %s", result.get("error", "unknown error"))
        return None
    return str(result["access_token"])


def reset_caches() -> None:
    """Forget discovery documents and signing keys (tests; a changed tenant)."""
    with _lock:
        _metadata.clear()
        _keys.clear()
        _key_misses.clear()
        _msal_http_cache.clear()
        _client_apps.clear()


def _nonce_hash(nonce: str) -> str:
    # MSAL sends the SHA-256 of the flow's nonce, so that is what the id token carries.
    return hashlib.sha256(nonce.encode("ascii")).hexdigest()


class EntraSignIn:
    """One tenant's sign-in: start a flow, finish it into a validated identity, and where to sign out."""

    def __init__(self, config: EntraConfig, *, http: requests.Session | None = None) -> None:
        self.config = config
        self.http = http or http_client()

    @classmethod
    def from_settings(cls, *, http: requests.Session | None = None) -> EntraSignIn:
        return cls(EntraConfig.from_settings(), http=http)

    def _app(self) -> msal.ConfidentialClientApplication:
        try:
            return msal.ConfidentialClientApplication(
                self.config.client_id,
                client_credential=self.config.client_secret,
                authority=self.config.authority,
                http_client=self.http,
                instance_discovery=not self.config.disable_instance_discovery,
                exclude_scopes=["offline_access"],
                http_cache=_msal_http_cache,
                token_cache=msal.TokenCache(),
            )
        except (ValueError, requests.RequestException, MsalServiceError) as exc:
            logger.warning("Entra ID discovery failed for %s: %s", self.config.authority, exc)
            raise SignInError("Microsoft Entra ID could not be reached; try again later", status=502) from exc

    def begin(self, *, redirect_uri: str, login_hint: str = "") -> dict[str, Any]:
        """A new authorization code flow (PKCE, state, nonce) to keep in the server-side session.

        Its ``auth_uri`` is where to send the browser; the answer comes back as a query string (form_post
        would arrive cross-site, without the SameSite=Lax session cookie).
        """
        flow: dict[str, Any] = self._app().initiate_auth_code_flow(
            SCOPES, redirect_uri=redirect_uri, login_hint=login_hint or None, response_mode="query"
        )
        return flow

    def complete(self, *, flow: dict[str, Any], auth_response: dict[str, str]) -> EntraIdentity:
        """Redeem the code of this flow's answer and return who signed in, or raise SignInError."""
        if not secrets.compare_digest(str(flow.get("state", "")), str(auth_response.get("state", ""))):
            raise SignInError("the answer's state does not match the sign-in started in this browser")
        if auth_response.get("error"):
            # %r: the description arrives in the query string, so it must not forge log lines.
            logger.warning(
                "Entra ID refused the sign-in: %r", auth_response.get("error_description", "")[:300]
            )
            code = re.sub(r"[^a-z_]", "", auth_response["error"])[:60]
            raise SignInError(f"Microsoft Entra ID refused the sign-in ({code})")
        id_token = self._redeem(flow, {k: v for k, v in auth_response.items() if k in AUTH_RESPONSE_FIELDS})
        return EntraIdentity.from_claims(self.validate_id_token(id_token, nonce=str(flow.get("nonce", ""))))

    def _redeem(self, flow: dict[str, Any], auth_response: dict[str, str]) -> str:
        app = self._app()
        try:
            result = app.acquire_token_by_auth_code_flow(dict(flow), auth_response)
        except ValueError as exc:  # MSAL: state missing or mismatched
            raise SignInError("the answer does not belong to the sign-in started in this browser") from exc
        except RuntimeError as exc:  # MSAL: the id token's nonce is not this flow's
            raise SignInError("the id token was not issued for this sign-in (nonce)") from exc
        except (requests.RequestException, MsalServiceError) as exc:
            raise SignInError("Microsoft Entra ID could not be reached; try again later", status=502) from exc
        if "error" in result:
            logger.warning("Entra ID refused the code: %s", str(result.get("error_description", ""))[:300])
            raise SignInError(f"Microsoft Entra ID refused the authorization code ({result['error']})")
        if not result.get("id_token"):
            raise SignInError("Microsoft Entra ID returned no id token")
        return str(result["id_token"])

    def validate_id_token(self, id_token: str, *, nonce: str) -> dict[str, Any]:
        """The claims of an id token this tenant issued to this app for this sign-in, or SignInError."""
        claims = self.verified_claims(
            id_token,
            what="id token",
            audiences=[self.config.client_id],
            issuers=[self._issuer()],
            required=REQUIRED_CLAIMS,
        )
        if not nonce or not secrets.compare_digest(str(claims["nonce"]), _nonce_hash(nonce)):
            raise SignInError("the id token was not issued for this sign-in (nonce)")
        return claims

    def verified_claims(
        self, token: str, *, what: str, audiences: list[str], issuers: list[str], required: list[str]
    ) -> dict[str, Any]:
        """The claims of a JWT this tenant signed (RS256, a published key), for one of ``audiences``, from
        one of ``issuers``, unexpired (with leeway), holding ``required``, its ``tid`` this tenant's."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise SignInError(f"the {what} is malformed") from exc
        if header.get("alg") != "RS256":
            raise SignInError(f"the {what}'s algorithm {str(header.get('alg'))[:20]!r} is refused")
        key = self._signing_key(str(header.get("kid", "")), what=what)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=audiences,
                issuer=issuers,
                leeway=LEEWAY_SECONDS,
                options={"require": required},
            )
        except jwt.InvalidTokenError as exc:
            raise SignInError(f"the {what} is not valid: {exc}") from exc
        if str(claims["tid"]).lower() != self.config.tenant_id:
            raise SignInError(f"the {what} comes from another tenant")
        return claims

    def end_session_url(self, *, post_logout_redirect_uri: str = "") -> str:
        """Where to send the browser to sign out of Entra ID too."""
        try:
            endpoint = str(self._metadata()["end_session_endpoint"])
        except (SignInError, KeyError):
            endpoint = f"{self.config.authority}/oauth2/v2.0/logout"
        if not post_logout_redirect_uri:
            return endpoint
        return f"{endpoint}?{urlencode({'post_logout_redirect_uri': post_logout_redirect_uri})}"

    # --- the tenant's OpenID metadata and signing keys, cached per process ----

    def _metadata(self) -> dict[str, Any]:
        url = f"{self.config.authority}/v2.0/.well-known/openid-configuration"
        with _lock:
            cached = _metadata.get(url)
        if cached is not None and time.monotonic() - cached[0] < METADATA_SECONDS:
            return cached[1]
        document = self._get_json(url)
        with _lock:
            _metadata[url] = (time.monotonic(), document)
        return document

    def _issuer(self) -> str:
        # Entra ID's multi-tenant documents say "{tenantid}"; a tenant's own names it.
        return str(self._metadata()["issuer"]).replace("{tenantid}", self.config.tenant_id)

    def access_token_issuers(self) -> list[str]:
        """Who issues access tokens for the portal's API: the v2.0 issuer, and the v1.0 one (sts.windows.net)
        for an app registration that still accepts v1.0 access tokens."""
        return [self._issuer(), f"https://sts.windows.net/{self.config.tenant_id}/"]

    def _signing_key(self, kid: str, *, what: str = "id token") -> Any:
        jwks_uri = str(self._metadata()["jwks_uri"])
        now = time.monotonic()
        with _lock:
            fetched_at, keys = _keys.get(jwks_uri, (0.0, {}))
            last_miss = _key_misses.get((jwks_uri, kid))
        stale = now - fetched_at > METADATA_SECONDS
        if kid in keys and not stale:
            return keys[kid]
        if stale or last_miss is None or now - last_miss > KEY_MISS_REFETCH_SECONDS:
            keys = self._fetch_keys(jwks_uri)
            with _lock:
                _keys[jwks_uri] = (now, keys)
                if kid not in keys:
                    _key_misses[(jwks_uri, kid)] = now
            if kid in keys:
                return keys[kid]
        raise SignInError(f"the {what} is signed with a key the tenant does not publish")

    def _fetch_keys(self, jwks_uri: str) -> dict[str, Any]:
        keys = {}
        for jwk in self._get_json(jwks_uri).get("keys", []):
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or not jwk.get("kid"):
                continue
            try:
                keys[str(jwk["kid"])] = jwt.PyJWK(jwk, algorithm="RS256").key
            except jwt.PyJWKError:
                logger.warning("ignoring an unusable signing key %s", jwk.get("kid"))
        return keys

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = self.http.get(url, timeout=HTTP_TIMEOUT_SECONDS)
            response.raise_for_status()
            document = response.json()
        except (requests.RequestException, ValueError) as exc:
            logger.warning("Entra ID metadata unavailable at %s: %s", url, exc)
            raise SignInError("Microsoft Entra ID could not be reached; try again later", status=502) from exc
        if not isinstance(document, dict):
            raise SignInError("Microsoft Entra ID answered with an unexpected document", status=502)
        return document
