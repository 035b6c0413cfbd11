"""The stand-in's HTTPS server and its public API (``StandIn``).

One server on 127.0.0.1 answers Entra ID, ARM and Graph: paths tell them apart, exactly as the three
endpoint settings (AZURE_AUTHORITY_HOST, AZURE_ARM_ENDPOINT, GRAPH_ENDPOINT) all pointing at it
expect. TLS uses a throwaway CA made at start (trustme); clients trust it through REQUESTS_CA_BUNDLE.
Browsers do not trust that CA: with ``browser_http=True`` a second, plain-HTTP listener serves only the
sign-in pages a browser visits (authorize, logout), and OpenID discovery points browsers there.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import socketserver
import ssl
import tempfile
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provisioning.standin.arm import LRO_OPERATIONS, Context, OperationStatusApi
from provisioning.standin.arm_authz import AuthorizationApi
from provisioning.standin.arm_compute import ComputeApi
from provisioning.standin.arm_cost import CostApi
from provisioning.standin.arm_deletes import DeletesApi
from provisioning.standin.arm_listing import ResourceListApi
from provisioning.standin.arm_ml import WorkspacesApi
from provisioning.standin.arm_quota import QuotaApi
from provisioning.standin.arm_quota_api import QuotaLimitsApi
from provisioning.standin.arm_resources import ResourcesApi
from provisioning.standin.arm_tags import TagsApi
from provisioning.standin.directory import DirectoryKnobs
from provisioning.standin.entra import EntraApi
from provisioning.standin.entra_signin import BROWSER_OPERATIONS, SignInApi, SignInKnobs
from provisioning.standin.faults import Faults
from provisioning.standin.graph import GraphApi
from provisioning.standin.outside import Outside, OutsideApi
from provisioning.standin.state import App, Principal, RequestRecord, State, resource_type
from provisioning.standin.throttle import ArmLimits, Verdict, subscription_of
from provisioning.standin.wire import (
    ARM,
    ENTRA,
    GRAPH,
    Api,
    HttpError,
    Request,
    Response,
    Route,
    arm_error,
    graph_error,
    service_error,
)

logger = logging.getLogger(__name__)

GLOBAL_NAME_KINDS = (
    "Microsoft.Storage/storageAccounts",
    "Microsoft.KeyVault/vaults",
    "Microsoft.ContainerRegistry/registries",
)
AUTH_MESSAGES = {
    ARM: {
        "missing": ("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."),
        "invalid": ("InvalidAuthenticationToken", "The access token is invalid."),
        "expired": ("ExpiredAuthenticationToken", "The access token has expired."),
    },
    GRAPH: {
        "missing": ("InvalidAuthenticationToken", "Access token is empty."),
        "invalid": ("InvalidAuthenticationToken", "Access token validation failure."),
        "expired": ("InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."),
    },
}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: azure-core and requests reuse connections
    disable_nagle_algorithm = True  # without it every response waits ~40 ms for a delayed ACK
    timeout = 120
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response = self.server.standin.dispatch(
            self.command, self.path, headers, body, base_url=self.server.base_url, browser=self.server.browser
        )
        payload = b"" if self.command == "HEAD" else response.encoded()
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.body is not None:
            self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    """HTTPS with the throwaway CA's certificate; or, for ``browser`` pages only, plain HTTP."""

    daemon_threads = True

    def __init__(self, standin: StandIn, port: int, context: ssl.SSLContext | None) -> None:
        self.standin = standin
        self.browser = context is None
        super().__init__(("127.0.0.1", port), _Handler)
        if context is not None:
            # The handshake happens on the connection's own thread (first read), never in accept().
            self.socket = context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        scheme = "http" if self.browser else "https"
        self.base_url = f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (a DNS query): bind and name it directly.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("stand-in connection error from %s", client_address, exc_info=True)


def _system_bundle() -> str | None:
    """The CA bundle the process trusts without the stand-in (REQUESTS_CA_BUNDLE, OpenSSL's, certifi's)."""
    candidates = [os.environ.get("REQUESTS_CA_BUNDLE"), ssl.get_default_verify_paths().cafile]
    try:
        import certifi

        candidates.append(certifi.where())
    except ImportError:  # pragma: no cover - certifi comes with requests
        pass
    return next((c for c in candidates if c and os.path.isfile(c)), None)


class StandIn(SignInKnobs, DirectoryKnobs):
    """A local HTTPS Azure (Entra ID token endpoint, ARM, Graph) with in-memory state and fault knobs.

    ``latency`` maps operation names (see ``operations``) to seconds; ``latency_scale`` multiplies
    them all. ``strict_principals`` refuses role assignments for principals the directory does not know.
    ``browser_http`` also serves the sign-in pages over plain HTTP (``browser_base_url``), for demos.
    ``tenant_domain`` is the directory's initial domain (guests' UPNs, Microsoft 365 groups' mail).
    ``outside`` makes changes as somebody would by hand in Azure (see ``outside.Outside``).
    ``quota_delay`` / ``quota_max``: a Quota API increase request stays in progress this many seconds, then
    is granted, or denied above this many cores (``set_quota``).
    ``arm_limits``: refuse subscription-scoped ARM requests over ARM's token buckets with 429 (see
    ``throttle``; the remaining-requests headers are sent either way); ``arm_limit_sizes`` shrinks buckets.
    """

    def __init__(
        self,
        latency: dict[str, float] | None = None,
        *,
        latency_scale: float = 1.0,
        port: int = 0,
        tenant_id: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        strict_principals: bool = True,
        browser_http: bool = False,
        tenant_domain: str = "contoso.onmicrosoft.com",
        quota_delay: float = 0.0,
        quota_max: int = 1000,
        arm_limits: bool = False,
        arm_limit_sizes: dict[str, int] | None = None,
    ) -> None:
        self.tenant_domain = tenant_domain
        self.tenant_id = (tenant_id or str(uuid.uuid4())).lower()
        self.client_id = (client_id or str(uuid.uuid4())).lower()
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self.state = State()
        self.faults = Faults(latency, latency_scale, quota_delay=quota_delay, quota_max=quota_max)
        self.arm_limits = ArmLimits(enforce=arm_limits, sizes=arm_limit_sizes)
        self.ctx = Context(self.state, self.faults, self.tenant_id, strict_principals)
        self.service_principal_id = self._register_app()
        self.entra = EntraApi(self.ctx)
        self.signin = SignInApi(self.ctx, self.entra)
        self.outside = Outside(self.ctx)
        apis: list[Api] = [
            self.entra,
            self.signin,
            GraphApi(self.ctx),
            OperationStatusApi(self.ctx),
            AuthorizationApi(self.ctx),
            TagsApi(self.ctx),
            ResourcesApi(self.ctx),
            ResourceListApi(self.ctx),
            DeletesApi(self.ctx),
            WorkspacesApi(self.ctx),
            ComputeApi(self.ctx),
            QuotaApi(self.ctx),
            QuotaLimitsApi(self.ctx),
            CostApi(self.ctx),
            OutsideApi(self.outside),
        ]
        self.routes: list[Route] = [r for api in apis for r in api.routes()]
        self.operations = frozenset(r.operation for r in self.routes)
        self._port = port
        self._server: _Server | None = None
        self._browser_server: _Server | None = None
        self._browser_http = browser_http
        self._dir: str | None = None
        self.base_url = ""
        self.browser_base_url = ""
        self.ca_pem_path = ""

    def _register_app(self) -> str:
        principal_id = str(uuid.uuid4())
        self.state.apps[self.client_id] = App(
            self.client_id, self.client_secret, principal_id, "azureml-portal"
        )
        self.state.principals[principal_id] = Principal(
            principal_id, "servicePrincipal", "azureml-portal", app_id=self.client_id, created=0.0
        )
        return principal_id

    # --- lifecycle ----

    def start(self) -> str:
        """Start serving on 127.0.0.1; returns the base URL ``https://127.0.0.1:PORT``."""
        import trustme

        ca = trustme.CA(organization_name="Azure stand-in (throwaway test CA)")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(context)
        self._dir = tempfile.mkdtemp(prefix="azure-standin-")
        self.ca_pem_path = os.path.join(self._dir, "standin-ca.pem")
        ca.cert_pem.write_to_path(self.ca_pem_path)
        self._server = _Server(self, self._port, context)
        self.base_url = self._server.base_url
        self._serve(self._server, "azure-standin")
        if self._browser_http:
            self._browser_server = _Server(self, 0, None)
            self.browser_base_url = self.entra.browser_base_url = self._browser_server.base_url
            self._serve(self._browser_server, "azure-standin-browser")
        return self.base_url

    @staticmethod
    def _serve(server: _Server, name: str) -> None:
        threading.Thread(target=server.serve_forever, args=(0.1,), name=name, daemon=True).start()

    def stop(self) -> None:
        """Stop serving and delete the CA files."""
        for server in (self._server, self._browser_server):
            if server is not None:
                server.shutdown()
                server.server_close()
        self._server = self._browser_server = None
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> StandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def write_ca_bundle(self, path: str | None = None, *, include_system: bool = True) -> str:
        """A PEM bundle of the system's CAs plus the stand-in's (REQUESTS_CA_BUNDLE replaces, not adds)."""
        system = _system_bundle() if include_system else None
        parts = []
        if system:
            with open(system, encoding="utf-8") as fh:
                parts.append(fh.read().rstrip() + "\n")
        with open(self.ca_pem_path, encoding="utf-8") as fh:
            parts.append(fh.read())
        path = path or os.path.join(self._dir or tempfile.gettempdir(), "ca-bundle.pem")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("".join(parts))
        return path

    def environment(self, ca_bundle: str | None = None) -> dict[str, str]:
        """The settings' environment variables that point the portal at this stand-in."""
        env = {
            "AZURE_ARM_ENDPOINT": self.base_url,
            "AZURE_AUTHORITY_HOST": self.base_url,
            "GRAPH_ENDPOINT": self.base_url,
            "AZURE_CREDENTIAL": "client_secret",
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "AZURE_DISABLE_INSTANCE_DISCOVERY": "true",
        }
        if ca_bundle:
            env.update(REQUESTS_CA_BUNDLE=ca_bundle, CURL_CA_BUNDLE=ca_bundle)
        return env

    def reset(self) -> None:
        """Forget resources, principals, grants, faults, latency changes and the request log.

        The tenant, the registered app and the tokens already issued stay valid (clients keep their cache).
        """
        self.state.clear()
        self.faults.reset()
        self.arm_limits.reset()
        self.signin.reset()

    # --- knobs ----

    def _known(self, operation: str) -> None:
        if operation not in self.operations:
            raise ValueError(
                f"unknown stand-in operation {operation!r}; known: {', '.join(sorted(self.operations))}"
            )

    def set_latency(self, operation: str, seconds: float) -> None:
        """Delay an operation (for long-running operations: how long it stays in progress)."""
        self._known(operation)
        self.faults.set_latency(operation, seconds)

    def set_latency_scale(self, factor: float) -> None:
        """Multiply every latency (0 makes everything instant)."""
        self.faults.set_scale(factor)

    def set_arm_limits(self, enforce: bool = True, *, sizes: dict[str, int] | None = None) -> None:
        """Refuse (or stop refusing) requests over ARM's limits; ``sizes`` shrinks the buckets for tests.

        The buckets start full again. Refill rates are ARM's divided by the latency scale."""
        self.arm_limits.configure(enforce=enforce, sizes=sizes)

    def fail_next(
        self,
        operation: str,
        *,
        status: int = 429,
        retry_after: float | None = 1,
        times: int = 1,
        code: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests of an operation with an error (default: 429, Retry-After 1)."""
        self._known(operation)
        self.faults.fail_next(
            operation, status=status, retry_after=retry_after, times=times, code=code, message=message
        )

    def lro_fail(self, operation: str, code: str, message: str, *, times: int = 1) -> None:
        """Make the next long-running operation(s) of this kind end Failed with Azure's error body."""
        if operation not in LRO_OPERATIONS:
            raise ValueError(
                f"{operation!r} is not a long-running operation; one of {sorted(LRO_OPERATIONS)}"
            )
        self.faults.lro_fail(operation, code, message, times=times)

    def set_quota(self, *, delay: float | None = None, maximum: int | None = None) -> None:
        """How long Quota API increase requests stay in progress, and the most cores they are granted."""
        if delay is not None:
            self.faults.quota_delay = delay
        if maximum is not None:
            self.faults.quota_max = maximum

    def principal_not_found_for(self, seconds: float) -> None:
        """Role assignments answer 400 PrincipalNotFound until a principal has existed this long.

        Azure skips this replication check when principalType is set; the stand-in applies it anyway so
        that the retry path can be tested.
        """
        self.faults.principal_delay = seconds

    def take_name(
        self, kind: str, name: str, subscription: str = "other", *, soft_deleted: bool = False
    ) -> None:
        """A storage account, key vault or registry name already used in another subscription."""
        rtype = resource_type(kind)
        if rtype not in GLOBAL_NAME_KINDS:
            raise ValueError(f"names of {kind!r} are not global; use storage, key_vault or registry")
        with self.state.lock:
            self.state.taken_names[(rtype.lower(), name.lower())] = {
                "id": f"/subscriptions/{subscription}/resourceGroups/elsewhere/providers/{rtype}/{name}",
                "soft_deleted": soft_deleted,
            }

    # --- request handling ----

    def _route(self, req: Request) -> tuple[Route, dict[str, str]]:
        path_matched = False
        for candidate in self.routes:
            params = candidate.match(req.path)
            if params is None:
                continue
            if candidate.method == req.method:
                return candidate, params
            path_matched = True
        if path_matched:
            raise arm_error(
                405, "MethodNotAllowed", f"The requested method {req.method} is not allowed for {req.path}."
            )
        raise arm_error(
            404, "NotImplementedByStandIn", f"The Azure stand-in does not implement {req.method} {req.path}."
        )

    def _authenticate(self, area: str, req: Request) -> None:
        reason = self.entra.bearer_valid(req.headers.get("authorization", ""))
        if reason is None:
            return
        code, message = AUTH_MESSAGES[area][reason]
        if area == GRAPH:
            raise graph_error(401, code, message)
        challenge = (
            f'Bearer authorization_uri="{self.base_url}/{self.tenant_id}", error="invalid_token", '
            f'error_description="{message}"'
        )
        raise arm_error(401, code, message, {"WWW-Authenticate": challenge})

    def dispatch(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
        *,
        base_url: str | None = None,
        browser: bool = False,
    ) -> Response:
        """Answer one request: route, authenticate, inject faults, apply latency, run the handler.

        ``browser``: the request came to the plain-HTTP listener, which serves only the sign-in pages.
        """
        started = time.monotonic()
        req = Request.parse(method, target, headers, body, base_url or self.base_url)
        operation, area, faulted = "unknown", ARM, False
        verdict: Verdict | None = None
        try:
            found, req.params = self._route(req)
            if browser and found.operation not in BROWSER_OPERATIONS:
                raise arm_error(404, "NotFound", "This listener serves only the sign-in pages.")
            operation, area = found.operation, found.area
            if found.auth:
                self._authenticate(area, req)
            verdict = self._throttle(area, req)
            fault = self.faults.take(operation)
            if fault is not None:
                faulted = True
                raise service_error(area, fault.status, fault.code, fault.message, fault.headers())
            if not found.lro:
                time.sleep(self.faults.latency(operation))
            with self.state.lock:
                self.state.settle()
                response = found.handler(req)
        except HttpError as exc:
            response = exc.response
        except Exception:  # a stand-in bug: answer like Azure would, log the traceback for the developer
            logger.error("stand-in failed on %s %s\n%s", method, req.path, traceback.format_exc())
            response = arm_error(
                500, "InternalServerError", "The Azure stand-in failed; see its log."
            ).response
        if verdict is not None:
            response.headers.update(verdict.headers())
        self._finish(req, response, area)
        self.state.record(
            RequestRecord(
                time.time(),
                req.method,
                req.path,
                dict(req.query),
                operation,
                response.status,
                None if area == ENTRA else req.json_or_none(),
                time.monotonic() - started,
                faulted,
            )
        )
        return response

    def _throttle(self, area: str, req: Request) -> Verdict | None:
        """Draw from the subscription's ARM bucket; raise ARM's 429 when it is empty and limits apply."""
        subscription = subscription_of(req.path) if area == ARM else None
        if subscription is None:
            return None
        scale = self.faults.scale
        verdict = self.arm_limits.take(subscription, req.method, scale)
        if verdict.retry_after is None:
            return verdict
        after = self.arm_limits.retry_after_header(verdict.retry_after, scale)
        message = self.arm_limits.message(subscription, verdict.kind, scale, after)
        raise arm_error(429, "TooManyRequests", message, {"Retry-After": after, **verdict.headers()})

    def _finish(self, req: Request, response: Response, area: str) -> None:
        request_id = str(uuid.uuid4())
        if area == ARM:
            correlation = req.headers.get("x-ms-correlation-request-id") or str(uuid.uuid4())
            response.headers.setdefault("x-ms-request-id", request_id)
            response.headers.setdefault("x-ms-correlation-request-id", correlation)
        elif area == GRAPH:
            response.headers.setdefault("request-id", request_id)
            response.headers.setdefault(
                "client-request-id", req.headers.get("client-request-id") or request_id
            )
        response.headers.setdefault("Cache-Control", "no-cache")
