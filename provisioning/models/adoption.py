"""Discovery: what the last read of Azure found that the portal does not hold (for adoption)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models


class DiscoveryScan(models.Model):
    """One read of the allowed subscriptions for AzureML workspaces the portal does not hold.

    A worker fills ``result`` (the JSON of ``manage.py discover_workspaces --json``) and ``finished_at``;
    the discover page shows the latest finished scan, and adoption takes a workspace's details from it.
    """

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-pk"]

    def __str__(self) -> str:
        return f"discovery #{self.pk}"

    @property
    def workspaces(self) -> list[dict[str, Any]]:
        return list((self.result or {}).get("workspaces", []))

    def workspace(self, azure_id: str) -> dict[str, Any] | None:
        """The discovered workspace with this ARM id (any case), or None."""
        key = azure_id.strip().lower().rstrip("/")
        return next((w for w in self.workspaces if w["azure_id"].lower() == key), None)
