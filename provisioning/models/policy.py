"""Policy admins set: the subscriptions, regions and VM sizes team leads may use, and the limits per environment."""

from __future__ import annotations

from typing import Any

from django.db import models


class AllowedSubscription(models.Model):
    """An Azure subscription team leads may request workspaces in (admin-maintained)."""

    subscription_id = models.CharField(max_length=36, unique=True)
    display_name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.subscription_id})"

    @classmethod
    def active_ids(cls) -> list[str]:
        """The ids of the subscriptions team leads may use now, in a stable order."""
        return list(
            cls.objects.filter(is_active=True)
            .order_by("subscription_id")
            .values_list("subscription_id", flat=True)
        )


class AllowedRegion(models.Model):
    """An Azure region team leads may use, with the convention's 2-character abbreviation."""

    name = models.CharField(max_length=40, unique=True, help_text="Azure region name, e.g. eastus2")
    display_name = models.CharField(max_length=100)
    abbreviation = models.CharField(max_length=2, help_text="Used in resource names, e.g. e2")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.name})"


class AllowedVmSize(models.Model):
    """A VM size team leads may choose for compute clusters."""

    name = models.CharField(max_length=60, unique=True, help_text="e.g. STANDARD_DS3_V2")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "allowed VM size"

    def __str__(self) -> str:
        return self.name


class Policy(models.Model):
    """Portal-wide limits (a single row, edited by admins)."""

    max_nodes_per_cluster = models.PositiveIntegerField(default=10)
    max_clusters_per_request = models.PositiveIntegerField(default=10)

    class Meta:
        verbose_name_plural = "policy"

    def __str__(self) -> str:
        return "Portal policy"

    @classmethod
    def current(cls) -> Policy:
        """The one policy row, created with defaults on first use."""
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


class Environment(models.TextChoices):
    RESEARCH = "res", "Research (res)"
    DEVELOPMENT = "dev", "Development (dev)"
    PRODUCTION = "pro", "Production (pro)"


class Persona(models.TextChoices):
    TEAM_LEAD = "team_lead", "Team Lead"
    DATA_SCIENTIST = "data_scientist", "Data Scientist"


class Priority(models.TextChoices):
    LOW_PRIORITY = "low_priority", "Low priority"
    DEDICATED = "dedicated", "Dedicated"


class OverBudget(models.TextChoices):
    REFUSE = "refuse", "Refuse the cluster"
    SECOND_APPROVAL = "second_approval", "Allow with a second admin's approval"


class EnvironmentPolicy(models.Model):
    """Cluster rules for one environment (res, dev, pro), edited by admins."""

    environment = models.CharField(max_length=3, unique=True, choices=Environment.choices)
    allowed_sizes: models.ManyToManyField[AllowedVmSize, Any] = models.ManyToManyField(
        AllowedVmSize,
        blank=True,
        help_text="Sizes this environment may use; none chosen means every size the portal allows",
    )
    max_nodes = models.PositiveIntegerField(default=10, help_text="Most nodes one cluster may scale to")
    dedicated_allowed = models.BooleanField(
        default=True, help_text="Whether clusters may use dedicated (not low-priority) nodes"
    )
    max_idle_seconds = models.PositiveIntegerField(
        default=1800, help_text="Longest time an idle node may be kept before scale-down"
    )
    over_budget = models.CharField(
        max_length=20,
        choices=OverBudget.choices,
        default=OverBudget.REFUSE,
        help_text="What happens to a cluster that would pass the team's budget or the subscription's quota",
    )
    guests_allowed = models.BooleanField(
        default=False,
        help_text="Whether guest accounts (B2B users from other tenants) may be members of its workspaces",
    )

    class Meta:
        ordering = ["environment"]
        verbose_name_plural = "environment policies"

    def __str__(self) -> str:
        return f"Policy for {self.get_environment_display()}"

    @classmethod
    def for_environment(cls, environment: str) -> EnvironmentPolicy:
        """The environment's policy, created with defaults on first use."""
        policy, _ = cls.objects.get_or_create(environment=environment)
        return policy
