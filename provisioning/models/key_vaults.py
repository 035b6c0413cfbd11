"""Key vaults Azure keeps soft-deleted: their names stay taken until purged or their retention ends."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from provisioning.models.inventory import Workspace


class DeletedKeyVault(models.Model):
    """A soft-deleted key vault as a worker last read it from Azure (Vaults_GetDeleted / Vaults_ListDeleted).

    Azure keeps a deleted vault's name reserved until ``scheduled_purge_at`` (its retention period), or
    until an admin purges it, which Azure refuses while purge protection is on.
    """

    name = models.CharField(max_length=24, db_index=True)
    subscription_id = models.CharField(max_length=36)
    location = models.CharField(max_length=40)
    azure_id = models.CharField(
        max_length=400, help_text="The deleted vault's id (…/locations/…/deletedVaults/…)"
    )
    vault_id = models.CharField(max_length=400, blank=True, help_text="The id the vault had before deletion")
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, null=True, blank=True, related_name="deleted_key_vaults"
    )
    deleted_at = models.DateTimeField(null=True, blank=True)
    scheduled_purge_at = models.DateTimeField(null=True, blank=True)
    purge_protection = models.BooleanField(default=False)
    read_at = models.DateTimeField(help_text="When a worker last read it from Azure")
    purged_at = models.DateTimeField(null=True, blank=True)
    purged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    purge_error = models.TextField(blank=True, help_text="Azure's reason for refusing the last purge")

    class Meta:
        ordering = ["name", "-read_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["azure_id"],
                condition=models.Q(purged_at__isnull=True),
                name="deleted_vault_unique_live",
            )
        ]

    def __str__(self) -> str:
        return f"deleted key vault {self.name}"

    @property
    def holds_name(self) -> bool:
        """Whether Azure still reserves the name (not purged, retention not over)."""
        return self.purged_at is None and (
            self.scheduled_purge_at is None or self.scheduled_purge_at > timezone.now()
        )
