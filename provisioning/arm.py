"""Facts of Azure Resource Manager the portal relies on, defined once (pure: no Django, no SDK).

The provider type of each resource kind the portal makes, the tag that marks what the portal owns,
the names of its custom roles, how resource ids are written, and how Azure spells VM families.
"""

from __future__ import annotations

import re

# The tag every resource the portal makes carries; a resource without it is never modified.
OWNERSHIP_TAG = "managed-by"
OWNERSHIP_VALUE = "azureml-portal"

# The portal's custom roles granted to members (their permissions are in provisioning.roles), and the two
# administration roles it defines and assigns to the subscription's admin groups.
CUSTOM_ROLES = ("Data Scientist", "Team Lead")
ADMIN_ROLES = ("AzureML Capacity Admin", "AzureML Workspace Admin")

WORKSPACE_PROVIDER = "Microsoft.MachineLearningServices/workspaces"
STORAGE_PROVIDER = "Microsoft.Storage/storageAccounts"
KEY_VAULT_PROVIDER = "Microsoft.KeyVault/vaults"
REGISTRY_PROVIDER = "Microsoft.ContainerRegistry/registries"
APP_INSIGHTS_PROVIDER = "Microsoft.Insights/components"

# Resource kinds as plans and steps name them, with their ARM provider type.
KIND_PROVIDER = {
    "storage_account": STORAGE_PROVIDER,
    "key_vault": KEY_VAULT_PROVIDER,
    "registry": REGISTRY_PROVIDER,
    "container_registry": REGISTRY_PROVIDER,
    "app_insights": APP_INSIGHTS_PROVIDER,
    "workspace": WORKSPACE_PROVIDER,
}


def ownership_tags() -> dict[str, str]:
    """The tags that mark a resource as the portal's."""
    return {OWNERSHIP_TAG: OWNERSHIP_VALUE}


def arm_id(subscription: str, resource_group: str, provider: str, name: str) -> str:
    """The ARM id of a resource in a resource group."""
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{provider}/{name}"


# An ARM id safe to put in a link: "/subscriptions/" then path segments of the characters Azure allows in
# names and types (letters, digits, "-_.()"); no "..", no "?", "#", "%", quotes or spaces.
_SEGMENT = r"[A-Za-z0-9_()\-]+(?:\.[A-Za-z0-9_()\-]+)*\.?"
RESOURCE_ID = re.compile(rf"/subscriptions/{_SEGMENT}(?:/{_SEGMENT})*")
RESOURCE_ID_LONGEST = 1024


def resource_id_valid(text: str) -> bool:
    """Whether ``text`` is an ARM id made of safe characters only (``/subscriptions/...``)."""
    return len(text) <= RESOURCE_ID_LONGEST and RESOURCE_ID.fullmatch(text) is not None


def resource_ids_in(value: object) -> list[str]:
    """The valid ARM ids among the strings of a JSON value (nested dicts and lists), in order, once each."""
    found: dict[str, None] = {}
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if item.lower().startswith("/subscriptions/") and resource_id_valid(item):
                found[item] = None
        elif isinstance(item, dict):
            stack.extend(reversed([*item.values()]))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return list(found)


# What Cost Management's rows are, by the resource's provider type (lowercase): the spend by kind.
COST_KINDS = {
    "microsoft.machinelearningservices/workspaces/computes": "compute",
    "microsoft.machinelearningservices/workspaces": "compute",
    "microsoft.storage/storageaccounts": "storage",
    "microsoft.containerregistry/registries": "registry",
    "microsoft.keyvault/vaults": "key_vault",
    "microsoft.insights/components": "monitoring",
    "microsoft.operationalinsights/workspaces": "monitoring",
}


def resource_type_of(resource_id: str) -> str:
    """The provider type of an ARM id, lowercased ("microsoft.storage/storageaccounts"); "" for a group.

    Child resources keep every type segment: ``.../workspaces/ws/computes/c`` is
    ``microsoft.machinelearningservices/workspaces/computes``.
    """
    _, found, rest = resource_id.lower().rpartition("/providers/")
    parts = rest.split("/")
    if not found or len(parts) < 3:
        return ""
    return "/".join([parts[0], *parts[1::2]])


def cost_kind(resource_type: str) -> str:
    """The kind of spend a resource type is: compute, storage, registry, key_vault, monitoring or other."""
    return COST_KINDS.get(resource_type.lower(), "other")


def idle_duration(seconds: int) -> str:
    """Seconds as the ISO 8601 duration AzureML writes (``PT2M``, ``PT90S``, ``PT1H30M``)."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (f"{secs}S" if secs else "")
    return "PT" + (parts or "0S")


QUOTA_SUFFIX = re.compile(r"[ _]Cluster[ _](Dedicated|LowPriority)[ _]vCPUs$", re.IGNORECASE)


# --- names of VM families ----------------------------------------------------------------------------------


def family_stem(text: str) -> str:
    """A comparable form of a VM family, from its vmSizes key or its quota name.

    ``standardDSv2Family``, ``Standard DSv2 Family Cluster Dedicated vCPUs`` and
    ``Standard_DSv2_Family_Cluster_Dedicated_vCPUs`` all give ``standarddsv2family``.
    """
    return re.sub(r"[^a-z0-9]", "", QUOTA_SUFFIX.sub("", text).lower())


def family_key(quota_name: str) -> str:
    """The vmSizes family key a quota name derives from: ``Standard NV Family ...`` -> ``standardNVFamily``.

    Used only when the size catalog has no family matching Azure's name.
    """
    stem = QUOTA_SUFFIX.sub("", quota_name).replace("_", " ").strip()
    found = re.fullmatch(r"Standard (.+) Family", stem)
    return f"standard{found.group(1).replace(' ', '_')}Family" if found else stem


def family_label(family: str) -> str:
    """A family in words, as Azure's quota names spell it: ``standardDSv2Family`` -> ``Standard DSv2 Family``."""
    found = re.fullmatch(r"standard(.+)Family", family)
    return f"Standard {found.group(1)} Family" if found else family


def dedicated_quota_name(family: str) -> str:
    """The dedicated quota name Azure uses for a family when it lists none to copy the spelling from."""
    return f"{family_label(family)} Cluster Dedicated vCPUs"


def quota_key(quota_name: str) -> str:
    """The last segment of a quota's id: its name with underscores (``Standard_DSv2_Family_...``)."""
    return quota_name.replace(" ", "_")
