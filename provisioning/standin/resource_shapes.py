"""How Azure names and shapes the workspace's dependent resources, as their services return them.

Naming rules and the errors for invalid or taken names (texts as the services word them), and the
resource bodies of storage accounts, key vaults, container registries and Application Insights.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from provisioning.standin.arm import Context, system_data
from provisioning.standin.catalog import normalize_location
from provisioning.standin.wire import arm_error, utc_now

STORAGE = "Microsoft.Storage/storageAccounts"
VAULT = "Microsoft.KeyVault/vaults"
REGISTRY = "Microsoft.ContainerRegistry/registries"
COMPONENT = "Microsoft.Insights/components"

STORAGE_NAME = re.compile(r"[a-z0-9]{3,24}")
VAULT_NAME = re.compile(r"[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]")
REGISTRY_NAME = re.compile(r"[a-zA-Z0-9]{5,50}")

NAME_RULES = {
    STORAGE: (
        STORAGE_NAME,
        "AccountNameInvalid",
        "{name} is not a valid storage account name. Storage account name must be between 3 and 24 "
        "characters in length and use numbers and lower-case letters only.",
    ),
    VAULT: (
        VAULT_NAME,
        "VaultNameNotValid",
        "The vault name '{name}' is invalid. A vault's name must be between 3-24 alphanumeric characters. "
        "The name must begin with a letter, end with a letter or digit, and not contain consecutive hyphens. "
        "Follow this link for more information: https://go.microsoft.com/fwlink/?linkid=2147742",
    ),
    REGISTRY: (
        REGISTRY_NAME,
        "InvalidRegistryName",
        "Registry name '{name}' is invalid: a registry name must be 5 to 50 alphanumeric characters.",
    ),
}
TAKEN_MESSAGES = {
    STORAGE: "The storage account named {name} is already taken.",
    VAULT: "The vault name '{name}' is already in use.",
    REGISTRY: "The registry {name} is already in use.",
}
CONFLICTS = {
    STORAGE: ("StorageAccountAlreadyTaken", "The storage account named {name} is already taken."),
    VAULT: (
        "VaultAlreadyExists",
        "The vault name '{name}' is already in use. Vault names are globally unique so it is possible "
        "that the name is already taken. If you are sure that the vault name was not taken then it is "
        "possible that a vault with the same name was recently deleted but not purged after being placed "
        "in a recoverable state. If the vault is in a recoverable state then the vault will need to be "
        "purged before reusing the name. For more information on soft delete and purging a vault follow "
        "this link https://go.microsoft.com/fwlink/?linkid=2147740.",
    ),
    REGISTRY: (
        "AlreadyInUse",
        "The registry DNS name {lower}.azurecr.io is already in use. You can check if the name is already "
        "claimed using following API: https://docs.microsoft.com/en-us/rest/api/containerregistry/"
        "registries/checknameavailability",
    ),
}
SOFT_DELETED_VAULT = (
    "ConflictError",
    "A vault with the same name already exists in deleted state. You need to either recover or "
    "purge existing key vault. Follow this link https://go.microsoft.com/fwlink/?linkid=2149745 "
    "for more information on soft delete.",
)


def refuse_irreversible(current: dict[str, Any], wanted: dict[str, Any]) -> None:
    """Purge protection and soft delete cannot be turned off once on (Key Vault's rule)."""
    for prop in ("enablePurgeProtection", "enableSoftDelete"):
        if current.get(prop) is True and wanted.get(prop) is False:
            raise arm_error(
                400,
                "BadRequest",
                f'The property "{prop}" cannot be set to false. Enabling '
                f"the {prop} for a vault is an irreversible action.",
            )


def storage_account_body(
    rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    location = normalize_location(str(body["location"]))
    props: dict[str, Any] = dict((existing or {}).get("properties") or {})
    props.update(body.get("properties") or {})
    kind = str(body["kind"])
    defaults = {
        "supportsHttpsTrafficOnly": True,
        "minimumTlsVersion": "TLS1_2",
        "allowBlobPublicAccess": False,
        "isHnsEnabled": False,
        "allowSharedKeyAccess": True,
    }
    for key, value in defaults.items():
        props.setdefault(key, value)
    if kind in ("StorageV2", "BlobStorage"):
        props.setdefault("accessTier", "Hot")
    lower = name.lower()
    props.setdefault("creationTime", utc_now())
    props.update(
        {
            "provisioningState": "Succeeded",
            "primaryLocation": location,
            "statusOfPrimary": "available",
            "primaryEndpoints": {
                svc: f"https://{lower}.{svc}.core.windows.net/"
                for svc in ("blob", "queue", "table", "file", "web", "dfs")
            },
            "encryption": props.get("encryption")
            or {
                "keySource": "Microsoft.Storage",
                "requireInfrastructureEncryption": False,
                "services": {
                    "blob": {"enabled": True, "keyType": "Account"},
                    "file": {"enabled": True, "keyType": "Account"},
                },
            },
            "networkAcls": props.get("networkAcls")
            or {
                "bypass": "AzureServices",
                "defaultAction": "Allow",
                "ipRules": [],
                "virtualNetworkRules": [],
            },
        }
    )
    sku = str(body["sku"]["name"])
    return {
        "id": rid,
        "name": name,
        "type": STORAGE,
        "location": location,
        "kind": kind,
        "sku": {"name": sku, "tier": "Premium" if sku.startswith("Premium") else "Standard"},
        "tags": dict(body.get("tags") or {}),
        "properties": props,
    }


def vault_body(
    rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None, ctx: Context
) -> dict[str, Any]:
    props: dict[str, Any] = dict((existing or {}).get("properties") or {})
    props.update(body.get("properties") or {})
    props.setdefault("accessPolicies", [])
    props.setdefault("enableSoftDelete", True)
    props.setdefault("softDeleteRetentionInDays", 90)
    props.setdefault("enableRbacAuthorization", False)
    for flag in ("enabledForDeployment", "enabledForDiskEncryption", "enabledForTemplateDeployment"):
        props.setdefault(flag, False)
    props.setdefault("publicNetworkAccess", "Enabled")
    props.update({"vaultUri": f"https://{name.lower()}.vault.azure.net/", "provisioningState": "Succeeded"})
    principal = next(iter(ctx.state.apps.values())).principal_id if ctx.state.apps else ""
    return {
        "id": rid,
        "name": name,
        "type": VAULT,
        "location": normalize_location(str(body["location"])),
        "tags": dict(body.get("tags") or {}),
        "systemData": system_data(principal),
        "properties": props,
    }


def registry_body(
    rid: str, name: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    props: dict[str, Any] = dict((existing or {}).get("properties") or {})
    props.update(body.get("properties") or {})
    props.setdefault("adminUserEnabled", False)
    props.setdefault("creationDate", utc_now())
    props.update(
        {
            "loginServer": f"{name.lower()}.azurecr.io",
            "provisioningState": "Succeeded",
            "publicNetworkAccess": props.get("publicNetworkAccess", "Enabled"),
            "networkRuleBypassOptions": "AzureServices",
            "zoneRedundancy": "Disabled",
            "anonymousPullEnabled": False,
            "dataEndpointEnabled": False,
            "dataEndpointHostNames": [],
            "privateEndpointConnections": [],
            "encryption": {"status": "disabled"},
            "policies": {
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": {"days": 7, "status": "disabled"},
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
            },
        }
    )
    sku = str(body["sku"]["name"])
    return {
        "id": rid,
        "name": name,
        "type": REGISTRY,
        "location": normalize_location(str(body["location"])),
        "tags": dict(body.get("tags") or {}),
        "sku": {"name": sku, "tier": sku},
        "properties": props,
    }


def component_body(
    rid: str, name: str, sub: str, body: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, Any]:
    location = normalize_location(str(body["location"]))
    props: dict[str, Any] = dict((existing or {}).get("properties") or {})
    props.update(body.get("properties") or {})
    if existing is None:
        key = str(uuid.uuid4())
        props.update(
            {
                "AppId": str(uuid.uuid4()),
                "InstrumentationKey": key,
                "CreationDate": utc_now(),
                "ConnectionString": f"InstrumentationKey={key};IngestionEndpoint=https://{location}-0.in."
                f"applicationinsights.azure.com/;LiveEndpoint=https://{location}.livediagnostics."
                "monitor.azure.com/",
            }
        )
    props.update({"ApplicationId": name, "TenantId": sub, "provisioningState": "Succeeded"})
    props.setdefault("Flow_Type", "Bluefield")
    props.setdefault("Request_Source", "rest")
    props.setdefault("RetentionInDays", 90)
    props.setdefault(
        "IngestionMode", "LogAnalytics" if props.get("WorkspaceResourceId") else "ApplicationInsights"
    )
    props.setdefault("publicNetworkAccessForIngestion", "Enabled")
    props.setdefault("publicNetworkAccessForQuery", "Enabled")
    return {
        "id": rid,
        "name": name,
        "type": COMPONENT,
        "location": location,
        "kind": str(body["kind"]),
        "tags": dict(body.get("tags") or {}),
        "etag": f'"{uuid.uuid4()}"',
        "properties": props,
    }
