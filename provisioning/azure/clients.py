"""The one factory of Azure SDK clients: credential, endpoints, Graph session.

Endpoints come from settings (AZURE_ARM_ENDPOINT, AZURE_AUTHORITY_HOST, GRAPH_ENDPOINT), so the same
code talks to public Azure, a sovereign cloud or the local stand-in; TLS trust follows
REQUESTS_CA_BUNDLE. Clients are cached per subscription (and per workspace for ``MLClient``) and are
safe to share between threads. Network tracing (``logging_enable``) stays off: it logs bearer tokens.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from provisioning.azure.rate_limit import WriteBudget

CREDENTIAL_KINDS = ("managed_identity", "workload_identity", "client_secret")
# azure-ai-ml knows these clouds by name; any other ARM endpoint gets its own registered cloud.
KNOWN_CLOUDS = {
    "https://management.azure.com": "AzureCloud",
    "https://management.chinacloudapi.cn": "AzureChinaCloud",
    "https://management.usgovcloudapi.net": "AzureUSGovernment",
}


class GraphLookupError(LookupError):
    """A user or group could not be resolved to exactly one Entra ID object."""


# Connections a management client keeps per host: one client serves a run's step threads (up to 16 at once)
# and, in a worker, every run of its subscription. requests' default of 10 made the eleventh concurrent call
# open a connection (a TLS handshake) and drop it afterwards ("Connection pool is full").
POOL_CONNECTIONS = 32


def arm_transport() -> Any:
    """azure-core's requests transport as azure-core builds it (no urllib3 retries: its RetryPolicy
    retries), with a larger connection pool."""
    from azure.core.pipeline.transport import RequestsTransport

    session = requests.Session()
    adapter = HTTPAdapter(
        pool_maxsize=POOL_CONNECTIONS, max_retries=Retry(total=False, redirect=False, raise_on_status=False)
    )
    for scheme in ("https://", "http://"):
        session.mount(scheme, adapter)
    return RequestsTransport(session=session, session_owner=True)


class GraphSession:
    """The few Microsoft Graph v1.0 calls the portal makes, on a requests.Session with a bearer token."""

    def __init__(self, credential: TokenCredential, endpoint: str, *, timeout: float = 30) -> None:
        self._credential = credential
        self._endpoint = endpoint.rstrip("/")
        self._timeout = timeout
        self._session = requests.Session()
        # Graph throttles with 429 + Retry-After; GETs are safe to retry.
        retry = Retry(
            total=4,
            backoff_factor=0.5,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self._session.mount("https://", HTTPAdapter(max_retries=retry))

    def get(self, path: str, params: dict[str, str] | None = None) -> dict[str, Any] | None:
        """GET a Graph resource; None on 404, ``requests.HTTPError`` on any other failure."""
        token = self._credential.get_token(f"{self._endpoint}/.default").token
        response = self._session.get(
            f"{self._endpoint}/v1.0/{path.lstrip('/')}",
            params=params,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=self._timeout,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return dict(response.json())

    def _only(self, found: list[dict[str, Any]], what: str) -> str:
        if len(found) != 1:
            raise GraphLookupError(f"{len(found)} Entra ID objects match {what}; exactly one must match.")
        return str(found[0]["id"])

    def user_object_id(self, upn_or_mail: str) -> str:
        """The object id of the one user whose UPN or mail is this address."""
        return self._only(self.users_matching(upn_or_mail), f"the user '{upn_or_mail}' (UPN or mail)")

    def group_object_id(self, display_name: str) -> str:
        """The object id of the one group with exactly this display name."""
        return self._only(self.groups_named(display_name), f"the group named '{display_name}'")

    def users_matching(self, upn_or_mail: str) -> list[dict[str, Any]]:
        """Every user whose UPN or mail is this address, with what decides whether they may get access."""
        literal = upn_or_mail.replace("'", "''")
        result = self.get(
            "users",
            {
                "$filter": f"userPrincipalName eq '{literal}' or mail eq '{literal}'",
                "$select": "id,userPrincipalName,mail,displayName,accountEnabled,userType",
            },
        )
        return list((result or {}).get("value", []))

    def groups_named(self, display_name: str) -> list[dict[str, Any]]:
        """Every group with exactly this display name, with its kind (security or Microsoft 365)."""
        literal = display_name.replace("'", "''")
        result = self.get(
            "groups",
            {
                "$filter": f"displayName eq '{literal}'",
                "$select": "id,displayName,mail,securityEnabled,mailEnabled,groupTypes",
            },
        )
        return list((result or {}).get("value", []))

    def user(self, key: str) -> dict[str, Any] | None:
        """A user by object id or UPN, or None."""
        return self.get(f"users/{quote(key, safe='@')}")

    def close(self) -> None:
        self._session.close()


class AzureClients:
    """Builds and caches every Azure client from one credential and the configured endpoints."""

    def __init__(
        self,
        *,
        arm_endpoint: str,
        authority_host: str,
        graph_endpoint: str,
        credential_kind: str,
        tenant_id: str = "",
        client_id: str = "",
        client_secret: str = "",
        disable_instance_discovery: bool = False,
        credential: TokenCredential | None = None,
        write_budget: WriteBudget | None = None,
        read_budget: WriteBudget | None = None,
    ) -> None:
        if credential is None and credential_kind not in CREDENTIAL_KINDS:
            raise ValueError(
                f"AZURE_CREDENTIAL={credential_kind!r}: use one of {', '.join(CREDENTIAL_KINDS)}"
            )
        self.arm_endpoint = arm_endpoint.rstrip("/")
        self.authority_host = authority_host.rstrip("/")
        self.graph_endpoint = graph_endpoint.rstrip("/")
        self.credential_kind = credential_kind
        self.tenant_id, self.client_id, self._secret = tenant_id, client_id, client_secret
        self.disable_instance_discovery = disable_instance_discovery
        self._credential = credential
        self.write_budget = write_budget  # every SDK write to a subscription waits for its token
        self.read_budget = read_budget  # and every read, for one of this budget
        self._cache: dict[tuple[str, ...], Any] = {}
        self._lock = threading.RLock()

    @classmethod
    def from_settings(cls, settings: Any = None) -> AzureClients:
        """Clients configured from Django settings (the worker's normal way)."""
        if settings is None:
            from django.conf import settings
        return cls(
            arm_endpoint=settings.AZURE_ARM_ENDPOINT,
            authority_host=settings.AZURE_AUTHORITY_HOST,
            graph_endpoint=settings.GRAPH_ENDPOINT,
            credential_kind=settings.AZURE_CREDENTIAL,
            tenant_id=settings.AZURE_TENANT_ID,
            client_id=settings.AZURE_CLIENT_ID,
            client_secret=settings.AZURE_CLIENT_SECRET,
            disable_instance_discovery=settings.AZURE_DISABLE_INSTANCE_DISCOVERY,
            write_budget=write_budget_from_settings(settings),
            read_budget=read_budget_from_settings(settings),
        )

    def _cached(self, key: tuple[str, ...], build: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build()
            return self._cache[key]

    # --- credential ----

    def credential(self) -> TokenCredential:
        """The worker's identity: managed or workload identity, or a client secret (never a person's)."""
        if self._credential is None:
            with self._lock:
                if self._credential is None:
                    self._credential = self._build_credential()
        return self._credential

    def _build_credential(self) -> TokenCredential:
        from azure.identity import (
            ClientSecretCredential,
            ManagedIdentityCredential,
            WorkloadIdentityCredential,
        )

        if self.credential_kind == "managed_identity":
            return ManagedIdentityCredential(client_id=self.client_id or None)
        if self.credential_kind == "workload_identity":
            return WorkloadIdentityCredential(
                tenant_id=self.tenant_id or None,
                client_id=self.client_id or None,
                authority=self.authority_host,
            )
        if not (self.tenant_id and self.client_id and self._secret):
            raise ValueError(
                "AZURE_CREDENTIAL=client_secret needs AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                "AZURE_CLIENT_SECRET"
            )
        return ClientSecretCredential(
            self.tenant_id,
            self.client_id,
            self._secret,
            authority=self.authority_host,
            disable_instance_discovery=self.disable_instance_discovery,
        )

    # --- management clients ----

    def _budget_options(self, *, yielding: bool = False) -> dict[str, Any]:
        if self.write_budget is None and self.read_budget is None:
            return {}
        from provisioning.azure.rate_limit import WriteBudgetPolicy

        policy = WriteBudgetPolicy(self.write_budget, self.read_budget, yielding=yielding)
        return {"per_retry_policies": [policy]}

    def _arm_options(self, *, yielding: bool = False) -> dict[str, Any]:
        return {
            "base_url": self.arm_endpoint,
            "credential_scopes": [f"{self.arm_endpoint}/.default"],
            "transport": arm_transport(),
            **self._budget_options(yielding=yielding),
        }

    def resources(self, subscription: str) -> Any:
        """azure-mgmt-resource ResourceManagementClient (resource groups)."""
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._cached(
            ("resources", subscription),
            lambda: ResourceManagementClient(self.credential(), subscription, **self._arm_options()),
        )

    def storage(self, subscription: str) -> Any:
        """azure-mgmt-storage StorageManagementClient."""
        from azure.mgmt.storage import StorageManagementClient

        return self._cached(
            ("storage", subscription),
            lambda: StorageManagementClient(self.credential(), subscription, **self._arm_options()),
        )

    def keyvault(self, subscription: str) -> Any:
        """azure-mgmt-keyvault KeyVaultManagementClient."""
        from azure.mgmt.keyvault import KeyVaultManagementClient

        return self._cached(
            ("keyvault", subscription),
            lambda: KeyVaultManagementClient(self.credential(), subscription, **self._arm_options()),
        )

    def registry(self, subscription: str) -> Any:
        """azure-mgmt-containerregistry ContainerRegistryManagementClient."""
        from azure.mgmt.containerregistry import ContainerRegistryManagementClient

        return self._cached(
            ("registry", subscription),
            lambda: ContainerRegistryManagementClient(self.credential(), subscription, **self._arm_options()),
        )

    def app_insights(self, subscription: str) -> Any:
        """azure-mgmt-applicationinsights ApplicationInsightsManagementClient."""
        from azure.mgmt.applicationinsights import ApplicationInsightsManagementClient

        return self._cached(
            ("app_insights", subscription),
            lambda: ApplicationInsightsManagementClient(
                self.credential(), subscription, **self._arm_options()
            ),
        )

    def authorization(self, subscription: str) -> Any:
        """azure-mgmt-authorization AuthorizationManagementClient (role definitions and assignments).

        Its writes yield (``WriteBudget.acquire_yielding``): nothing in Azure waits on a role assignment, while
        a run's later steps wait on its resources and deployment."""
        from azure.mgmt.authorization import AuthorizationManagementClient

        return self._cached(
            ("authorization", subscription),
            lambda: AuthorizationManagementClient(
                self.credential(), subscription, **self._arm_options(yielding=True)
            ),
        )

    def quota(self, subscription: str) -> Any:
        """azure-mgmt-quota QuotaMgmtClient (the Quota API: limits and increase requests)."""
        from azure.mgmt.quota import QuotaMgmtClient

        return self._cached(
            ("quota", subscription),
            lambda: QuotaMgmtClient(self.credential(), subscription, **self._arm_options()),
        )

    def cost_management(self) -> Any:
        """azure-mgmt-costmanagement CostManagementClient (its queries name their scope; no subscription)."""
        from azure.mgmt.costmanagement import CostManagementClient

        return self._cached(
            ("cost_management",), lambda: CostManagementClient(self.credential(), **self._arm_options())
        )

    # --- azure-ai-ml ----------------------------------------------------------------------------------------

    def cloud_name(self) -> str:
        """azure-ai-ml's cloud for the ARM endpoint: a built-in one, or one registered per endpoint.

        azure-ai-ml keeps clouds in a process-wide registry where the first registration of a name wins,
        hence a name derived from the endpoint.
        """
        known = KNOWN_CLOUDS.get(self.arm_endpoint.lower())
        return known or "portal-" + hashlib.sha256(self.arm_endpoint.lower().encode()).hexdigest()[:16]

    def _cloud_metadata(self) -> dict[str, str]:
        # All six keys: with one missing, azure-ai-ml downloads cloud metadata from the internet.
        return {
            "azure_portal": "https://portal.azure.com/",
            "resource_manager": f"{self.arm_endpoint}/",
            "active_directory": f"{self.authority_host}/",
            "aml_resource_id": "https://ml.azure.com/",
            "storage_endpoint": "core.windows.net",
            "registry_discovery_endpoint": f"{self.arm_endpoint}/",
        }

    def _ml_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "enable_telemetry": False,
            "show_progress": False,
            "cloud": self.cloud_name(),
            **self._budget_options(),
        }
        if self.cloud_name() not in KNOWN_CLOUDS.values():
            options["cloud_metadata"] = self._cloud_metadata()
        return options

    def ml(self, subscription: str, resource_group: str, workspace_name: str) -> Any:
        """azure-ai-ml MLClient for one workspace (imported on first use: it costs ~1 s and 100 MiB)."""
        from azure.ai.ml import MLClient  # Python's import lock makes this once per process

        return self._cached(
            ("ml", subscription, resource_group.lower(), workspace_name.lower()),
            lambda: MLClient(
                self.credential(), subscription, resource_group, workspace_name, **self._ml_options()
            ),
        )

    def ml_subscription(self, subscription: str) -> Any:
        """azure-ai-ml MLClient scoped to a subscription only: location-level calls (VM sizes, usages)
        and listing the subscription's workspaces need no resource group or workspace."""
        from azure.ai.ml import MLClient

        return self._cached(
            ("ml", subscription), lambda: MLClient(self.credential(), subscription, **self._ml_options())
        )

    # --- Graph ----

    def graph(self) -> GraphSession:
        """The Microsoft Graph session (users and groups)."""
        return self._cached(("graph",), lambda: GraphSession(self.credential(), self.graph_endpoint))

    @classmethod
    @contextmanager
    def given_or_own(cls, clients: AzureClients | None) -> Iterator[AzureClients]:
        """The given clients, or clients from settings closed afterwards."""
        if clients is not None:
            yield clients
            return
        own = cls.from_settings()
        try:
            yield own
        finally:
            own.close()

    def close(self) -> None:
        """Close every client built so far (their connection pools) and the credential."""
        with self._lock:
            for client in self._cache.values():
                closer = getattr(client, "close", None)
                if callable(closer):
                    closer()
            self._cache.clear()
            closer = getattr(self._credential, "close", None)
            if callable(closer):
                closer()
            for budget in (self.write_budget, self.read_budget):
                if budget is not None:
                    budget.close()


def write_budget_from_settings(settings: Any) -> WriteBudget | None:
    """The shared ARM write budget (ARM_WRITES_PER_SECOND, ARM_WRITE_BURST; a burst of 0 turns it off),
    kept in the provisioning queue's Redis."""
    return _budget_from_settings(settings, "ARM_WRITES_PER_SECOND", "ARM_WRITE_BURST", reads=False)


def read_budget_from_settings(settings: Any) -> WriteBudget | None:
    """The shared ARM read budget (ARM_READS_PER_SECOND, ARM_READ_BURST; a burst of 0 turns it off)."""
    return _budget_from_settings(settings, "ARM_READS_PER_SECOND", "ARM_READ_BURST", reads=True)


def _budget_from_settings(settings: Any, rate: str, burst: str, *, reads: bool) -> WriteBudget | None:
    size = int(getattr(settings, burst, 0))
    if size <= 0:
        return None
    from provisioning.azure.rate_limit import KEY_PREFIX, READ_KEY_PREFIX, WriteBudget

    return WriteBudget(
        settings.RQ_QUEUES["provisioning"]["URL"],
        rate=float(getattr(settings, rate)),
        burst=size,
        key_prefix=READ_KEY_PREFIX if reads else KEY_PREFIX,
        # what a role assignment leaves to the resources under contention (ARM_GRANT_SPARE; 0: no yielding)
        spare=0 if reads else min(size - 1, max(0, int(getattr(settings, "ARM_GRANT_SPARE", 0)))),
    )
