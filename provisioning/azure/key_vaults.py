"""Soft-deleted key vaults: read them (Vaults_GetDeleted, Vaults_ListDeleted) and purge them (Vaults_PurgeDeleted).

A deleted vault keeps its name reserved until its scheduled purge date; purging frees it at once, which
Azure refuses (409 ``VaultPurgeProtected`` or similar) while purge protection is on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from provisioning.azure.clients import AzureClients
from provisioning.azure.common import Outcome, azure_errors, get_or_none


@dataclass(frozen=True)
class DeletedVault:
    """A soft-deleted key vault as Azure shows it."""

    name: str
    azure_id: str
    location: str
    vault_id: str
    deleted_at: datetime | None
    scheduled_purge_at: datetime | None
    purge_protection: bool


def _deleted(found: Any) -> DeletedVault:
    props = found.properties
    return DeletedVault(
        name=str(found.name),
        azure_id=str(found.id),
        location=str(props.location or ""),
        vault_id=str(props.vault_id or ""),
        deleted_at=props.deletion_date,
        scheduled_purge_at=props.scheduled_purge_date,
        purge_protection=bool(props.purge_protection_enabled),
    )


def deleted_vault(
    clients: AzureClients, *, subscription: str, name: str, location: str = ""
) -> DeletedVault | None:
    """The deleted vault holding ``name`` in the subscription (None: no deleted vault holds it).

    With its location known, one Vaults_GetDeleted; otherwise one Vaults_ListDeleted of the subscription.
    """
    vaults = clients.keyvault(subscription).vaults
    if location:
        found = get_or_none(vaults.get_deleted, name, location)
        return _deleted(found) if found is not None else None
    with azure_errors():
        for found in vaults.list_deleted():
            if str(found.name).lower() == name.lower():
                return _deleted(found)
    return None


def purge_deleted_vault(clients: AzureClients, *, subscription: str, name: str, location: str) -> Outcome:
    """Purge a deleted vault (its name is free again); "absent" when Azure no longer holds it.

    Raises ``AzureStepError`` with Azure's code and reason when Azure refuses (purge protection).
    """
    vaults = clients.keyvault(subscription).vaults
    found = get_or_none(vaults.get_deleted, name, location)
    if found is None:
        return Outcome("absent")
    with azure_errors():
        vaults.begin_purge_deleted(name, location).result()
    return Outcome("purged", str(found.id))
