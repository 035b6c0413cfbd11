"""The worker's side of soft-deleted key vaults: read one from Azure, and purge one."""

from __future__ import annotations

from provisioning.azure import key_vaults
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError
from provisioning.models import DeletedKeyVault, Workspace
from provisioning.workflow.key_vaults import deleted_vault_record, key_vault_purge_recorded


def record(
    found: key_vaults.DeletedVault, *, subscription_id: str, workspace_id: int | None = None
) -> DeletedKeyVault:
    """Store what Azure showed of a deleted vault."""
    return deleted_vault_record(
        name=found.name,
        subscription_id=subscription_id,
        location=found.location,
        azure_id=found.azure_id,
        vault_id=found.vault_id,
        deleted_at=found.deleted_at,
        scheduled_purge_at=found.scheduled_purge_at,
        purge_protection=found.purge_protection,
        workspace_id=workspace_id,
    )


def deleted_vault_refresh(
    *, workspace_id: int, clients: AzureClients | None = None
) -> DeletedKeyVault | None:
    """Read the workspace's key vault as a deleted vault (Vaults_GetDeleted) and record it; None if Azure
    holds no such deleted vault (soft delete off, or purged already)."""
    ws = Workspace.objects.get(pk=workspace_id)
    with AzureClients.given_or_own(clients) as azure:
        found = key_vaults.deleted_vault(
            azure, subscription=ws.subscription_id, name=ws.key_vault, location=ws.region
        )
    if found is None:
        return None
    return record(found, subscription_id=ws.subscription_id, workspace_id=ws.pk)


def deleted_vault_purge(
    *, vault_id: int, actor_id: int | None, clients: AzureClients | None = None
) -> DeletedKeyVault:
    """Ask Azure to purge a deleted vault and record the answer (purged, or refused with Azure's reason)."""
    vault = DeletedKeyVault.objects.get(pk=vault_id)
    if vault.purged_at is not None:
        return vault
    try:
        with AzureClients.given_or_own(clients) as azure:
            key_vaults.purge_deleted_vault(
                azure, subscription=vault.subscription_id, name=vault.name, location=vault.location
            )
    except AzureStepError as exc:
        return key_vault_purge_recorded(
            vault_id=vault.pk, actor_id=actor_id, ok=False, message=f"{exc.code}: {exc.message}"
        )
    return key_vault_purge_recorded(vault_id=vault.pk, actor_id=actor_id, ok=True)
