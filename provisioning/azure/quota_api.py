"""The Quota API (``azure-mgmt-quota``): a subscription's AzureML limits, and increase requests filed with Azure.

Scope ``subscriptions/{id}/providers/Microsoft.MachineLearningServices/locations/{region}``; the resource
name is a VM family (``standardDSv2Family``) or ``TotalLowPriorityCores``. Azure decides an increase in
minutes to days, so filing never waits for it: the PUT is sent without polling, the quota request's id is
read from the first answer's ``Location`` and returned; ``quota_request_read`` follows it later.
(``provisioning.azure.quotas`` is the other quota: AzureML's workspace share of these limits.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, azure_errors

IN_PROGRESS, SUCCEEDED, FAILED, INVALID = "InProgress", "Succeeded", "Failed", "Invalid"


def quota_scope(subscription: str, location: str) -> str:
    """The Quota API's scope of AzureML cores in a region."""
    return f"subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/locations/{location}"


@dataclass(frozen=True)
class QuotaLimit:
    """A subscription's limit for one resource name, as the Quota API reports it."""

    name: str
    limit: int


@dataclass(frozen=True)
class QuotaRequestState:
    """Where Azure is with a quota request: its state, its message (the reason when denied), what it granted."""

    request_id: str
    state: str  # Accepted, InProgress, Succeeded, Failed, Invalid
    message: str
    limit: int | None

    @property
    def done(self) -> bool:
        return self.state in (SUCCEEDED, FAILED, INVALID)


def quota_limit_read(clients: AzureClients, *, subscription: str, location: str, name: str) -> QuotaLimit:
    """The subscription's current limit for a VM family (or TotalLowPriorityCores) in a region."""
    with azure_errors():
        found = clients.quota(subscription).quota.get(name, quota_scope(subscription, location))
    return QuotaLimit(name=str(found.name or name), limit=int(found.properties.limit.value))


def quota_request_file(
    clients: AzureClients, *, subscription: str, location: str, name: str, limit: int
) -> str:
    """File an increase of ``name`` to ``limit`` cores; returns Azure's quota request id (no waiting)."""
    answers: list[Any] = []
    body = {
        "properties": {"limit": {"limitObjectType": "LimitValue", "value": limit}, "name": {"value": name}}
    }
    with azure_errors():
        clients.quota(subscription).quota.begin_create_or_update(
            name,
            quota_scope(subscription, location),
            body,
            polling=False,
            raw_response_hook=lambda pipeline_response: answers.append(pipeline_response.http_response),
        )
    location_url = str(answers[-1].headers.get("Location") or "") if answers else ""
    request_id = (
        location_url.split("/quotaRequests/", 1)[-1].split("?", 1)[0]
        if "/quotaRequests/" in location_url
        else ""
    )
    if not request_id:
        raise AzureStepError(
            "NoQuotaRequestId",
            f"Azure accepted the quota request but named no quota request ({location_url!r})",
        )
    return request_id


def quota_request_read(
    clients: AzureClients, *, subscription: str, location: str, request_id: str
) -> QuotaRequestState:
    """Azure's state of a quota request; a denial's reason is Azure's error message."""
    with azure_errors():
        found = clients.quota(subscription).quota_request_status.get(
            request_id, quota_scope(subscription, location)
        )
    props = found.properties
    raw_state = props.provisioning_state or IN_PROGRESS
    state = str(getattr(raw_state, "value", raw_state))  # an SDK enum: str() would name the member
    error = getattr(props, "error", None)
    message = str((getattr(error, "message", None) if error is not None else None) or props.message or "")
    code = getattr(error, "code", None) if error is not None else None
    items = props.value or []
    limit = getattr(items[0].limit, "value", None) if items and items[0].limit is not None else None
    return QuotaRequestState(
        request_id=request_id,
        state=state,
        message=f"{code}: {message}" if code and state != SUCCEEDED else message,
        limit=int(limit) if limit is not None else None,
    )
