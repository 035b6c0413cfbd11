"""Spend: what Cost Management says each workspace's resources cost per day, and when it was last read."""

from __future__ import annotations

from django.db import models

from provisioning.models.inventory import Workspace


class CostKind(models.TextChoices):
    """What a cost row is spent on (from the resource's provider type, ``arm.cost_kind``)."""

    COMPUTE = "compute", "Compute"
    STORAGE = "storage", "Storage"
    REGISTRY = "registry", "Container registry"
    KEY_VAULT = "key_vault", "Key vault"
    MONITORING = "monitoring", "Monitoring"
    OTHER = "other", "Other"


class WorkspaceCost(models.Model):
    """One day's cost of one resource of a workspace, as Cost Management reported it.

    Unique per (workspace, day, resource): the daily read replaces the month's rows with what Azure says
    now (late charges included), so reading twice changes nothing.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="costs")
    day = models.DateField()
    resource_id = models.CharField(max_length=1024, help_text="Lowercased, as Cost Management returns it")
    kind = models.CharField(max_length=20, choices=CostKind.choices)
    amount = models.DecimalField(max_digits=16, decimal_places=6)
    currency = models.CharField(max_length=3)

    class Meta:
        ordering = ["workspace", "day", "resource_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "day", "resource_id"], name="workspacecost_unique_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.day} {self.resource_id}: {self.amount} {self.currency}"


class WorkspaceSpend(models.Model):
    """A workspace's month to date as last read from Cost Management, and its spend alert for the month.

    ``alerted_month`` is the first day of the month whose threshold was passed: the alert (audit event and
    notification) is raised once per workspace and month.
    """

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="spend")
    month = models.DateField(help_text="The first day of the month read")
    month_to_date = models.DecimalField(max_digits=16, decimal_places=6, default=0)
    currency = models.CharField(max_length=3, blank=True)
    read_at = models.DateTimeField(null=True, blank=True, help_text="The last successful read")
    error = models.CharField(
        max_length=500, blank=True, help_text="Why the last read failed (blank: it did not)"
    )
    failed_at = models.DateTimeField(null=True, blank=True)
    over_threshold = models.BooleanField(default=False)
    alerted_month = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["workspace"]
        verbose_name_plural = "workspace spend"

    def __str__(self) -> str:
        return f"{self.workspace_id} {self.month:%Y-%m}: {self.month_to_date} {self.currency}"
