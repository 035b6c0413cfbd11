"""Static data the stand-in serves: built-in roles, locations, VM sizes and default quotas.

Role ids are Azure's real, well-known built-in role definition GUIDs. VM sizes follow the shape of
Microsoft's ``VirtualMachineSize/list.json`` example; availability per region and default quotas are
plausible for a pay-as-you-go subscription (GPU families start at 0 dedicated vCPUs). Each region also
has cores already taken by workloads outside the portal (other teams' clusters made by hand), so usage
is never all zeros: the portal must plan with what is really left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

BUILTIN_ROLES: list[dict[str, object]] = [
    {
        "id": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "roleName": "Owner",
        "description": "Grants full access to manage all resources, including the ability to assign roles in "
        "Azure RBAC.",
        "actions": ["*"],
    },
    {
        "id": "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "roleName": "Contributor",
        "description": "Grants full access to manage all resources, but does not allow you to assign roles "
        "in Azure RBAC.",
        "actions": ["*"],
        "notActions": [
            "Microsoft.Authorization/*/Delete",
            "Microsoft.Authorization/*/Write",
            "Microsoft.Authorization/elevateAccess/Action",
            "Microsoft.Blueprint/blueprintAssignments/write",
            "Microsoft.Blueprint/blueprintAssignments/delete",
            "Microsoft.Compute/galleries/share/action",
        ],
    },
    {
        "id": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "roleName": "Reader",
        "description": "View all resources, but does not allow you to make any changes.",
        "actions": ["*/read"],
    },
    {
        "id": "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "roleName": "User Access Administrator",
        "description": "Lets you manage user access to Azure resources.",
        "actions": ["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"],
    },
    {
        "id": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "roleName": "Storage Blob Data Contributor",
        "description": "Allows for read, write and delete access to Azure Storage blob containers and data",
        "actions": [
            "Microsoft.Storage/storageAccounts/blobServices/containers/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/write",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        "dataActions": [
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/delete",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/move/action",
            "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/add/action",
        ],
    },
    {
        "id": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
        "roleName": "Storage Blob Data Reader",
        "description": "Allows for read access to Azure Storage blob containers and data",
        "actions": [
            "Microsoft.Storage/storageAccounts/blobServices/containers/read",
            "Microsoft.Storage/storageAccounts/blobServices/generateUserDelegationKey/action",
        ],
        "dataActions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"],
    },
    {
        "id": "b86a8fe4-44ce-4948-aee5-eccb2c155cd7",
        "roleName": "Key Vault Secrets Officer",
        "description": "Perform any action on the secrets of a key vault, except manage permissions. Only "
        "works for key vaults that use the 'Azure role-based access control' permission model.",
        "actions": [
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/alertRules/*",
            "Microsoft.Resources/deployments/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
            "Microsoft.Support/*",
            "Microsoft.KeyVault/checkNameAvailability/read",
            "Microsoft.KeyVault/deletedVaults/read",
            "Microsoft.KeyVault/locations/*/read",
            "Microsoft.KeyVault/vaults/*/read",
            "Microsoft.KeyVault/operations/read",
        ],
        "dataActions": ["Microsoft.KeyVault/vaults/secrets/*"],
    },
    {
        "id": "4633458b-17de-408a-b874-0445c86b69e6",
        "roleName": "Key Vault Secrets User",
        "description": "Read secret contents. Only works for key vaults that use the 'Azure role-based "
        "access control' permission model.",
        "dataActions": [
            "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
        ],
    },
    {
        "id": "8311e382-0749-4cb8-b61a-304f252e45ec",
        "roleName": "AcrPush",
        "description": "acr push",
        "actions": [
            "Microsoft.ContainerRegistry/registries/pull/read",
            "Microsoft.ContainerRegistry/registries/push/write",
        ],
    },
    {
        "id": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
        "roleName": "AcrPull",
        "description": "acr pull",
        "actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
    },
    {
        "id": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
        "roleName": "AzureML Data Scientist",
        "description": "Can perform all actions within an Azure Machine Learning workspace, except for "
        "creating or deleting compute resources and modifying the workspace itself.",
        "actions": [
            "Microsoft.MachineLearningServices/workspaces/*/read",
            "Microsoft.MachineLearningServices/workspaces/*/action",
            "Microsoft.MachineLearningServices/workspaces/*/delete",
            "Microsoft.MachineLearningServices/workspaces/*/write",
        ],
        "notActions": [
            "Microsoft.MachineLearningServices/workspaces/delete",
            "Microsoft.MachineLearningServices/workspaces/write",
            "Microsoft.MachineLearningServices/workspaces/computes/*/write",
            "Microsoft.MachineLearningServices/workspaces/computes/*/delete",
            "Microsoft.Authorization/*",
            "Microsoft.MachineLearningServices/workspaces/computes/listKeys/action",
            "Microsoft.MachineLearningServices/workspaces/listKeys/action",
            "Microsoft.MachineLearningServices/workspaces/hubs/write",
            "Microsoft.MachineLearningServices/workspaces/hubs/delete",
            "Microsoft.MachineLearningServices/workspaces/featurestores/write",
            "Microsoft.MachineLearningServices/workspaces/featurestores/delete",
        ],
    },
    {
        "id": "ae349356-3a1b-4a5e-921d-050484c6347e",
        "roleName": "Application Insights Component Contributor",
        "description": "Can manage Application Insights components",
        "actions": [
            "Microsoft.Authorization/*/read",
            "Microsoft.Insights/components/*",
            "Microsoft.Resources/subscriptions/resourceGroups/read",
        ],
    },
]

LOCATIONS: dict[str, str] = {
    "eastus": "East US",
    "eastus2": "East US 2",
    "westus2": "West US 2",
    "westus3": "West US 3",
    "centralus": "Central US",
    "southcentralus": "South Central US",
    "northeurope": "North Europe",
    "westeurope": "West Europe",
    "uksouth": "UK South",
    "francecentral": "France Central",
    "swedencentral": "Sweden Central",
}


def normalize_location(location: str) -> str:
    """ARM stores locations as lowercase names without spaces ("East US 2" -> "eastus2")."""
    return location.replace(" ", "").lower()


@dataclass(frozen=True)
class VmFamily:
    """A VM family as AzureML quotas name it."""

    family: str  # the vmSizes "family" value, e.g. "standardDSv2Family"
    display: str  # the quota name stem, e.g. "Standard DSv2 Family"
    gpu: bool = False

    def quota_name(self, low_priority: bool = False) -> str:
        return f"{self.display} Cluster {'LowPriority' if low_priority else 'Dedicated'} vCPUs"

    def quota_key(self, low_priority: bool = False) -> str:
        return self.quota_name(low_priority).replace(" ", "_")


FAMILIES: dict[str, VmFamily] = {
    f.family: f
    for f in (
        VmFamily("standardDSv2Family", "Standard DSv2 Family"),
        VmFamily("standardDv2Family", "Standard Dv2 Family"),
        VmFamily("standardDSv3Family", "Standard DSv3 Family"),
        VmFamily("standardFSv2Family", "Standard FSv2 Family"),
        VmFamily("standardEDSv4Family", "Standard EDSv4 Family"),
        VmFamily("standardNVFamily", "Standard NV Family", gpu=True),
        VmFamily("standardNVSv3Family", "Standard NVSv3 Family", gpu=True),
        VmFamily("standardNCSv3Family", "Standard NCSv3 Family", gpu=True),
        VmFamily("standardNCASv3_T4Family", "Standard NCASv3_T4 Family", gpu=True),
    )
}

# name, family, vCPUs, GPUs, memory GB, temp disk MB, Linux price per hour (USD)
_SIZES: list[tuple[str, str, int, int, float, int, float]] = [
    ("Standard_DS1_v2", "standardDSv2Family", 1, 0, 3.5, 7168, 0.073),
    ("Standard_DS2_v2", "standardDSv2Family", 2, 0, 7.0, 14336, 0.146),
    ("Standard_DS3_v2", "standardDSv2Family", 4, 0, 14.0, 28672, 0.293),
    ("Standard_DS4_v2", "standardDSv2Family", 8, 0, 28.0, 57344, 0.585),
    ("Standard_DS5_v2", "standardDSv2Family", 16, 0, 56.0, 114688, 1.17),
    ("Standard_DS11_v2", "standardDSv2Family", 2, 0, 14.0, 28672, 0.185),
    ("Standard_DS12_v2", "standardDSv2Family", 4, 0, 28.0, 57344, 0.371),
    ("Standard_DS13_v2", "standardDSv2Family", 8, 0, 56.0, 114688, 0.741),
    ("Standard_DS14_v2", "standardDSv2Family", 16, 0, 112.0, 229376, 1.482),
    ("Standard_D1_v2", "standardDv2Family", 1, 0, 3.5, 51200, 0.073),
    ("Standard_D2_v2", "standardDv2Family", 2, 0, 7.0, 102400, 0.146),
    ("Standard_D3_v2", "standardDv2Family", 4, 0, 14.0, 204800, 0.293),
    ("Standard_D4_v2", "standardDv2Family", 8, 0, 28.0, 409600, 0.585),
    ("Standard_D11_v2", "standardDv2Family", 2, 0, 14.0, 102400, 0.185),
    ("Standard_D12_v2", "standardDv2Family", 4, 0, 28.0, 204800, 0.371),
    ("Standard_D13_v2", "standardDv2Family", 8, 0, 56.0, 409600, 0.741),
    ("Standard_D14_v2", "standardDv2Family", 16, 0, 112.0, 819200, 1.482),
    ("Standard_D2s_v3", "standardDSv3Family", 2, 0, 8.0, 16384, 0.096),
    ("Standard_D4s_v3", "standardDSv3Family", 4, 0, 16.0, 32768, 0.192),
    ("Standard_D8s_v3", "standardDSv3Family", 8, 0, 32.0, 65536, 0.384),
    ("Standard_D16s_v3", "standardDSv3Family", 16, 0, 64.0, 131072, 0.768),
    ("Standard_F2s_v2", "standardFSv2Family", 2, 0, 4.0, 16384, 0.085),
    ("Standard_F4s_v2", "standardFSv2Family", 4, 0, 8.0, 32768, 0.169),
    ("Standard_F8s_v2", "standardFSv2Family", 8, 0, 16.0, 65536, 0.338),
    ("Standard_E2ds_v4", "standardEDSv4Family", 2, 0, 16.0, 76800, 0.144),
    ("Standard_E4ds_v4", "standardEDSv4Family", 4, 0, 32.0, 153600, 0.288),
    ("Standard_E8ds_v4", "standardEDSv4Family", 8, 0, 64.0, 307200, 0.576),
    ("Standard_E16ds_v4", "standardEDSv4Family", 16, 0, 128.0, 614400, 1.152),
    ("Standard_NV6", "standardNVFamily", 6, 1, 56.0, 389120, 1.14),
    ("Standard_NV12", "standardNVFamily", 12, 2, 112.0, 696320, 2.28),
    ("Standard_NV24", "standardNVFamily", 24, 4, 224.0, 1474560, 4.56),
    ("Standard_NV12s_v3", "standardNVSv3Family", 12, 1, 112.0, 327680, 1.14),
    ("Standard_NV24s_v3", "standardNVSv3Family", 24, 2, 224.0, 655360, 2.28),
    ("Standard_NC6s_v3", "standardNCSv3Family", 6, 1, 112.0, 344064, 3.06),
    ("Standard_NC12s_v3", "standardNCSv3Family", 12, 2, 224.0, 688128, 6.12),
    ("Standard_NC24s_v3", "standardNCSv3Family", 24, 4, 448.0, 1376256, 12.24),
    ("Standard_NC4as_T4_v3", "standardNCASv3_T4Family", 4, 1, 28.0, 180224, 0.526),
    ("Standard_NC8as_T4_v3", "standardNCASv3_T4Family", 8, 1, 56.0, 360448, 0.752),
    ("Standard_NC16as_T4_v3", "standardNCASv3_T4Family", 16, 1, 110.0, 360448, 1.204),
]

_CPU_FAMILIES = ("standardDSv2Family", "standardDv2Family", "standardDSv3Family", "standardFSv2Family")


@dataclass(frozen=True)
class Region:
    """What one location offers: VM families with their dedicated vCPU limits, and regional totals.

    ``outside_use`` (dedicated vCPUs per family) and ``outside_low_priority`` are taken by workloads
    the portal does not see; they count in the subscription's usages and against its limits.
    """

    family_limits: dict[str, int]
    dedicated_total: int = 100
    low_priority_total: int = 100
    outside_use: dict[str, int] = field(default_factory=dict)
    outside_low_priority: int = 0


def _cpu(limit: int) -> dict[str, int]:
    return dict.fromkeys(_CPU_FAMILIES, limit)


REGIONS: dict[str, Region] = {
    "eastus2": Region(
        {
            **_cpu(24),
            "standardDSv2Family": 48,
            "standardEDSv4Family": 32,
            "standardNVFamily": 24,
            "standardNCSv3Family": 0,
            "standardNCASv3_T4Family": 8,
        },
        outside_use={"standardDSv2Family": 20, "standardFSv2Family": 8, "standardEDSv4Family": 8},
        outside_low_priority=12,
    ),
    "westeurope": Region(
        {
            **_cpu(24),
            "standardEDSv4Family": 16,
            "standardNVFamily": 12,
            "standardNCSv3Family": 0,
            "standardNCASv3_T4Family": 0,
        },
        dedicated_total=64,
        low_priority_total=50,
        outside_use={"standardDSv2Family": 16, "standardDv2Family": 4},
        outside_low_priority=20,
    ),
    "westus2": Region(
        {**_cpu(24), "standardNVSv3Family": 12, "standardNCSv3Family": 12, "standardNCASv3_T4Family": 8},
        outside_use={"standardDSv3Family": 8, "standardNCSv3Family": 6},
        outside_low_priority=4,
    ),
    "northeurope": Region(
        {
            **_cpu(24),
            "standardDSv2Family": 32,
            "standardEDSv4Family": 24,
            "standardNCSv3Family": 12,
            "standardNCASv3_T4Family": 8,
        },
        dedicated_total=80,
        low_priority_total=60,
        outside_use={"standardDSv2Family": 12, "standardEDSv4Family": 4},
        outside_low_priority=24,
    ),
}
DEFAULT_REGION = Region({**_cpu(24), "standardNCASv3_T4Family": 0})


def region(location: str) -> Region | None:
    """The offer of a known location; None for a location Azure does not have."""
    name = normalize_location(location)
    if name in REGIONS:
        return REGIONS[name]
    return DEFAULT_REGION if name in LOCATIONS else None


def vm_sizes(location: str) -> list[dict[str, Any]]:
    """The AmlCompute VM sizes of a location, shaped like VirtualMachineSizes_List."""
    offer = region(location)
    if offer is None:
        return []
    return [_vm_size(row) for row in _SIZES if row[1] in offer.family_limits]


def vm_size(location: str, name: str) -> dict[str, Any] | None:
    """One VM size by name (case-insensitive) if the location offers it."""
    return next((s for s in vm_sizes(location) if str(s["name"]).lower() == name.lower()), None)


def _vm_size(row: tuple[str, str, int, int, float, int, float]) -> dict[str, Any]:
    name, family, vcpus, gpus, memory, disk, price = row
    return {
        "name": name,
        "family": family,
        "vCPUs": vcpus,
        "gpus": gpus,
        "osVhdSizeMB": 1047552,
        "maxResourceVolumeMB": disk,
        "memoryGB": memory,
        "lowPriorityCapable": True,
        "premiumIO": "s_" in name.lower() or name.lower().startswith("standard_ds"),
        "estimatedVMPrices": {
            "billingCurrency": "USD",
            "unitOfMeasure": "OneHour",
            "values": [
                {"retailPrice": price, "osType": "Linux", "vmTier": "Standard"},
                {"retailPrice": round(price * 0.2, 3), "osType": "Linux", "vmTier": "LowPriority"},
                {"retailPrice": round(price * 1.8, 3), "osType": "Windows", "vmTier": "Standard"},
                {"retailPrice": round(price * 0.36, 3), "osType": "Windows", "vmTier": "LowPriority"},
            ],
        },
        "supportedComputeTypes": ["AmlCompute", "ComputeInstance"],
    }
