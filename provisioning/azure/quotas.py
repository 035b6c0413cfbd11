"""Azure's side of compute capacity: VM sizes, core usages, workspace quotas, and the clusters that exist.

Read-only calls go through azure-ai-ml (``MLClient.compute.list_sizes`` / ``list_usage`` by location,
workspaces and computes by listing). Workspace quotas have no SDK wrapper: ``updateQuotas`` and the
quota list are sent through a management client's public ``send_request``, so they share its
credential, retry policy and TLS trust. Functions return plain dataclasses and raise only
``AzureStepError``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.mgmt.core.exceptions import ARMErrorFormat

from provisioning.arm import (
    QUOTA_SUFFIX,
    dedicated_quota_name,
    family_label,
    family_stem,
    quota_key,
)
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import azure_errors

# The api-version of Microsoft.MachineLearningServices quota calls (the one azure-ai-ml's compute
# operations use, and the one of Microsoft's Quota examples).
ML_API_VERSION = "2023-08-01-preview"
WORKSPACE_QUOTA_TYPE = "Microsoft.MachineLearningServices/workspaces/quotas"
SUCCESS = "Success"
REFUSALS = {
    "InvalidQuotaExceedsSubscriptionLimit": "Azure refused {requested} vCPUs of {label} for this workspace: "
    "the subscription's limit in {location} is {subscription_limit}. Lower the team's budget, or ask "
    "Azure support for more quota in the subscription.",
    "InvalidQuotaBelowClusterMinimum": "Azure refused {requested} vCPUs of {label} for this workspace: its "
    "clusters already hold more nodes of that family than this (their minimum nodes). Lower those clusters' "
    "minimum nodes, or raise the team's budget.",
    "InvalidVMFamilyName": "Azure refused the quota: it does not offer {label} for AzureML compute in "
    "{location}. Remove the team's budget for this family in this region.",
    "OperationNotSupportedForSku": "Azure refused the quota: workspace-level quota is not supported for "
    "this workspace's SKU.",
    "OperationNotEnabledForRegion": "Azure refused the quota: workspace-level quota is not enabled in "
    "{location}.",
}
DEFAULT_REFUSAL = "Azure did not apply {requested} vCPUs of {label} (status {status})."


# --- VM sizes and usages of a location ---------------------------------------------------------------------


@dataclass(frozen=True)
class VmSizeOffer:
    """A VM size Azure offers for AmlCompute in a location."""

    name: str  # as Azure spells it: Standard_DS3_v2
    family: str  # the quota family key: standardDSv2Family
    vcpus: int
    gpus: int
    memory_gb: float
    low_priority_capable: bool


def _attr(obj: Any, *names: str, default: Any = None) -> Any:
    """The first attribute set among ``names`` (azure-ai-ml entities keep unknown fields under their wire
    names, e.g. ``currentValue`` instead of ``current_value``)."""
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return default


def list_vm_sizes(clients: AzureClients, *, subscription: str, location: str) -> list[VmSizeOffer]:
    """The AmlCompute VM sizes of a location (no workspace needed)."""
    ml = clients.ml_subscription(subscription)
    with azure_errors():
        sizes = list(ml.compute.list_sizes(location=location))
    return [
        VmSizeOffer(
            name=str(size.name),
            family=str(_attr(size, "family", default="")),
            vcpus=int(_attr(size, "v_cp_us", "vCPUs", default=0)),
            gpus=int(_attr(size, "gpus", default=0)),
            memory_gb=float(_attr(size, "memory_gb", "memoryGB", default=0.0)),
            low_priority_capable=bool(
                _attr(size, "low_priority_capable", "lowPriorityCapable", default=False)
            ),
        )
        for size in sizes
        if "AmlCompute" in (_attr(size, "supported_compute_types", "supportedComputeTypes") or ["AmlCompute"])
    ]


@dataclass(frozen=True)
class UsageReading:
    """One row of Azure's usages of a location: what is in use against which limit."""

    id: str
    kind: str  # from the type: totalCores, dedicatedCores, lowPriorityCores, vmFamily, workspaces, ...
    name: str  # e.g. "Standard DSv2 Family Cluster Dedicated vCPUs"
    current: int
    limit: int

    @property
    def subscription_level(self) -> bool:
        """A subscription's row (not a workspace's or a cluster's)."""
        return "/resourcegroups/" not in self.id.lower()

    @property
    def low_priority(self) -> bool:
        return "lowpriority" in self.name.replace(" ", "").lower()


def _usage_kind(usage_type: str) -> str:
    kind = usage_type.split("/", 1)[-1]
    return kind[: -len("/usages")] if kind.endswith("/usages") else kind


def list_core_usages(clients: AzureClients, *, subscription: str, location: str) -> list[UsageReading]:
    """Usages and limits of a location. azure-ai-ml 1.35.2 leaves ``current_value`` empty: the value
    Azure sent is in ``currentValue``."""
    ml = clients.ml_subscription(subscription)
    with azure_errors():
        usages = list(ml.compute.list_usage(location=location))
    readings = []
    for usage in usages:
        name = _attr(usage, "name", default={})
        readings.append(
            UsageReading(
                id=str(_attr(usage, "id", default="")),
                kind=_usage_kind(str(_attr(usage, "type", default=""))),
                name=str(name.get("value", "") if isinstance(name, dict) else getattr(name, "value", name)),
                current=int(_attr(usage, "current_value", "currentValue", default=0)),
                limit=int(_attr(usage, "limit", default=0)),
            )
        )
    return readings


# --- workspace quotas (no SDK wrapper) ---------------------------------------------------------------------


def _arm_json(clients: AzureClients, subscription: str, method: str, url: str, body: Any = None) -> Any:
    """One ARM call through the resource client's pipeline; ARM errors become AzureStepError."""
    from azure.core.rest import HttpRequest

    params = {} if "api-version=" in url else {"api-version": ML_API_VERSION}
    request = HttpRequest(method, url, params=params, json=body)
    with azure_errors():
        response = clients.resources(subscription).send_request(request)
        if response.status_code >= 400:
            raise HttpResponseError(response=response, error_format=ARMErrorFormat)
    return response.json()


def _location_path(subscription: str, location: str) -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.MachineLearningServices/locations/{location}"


def list_quotas(clients: AzureClients, *, subscription: str, location: str) -> list[dict[str, Any]]:
    """Quotas_List of a location: the subscription's family limits and every workspace's quota, raw."""
    rows: list[dict[str, Any]] = []
    url: str | None = f"{_location_path(subscription, location)}/quotas"
    while url:
        page = _arm_json(clients, subscription, "GET", url)
        rows += page.get("value") or []
        url = page.get("nextLink")
    return rows


@dataclass(frozen=True)
class QuotaResult:
    """A workspace's dedicated quota for one family: asked, held by Azure after the update, and why not."""

    family: str
    quota_name: str
    requested: int
    applied: int | None
    status: str  # Azure's status of the update (Success, InvalidQuotaExceedsSubscriptionLimit, ...)
    subscription_limit: int | None = None
    sent: bool = True  # False when Azure already held the requested limit (nothing was sent)
    location: str = field(default="", compare=False)

    @property
    def ok(self) -> bool:
        return self.status == SUCCESS

    @property
    def message(self) -> str:
        """What happened, in words; for a refusal, why and what to do."""
        values = {
            "requested": self.requested,
            "label": family_label(self.family),
            "location": self.location,
            "subscription_limit": "unknown" if self.subscription_limit is None else self.subscription_limit,
            "status": self.status,
        }
        if self.ok:
            held = "already held" if not self.sent else "applied"
            return f"{self.requested} vCPUs of {values['label']} {held} (Azure reports {self.applied})."
        return REFUSALS.get(self.status, DEFAULT_REFUSAL).format(**values)


def _quota_names(rows: list[dict[str, Any]], families: list[str]) -> dict[str, str]:
    """Azure's spelling of each family's dedicated quota name, from the quota rows it lists."""
    listed: dict[str, str] = {}
    for row in rows:
        name = str((row.get("name") or {}).get("value") or "")
        if QUOTA_SUFFIX.search(name) and "dedicated" in name.lower():
            listed.setdefault(family_stem(name), name)
    return {f: listed.get(family_stem(f), dedicated_quota_name(f)) for f in families}


def _limits_by_id(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {str(row.get("id", "")).lower(): int(row.get("limit") or 0) for row in rows}


def apply_workspace_quotas(
    clients: AzureClients, *, subscription: str, location: str, workspace_id: str, limits: dict[str, int]
) -> list[QuotaResult]:
    """Set a workspace's dedicated vCPU quota per VM family (``updateQuotas``) and read it back.

    Families whose limit Azure already holds are not sent again, so re-applying the same budget sends
    only GETs. A refusal is not an exception: it is each result's ``status`` (the caller decides).
    """
    rows = list_quotas(clients, subscription=subscription, location=location)
    names = _quota_names(rows, list(limits))
    sub_prefix = f"/subscriptions/{subscription}/quotas/".lower()
    ids = {f: f"{workspace_id}/quotas/{quota_key(names[f])}" for f in limits}
    held = _limits_by_id(rows)
    to_send = [f for f in limits if held.get(ids[f].lower()) != limits[f]]
    statuses: dict[str, str] = {}
    if to_send:
        body = {
            "value": [
                {"id": ids[f], "type": WORKSPACE_QUOTA_TYPE, "limit": limits[f], "unit": "Count"}
                for f in to_send
            ]
        }
        answer = _arm_json(
            clients, subscription, "POST", f"{_location_path(subscription, location)}/updateQuotas", body
        )
        statuses = {
            str(item.get("id", "")).lower(): str(item.get("status") or "Undefined")
            for item in answer.get("value") or []
        }
        held = _limits_by_id(list_quotas(clients, subscription=subscription, location=location))
    return [
        QuotaResult(
            family=f,
            quota_name=names[f],
            requested=limits[f],
            applied=held.get(ids[f].lower()),
            status=statuses.get(ids[f].lower(), "Undefined") if f in to_send else SUCCESS,
            subscription_limit=held.get(sub_prefix + quota_key(names[f]).lower()),
            sent=f in to_send,
            location=location,
        )
        for f in limits
    ]


# --- workspaces and clusters that exist --------------------------------------------------------------------


@dataclass(frozen=True)
class WorkspaceListing:
    """An AzureML workspace of a subscription, whoever made it."""

    azure_id: str
    name: str
    resource_group: str
    location: str
    tags: dict[str, str]


@dataclass(frozen=True)
class ClusterListing:
    """An AmlCompute cluster as Azure has it."""

    azure_id: str
    name: str
    location: str
    vm_size: str
    priority: str  # "dedicated" or "low_priority"
    min_nodes: int
    max_nodes: int
    idle_seconds: int
    tags: dict[str, str]


def _resource_group_of(azure_id: str) -> str:
    found = re.search(r"/resourceGroups/([^/]+)/", azure_id, re.IGNORECASE)
    return found.group(1) if found else ""


def list_workspaces(clients: AzureClients, *, subscription: str) -> list[WorkspaceListing]:
    """Every AzureML workspace of a subscription (Workspaces_ListBySubscription)."""
    ml = clients.ml_subscription(subscription)
    with azure_errors():
        found = list(ml.workspaces.list(scope="subscription"))
    return [
        WorkspaceListing(
            azure_id=str(ws.id or ""),
            name=str(ws.name),
            resource_group=str(ws.resource_group or _resource_group_of(str(ws.id or ""))),
            location=str(ws.location or ""),
            tags=dict(ws.tags or {}),
        )
        for ws in found
    ]


def list_clusters(
    clients: AzureClients, *, subscription: str, resource_group: str, workspace: str
) -> list[ClusterListing]:
    """The AmlCompute clusters of a workspace (compute instances and attached computes left out)."""
    ml = clients.ml(subscription, resource_group, workspace)
    with azure_errors():
        computes = list(ml.compute.list())
    return [
        ClusterListing(
            azure_id=str(c.id or ""),
            name=str(c.name),
            location=str(c.location or ""),
            vm_size=str(c.size or "").upper(),
            priority="low_priority" if str(c.tier or "").lower() == "low_priority" else "dedicated",
            min_nodes=int(c.min_instances or 0),
            max_nodes=int(c.max_instances or 0),
            idle_seconds=int(c.idle_time_before_scale_down or 0),
            tags=dict(c.tags or {}),
        )
        for c in computes
        if str(getattr(c, "type", "")).lower() == "amlcompute"
    ]
