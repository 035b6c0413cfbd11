"""Removing resources as Azure does, shared by the ARM delete operations and the "outside" changes.

A removed resource takes everything under it along (``State.remove_tree``): child resources, role
assignments at or below its scope, deployment operations, workspace quotas, system-assigned identities.
Key vaults are soft-deleted unless ``enableSoftDelete`` is false (Key Vault's rule, also when their
resource group is deleted): the vault becomes a deleted vault (``deletionDate`` now,
``scheduledPurgeDate`` after ``softDeleteRetentionInDays``, default 90) whose name stays taken until it
is purged or recovered (``createMode: recover``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from provisioning.standin.state import State

VAULT = "Microsoft.KeyVault/vaults"
DELETED_VAULT = "Microsoft.KeyVault/deletedVaults"


@dataclass
class Removal:
    """What a removal took away."""

    resources: list[dict[str, Any]] = field(default_factory=list)
    role_assignments: list[dict[str, Any]] = field(default_factory=list)
    soft_deleted_vaults: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """One line per removed thing, for people (the outside route and its command)."""
        lines = [f"deleted {r['type']} {r['id']}" for r in self.resources]
        lines += [
            f"soft-deleted key vault {name} (name held until purged)" for name in self.soft_deleted_vaults
        ]
        lines += [
            f"deleted role assignment {a['id']} (principal {a['properties']['principalId']})"
            for a in self.role_assignments
        ]
        return lines


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def deleted_vault_id(subscription: str, location: str, name: str) -> str:
    return f"/subscriptions/{subscription}/providers/Microsoft.KeyVault/locations/{location}/deletedVaults/{name}"


def soft_delete_vault(state: State, vault: dict[str, Any]) -> bool:
    """Keep a removed vault as a deleted vault (as Vaults_GetDeleted shows it); False if soft delete is off."""
    props = vault.get("properties") or {}
    if props.get("enableSoftDelete") is False:
        return False
    now = datetime.now(UTC)
    days = int(props.get("softDeleteRetentionInDays") or 90)
    subscription = vault["id"].split("/")[2]
    state.deleted_vaults[vault["name"].lower()] = {
        "deleted": {
            "id": deleted_vault_id(subscription, vault["location"], vault["name"]),
            "name": vault["name"],
            "type": DELETED_VAULT,
            "properties": {
                "vaultId": vault["id"],
                "location": vault["location"],
                "deletionDate": _iso(now),
                "scheduledPurgeDate": _iso(now + timedelta(days=days)),
                "tags": dict(vault.get("tags") or {}),
                "purgeProtectionEnabled": bool(props.get("enablePurgeProtection")),
            },
        },
        "vault": vault,
    }
    return True


def remove_resource(state: State, resource_id: str) -> Removal:
    """Remove a resource (or resource group) and everything under it; vaults are soft-deleted."""
    resources, assignments = state.remove_tree(resource_id)
    removal = Removal(resources, assignments)
    for resource in resources:
        if resource["type"].lower() == VAULT.lower() and soft_delete_vault(state, resource):
            removal.soft_deleted_vaults.append(resource["name"])
    return removal
