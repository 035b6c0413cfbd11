"""What every Azure operation shares: its result, its one error type, and get-then-create.

Each operation gets what exists first and creates or updates only what the portal owns. A resource
that exists without the portal's ownership tag is never modified: the step fails with
"exists, not managed by the portal". Operations return an ``Outcome`` and raise only
``AzureStepError``, which says whether retrying can help.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError

from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE

TRANSIENT_CODES = frozenset(
    {
        "PrincipalNotFound",
        "TooManyRequests",
        "RetryableError",
        "ServiceUnavailable",
        "InternalServerError",
        "Conflict",
        "AnotherOperationInProgress",
    }
)
HINTS = {
    "AuthorizationFailed": "The worker's identity lacks permission: grant it Owner (or Contributor and User "
    "Access Administrator) on the subscription, then retry the run.",
    "LinkedAuthorizationFailed": "The worker's identity lacks permission on a linked resource: "
    "check its roles, "
    "then retry the run.",
    "StorageAccountAlreadyTaken": "The name is taken elsewhere in Azure: reject the request and ask the team "
    "lead for a custom name.",
    "VaultAlreadyExists": "The key vault name is taken (possibly by a soft-deleted vault): purge it or ask "
    "for a custom name.",
    "AlreadyInUse": "The registry name is taken elsewhere in Azure: ask the team lead for a custom name.",
    "NotManagedByPortal": "A resource with this name exists but the portal did not create it. Remove it, or "
    "reject the request and ask for a custom name.",
    "PrincipalNotFound": "Entra ID has not replicated the user or group yet: retry the run in a few minutes.",
    "GraphLookupFailed": "Check the user's UPN or the group's exact display name in Entra ID, then retry.",
    "QuotaExceeded": "The subscription's quota is exhausted in this region: request more quota, then retry.",
    "StillInProgress": "An earlier attempt's operation is still running in Azure: retry the run once it "
    "has finished (the Azure portal's activity log shows it).",
    "ClusterChangeRefused": "Azure cannot change a cluster's VM size or priority in place: ask for the change "
    "from the workspace page, whose plan replaces the cluster.",
    "ClusterHasRunningNodes": "Jobs are running on the cluster: retry the run once they have finished (the "
    "workspace's jobs page in AzureML studio shows them), or cancel them first.",
    "ClusterNotFound": "The cluster was deleted outside the portal: reconcile the workspace and accept the "
    "drift, then ask for the cluster again.",
    "InvalidQuotaExceedsSubscriptionLimit": "The team's budget asks more than the subscription's quota in this "
    "region: get more quota from Azure support and retry the run, or lower the team's budget and apply it to "
    "the workspace from the capacity page.",
    "InvalidQuotaBelowClusterMinimum": "The workspace's clusters already hold more cores than the budget "
    "(their minimum nodes): lower those clusters' minimum nodes or raise the team's budget, then retry.",
    "InvalidVMFamilyName": "Azure does not offer this VM family for AzureML in the region: remove the team's "
    "budget for it, then apply the budget again.",
}
DEFAULT_HINT = "Retry the run. If it fails again, Azure's message above says what to fix."


@dataclass(frozen=True)
class Outcome:
    """What a step did: created, updated, unchanged, removed, absent; and the resource id."""

    action: str
    azure_id: str = ""
    detail: str = ""


class AzureStepError(Exception):
    """An Azure operation failed. ``transient`` says whether the same call may succeed later."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        transient: bool = False,
        status: int | None = None,
        correlation_id: str = "",
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.transient = transient
        self.status = status
        self.correlation_id = correlation_id

    @property
    def hint(self) -> str:
        return HINTS.get(self.code, DEFAULT_HINT)


@contextmanager
def azure_errors() -> Iterator[None]:
    """Translate azure-core errors into AzureStepError with Azure's code, message and correlation id."""
    try:
        yield
    except HttpResponseError as exc:
        status = exc.status_code
        error = exc.error
        # A failed deployment says "DeploymentFailed"; the reason Azure gives is in its first detail.
        while error is not None and error.code == "DeploymentFailed" and error.details:
            error = error.details[0]
        code = (error.code if error and error.code else "") or f"HTTP{status}"
        message = (error.message if error and error.message else "") or exc.reason or str(exc)
        headers = getattr(exc.response, "headers", None) or {}
        correlation = headers.get("x-ms-correlation-request-id") or headers.get("x-ms-request-id") or ""
        transient = code in TRANSIENT_CODES or status in (408, 429) or (status or 0) >= 500
        raise AzureStepError(
            code, message, transient=transient, status=status, correlation_id=correlation
        ) from exc


def not_managed(kind: str, name: str) -> AzureStepError:
    return AzureStepError(
        "NotManagedByPortal",
        f"{kind} '{name}' exists, not managed by the portal "
        f"(it lacks the tag {OWNERSHIP_TAG}={OWNERSHIP_VALUE})",
    )


def owned(resource: Any) -> bool:
    tags = getattr(resource, "tags", None) or {}
    return tags.get(OWNERSHIP_TAG) == OWNERSHIP_VALUE


def _provisioning_state(resource: Any) -> str:
    """The resource's provisioning state in lower case ("" when its model has none)."""
    properties = getattr(resource, "properties", None)
    state = getattr(resource, "provisioning_state", None) or (
        properties.get("provisioningState")  # a generic resource's properties are a plain dict
        if isinstance(properties, dict)
        else getattr(properties, "provisioning_state", None)
    )
    return str(getattr(state, "value", state) or "").lower()  # SDK enums or plain strings


def provisioning_failed(resource: Any) -> bool:
    """Azure may keep a resource whose creation failed (state Failed); only a new PUT repairs it."""
    return _provisioning_state(resource) == "failed"


# States in which Azure has finished with a resource; anything else (Creating, Updating, Deleting,
# RegisteringDns, ResolvingDNS, Accepted...) is an operation still running.
SETTLED_STATES = frozenset({"", "unknown", "succeeded", "failed", "canceled", "cancelled"})
SETTLE_SECONDS = 900.0
SETTLE_MAX_PAUSE = 10.0


def settled(
    kind: str, name: str, get: Callable[[], Any], *, seconds: float = SETTLE_SECONDS, owned_only: bool = True
) -> Any:
    """What exists once Azure has finished what it is doing to it (None when it is gone).

    A worker killed after sending a PUT leaves Azure's operation running; on resume the resource is
    still Creating. Taking that as done would miss a creation that fails later, so wait for the state
    to settle (polling at 0.5 s, doubling up to 10 s), then decide as usual. ``owned_only=False`` for what
    carries no tags (a template deployment).
    """
    existing = get_or_none(get)
    if owned_only and existing is not None and not owned(existing):
        raise not_managed(kind, name)
    deadline, pause = time.monotonic() + seconds, 0.5
    while existing is not None and (state := _provisioning_state(existing)) not in SETTLED_STATES:
        if time.monotonic() >= deadline:
            raise AzureStepError(
                "StillInProgress",
                f"{kind} '{name}' is still {state} in Azure after {seconds / 60:.0f} minutes",
            )
        time.sleep(pause)
        pause = min(pause * 2, SETTLE_MAX_PAUSE)
        existing = get_or_none(get)
    return existing


def get_or_none(getter: Any, *args: Any) -> Any:
    try:
        with azure_errors():
            return getter(*args)
    except AzureStepError as exc:
        if exc.status == 404:
            return None
        raise


def ensure(
    kind: str, name: str, get: Callable[[], Any], create: Callable[[], Any], *, look_first: bool = True
) -> Outcome:
    """Get first; never touch what the portal does not own; create what is missing (or failed).

    ``look_first=False`` when the caller knows it is missing (see ``RunContext.look_first``)."""
    existing = settled(kind, name, get) if look_first else None
    if existing is not None and not provisioning_failed(existing):
        return Outcome("unchanged", existing.id)
    with azure_errors():
        created = create()
    return Outcome("created", created.id)
