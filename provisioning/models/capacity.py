"""Capacity: the size catalog and core usages read from Azure, team budgets, workspace quotas, prices, cluster flags."""

from __future__ import annotations

from django.db import models
from django.db.models.functions import Lower

from provisioning.models.policy import Priority


class VmSize(models.Model):
    """A VM size Azure offers for AzureML compute in a region (the size catalog, refreshed from Azure)."""

    region = models.CharField(max_length=40)
    name = models.CharField(max_length=60, help_text="Upper case, as policy names sizes: STANDARD_DS3_V2")
    display_name = models.CharField(max_length=60, help_text="As Azure spells it: Standard_DS3_v2")
    family = models.CharField(max_length=60, help_text="The quota family, e.g. standardDSv2Family")
    vcpus = models.PositiveIntegerField()
    gpus = models.PositiveIntegerField(default=0)
    memory_gb = models.FloatField(default=0)
    low_priority_capable = models.BooleanField(default=True)
    refreshed_at = models.DateTimeField()

    class Meta:
        ordering = ["region", "family", "vcpus", "name"]
        constraints = [models.UniqueConstraint(fields=["region", "name"], name="vmsize_unique_per_region")]
        verbose_name = "VM size (catalog)"

    def __str__(self) -> str:
        return f"{self.display_name} in {self.region}"


class CoreUsage(models.Model):
    """Azure's current usage and limit of cluster vCPUs in a subscription and region (refreshed)."""

    class Scope(models.TextChoices):
        FAMILY = "family", "VM family (dedicated)"
        DEDICATED_TOTAL = "dedicated_total", "All dedicated cores"
        LOW_PRIORITY_TOTAL = "low_priority_total", "All low-priority cores"

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    scope = models.CharField(max_length=20, choices=Scope.choices)
    family = models.CharField(max_length=60, blank=True, help_text="Blank for the regional totals")
    name = models.CharField(max_length=120, help_text="Azure's name for the quota")
    current = models.IntegerField()
    limit = models.IntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        ordering = ["subscription_id", "region", "scope", "family"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription_id", "region", "scope", "family"], name="coreusage_unique_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.region}: {self.current}/{self.limit}"


class TeamBudget(models.Model):
    """The cluster cores an admin gives a team in a region and VM family, dedicated and low-priority apart.

    A team is a (department, team) pair as the naming convention has them. The portal enforces the
    budget over all the team's clusters in the region; each of the team's workspaces there also gets
    the dedicated figure as its AzureML workspace-level quota.

    The holder is a team (``project`` blank), one of its projects (``project`` set: the project's
    workspaces hold against it, not against the team's), or a pool (``team`` is the pool's name).
    """

    department = models.CharField(max_length=4)
    team = models.CharField(max_length=24)
    project = models.CharField(max_length=8, blank=True, default="")
    region = models.CharField(max_length=40)
    family = models.CharField(max_length=60, help_text="The quota family, e.g. standardDSv2Family")
    dedicated_cores = models.PositiveIntegerField(default=0)
    low_priority_cores = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["department", "team", "project", "region", "family"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "team", "project", "region", "family"], name="teambudget_unique_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.holder} {self.family} in {self.region}"

    @property
    def holder(self) -> str:
        """``department/team``, or ``department/team.project`` for a project's budget."""
        project = f".{self.project}" if self.project else ""
        return f"{self.department}/{self.team}{project}"


class WorkspaceQuota(models.Model):
    """A workspace-level quota the portal asked Azure for (``updateQuotas``), and what Azure holds."""

    workspace = models.ForeignKey("Workspace", on_delete=models.CASCADE, related_name="quotas")
    family = models.CharField(max_length=60)
    requested = models.PositiveIntegerField(help_text="Dedicated vCPUs asked for")
    applied = models.IntegerField(null=True, blank=True, help_text="The limit Azure reports, read back")
    status = models.CharField(max_length=60, blank=True, help_text="Azure's status for the update")
    message = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workspace", "family"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "family"], name="workspacequota_unique_family")
        ]

    def __str__(self) -> str:
        return f"{self.workspace} {self.family}: {self.applied}/{self.requested}"


class VmPrice(models.Model):
    """What one node of a size costs per hour, by priority (admin-maintained; seeded with estimates)."""

    vm_size = models.CharField(max_length=60, help_text="Upper case, e.g. STANDARD_DS3_V2")
    priority = models.CharField(max_length=20, choices=Priority.choices)
    hourly_usd = models.DecimalField(max_digits=10, decimal_places=4)
    is_estimate = models.BooleanField(default=True, help_text="Not a negotiated or invoiced price")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["vm_size", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["vm_size", "priority"], name="vmprice_unique_size_priority")
        ]
        verbose_name = "VM price"

    def __str__(self) -> str:
        return f"{self.vm_size} {self.priority}: ${self.hourly_usd}/h"


class ClusterFlag(models.Model):
    """A cluster in Azure that breaks policy, found by the periodic guard (made by the portal or not)."""

    class Kind(models.TextChoices):
        MIN_NODES = "min_nodes", "Min nodes above 0"
        IDLE_TIME = "idle_time", "Idle time longer than policy"
        SIZE = "size", "VM size not allowed"
        DEDICATED = "dedicated", "Dedicated nodes not allowed"

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    resource_group = models.CharField(max_length=90)
    workspace_name = models.CharField(max_length=33)
    cluster_name = models.CharField(max_length=64)
    azure_id = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.TextField()
    managed_by_portal = models.BooleanField(default=False)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen", "workspace_name", "cluster_name"]
        constraints = [
            models.UniqueConstraint(
                Lower("azure_id"),
                "kind",
                condition=models.Q(resolved_at__isnull=True),
                name="clusterflag_unique_open_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workspace_name}/{self.cluster_name}: {self.get_kind_display()}"
