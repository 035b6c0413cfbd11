"""Policy admins set: the subscriptions, regions and VM sizes team leads may use, and the limits per environment."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

MAX_REMINDERS = 5
MAX_REMINDER_DAYS = 365


def reminder_days_parsed(text: str) -> list[int]:
    """``"14,3"`` as ``[14, 3]`` (distinct, largest first); ValueError past the bounds or not numbers."""
    parts = [p.strip() for p in (text or "").split(",") if p.strip()]
    days = sorted({int(p) for p in parts if p.isdigit()}, reverse=True)
    if len(days) != len(set(parts)) or len(days) > MAX_REMINDERS:
        raise ValueError(
            f"reminder days are up to {MAX_REMINDERS} whole numbers separated by commas, e.g. 14,3"
        )
    if any(d < 1 or d > MAX_REMINDER_DAYS for d in days):
        raise ValueError(f"reminder days are between 1 and {MAX_REMINDER_DAYS}")
    return days


def validate_reminder_days(value: str) -> None:
    """The admin's form refuses reminder days ``reminder_days_parsed`` would refuse."""
    try:
        reminder_days_parsed(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


class AllowedSubscription(models.Model):
    """An Azure subscription team leads may request workspaces in (admin-maintained)."""

    subscription_id = models.CharField(max_length=36, unique=True)
    display_name = models.CharField(max_length=100)
    # The administration roles (docs/roles.md): the Entra security groups that get them, by display name.
    capacity_admin_group = models.CharField(
        max_length=256,
        blank=True,
        help_text="Security group given 'AzureML Capacity Admin' on the subscription (reads usage, requests quota)",
    )
    workspace_admin_group = models.CharField(
        max_length=256,
        blank=True,
        help_text="Security group given 'AzureML Workspace Admin' on each workspace's resource group "
        "(manages the workspace and its clusters, cannot request quota)",
    )
    workspace_admin_group_id = models.CharField(
        max_length=36,
        blank=True,
        editable=False,
        help_text="Its Entra object id, as the admin-roles job found it",
    )
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


class UnreviewedAccess(models.TextChoices):
    """What an access review does with members nobody reviewed by its deadline."""

    REMOVE = "remove", "Remove their access"
    ESCALATE = "escalate", "Escalate to an admin"


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
    # Time-boxed membership: every membership ends; a renewal past the default needs an admin's approval.
    scientist_default_days = models.PositiveIntegerField(
        default=90, help_text="Days a data scientist's membership lasts unless the request asks fewer"
    )
    scientist_max_days = models.PositiveIntegerField(
        default=180, help_text="Longest a data scientist's membership may be renewed to, from the renewal day"
    )
    lead_default_days = models.PositiveIntegerField(
        default=365, help_text="Days a team lead's membership lasts unless the request asks fewer"
    )
    lead_max_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Longest a team lead's membership may be renewed to; empty means no limit (an admin approves "
        "anything past the default)",
    )
    reminder_days = models.CharField(
        max_length=40,
        default="14,3",
        validators=[validate_reminder_days],
        help_text="Days before a membership ends when its member and the team leads are reminded, e.g. 14,3",
    )

    scientist_role = models.CharField(
        max_length=40,
        choices=[
            ("Data Scientist", "The portal's Data Scientist (custom role)"),
            ("AzureML Data Scientist", "Azure's built-in AzureML Data Scientist"),
        ],
        default="Data Scientist",
        help_text="The data scientists' role on new workspaces (docs/roles.md compares the two); a workspace keeps "
        "the one it was approved with",
    )
    # Access reviews: a campaign per workspace every interval; the team lead decides keep or remove.
    review_interval_days = models.PositiveIntegerField(
        default=90,
        validators=[MinValueValidator(7), MaxValueValidator(3650)],
        help_text="Days between access reviews of a workspace (90: quarterly)",
    )
    review_deadline_days = models.PositiveIntegerField(
        default=14,
        validators=[MinValueValidator(1), MaxValueValidator(90)],
        help_text="Days the team lead has to review each member",
    )
    unreviewed_access = models.CharField(
        max_length=10,
        choices=UnreviewedAccess.choices,
        default=UnreviewedAccess.ESCALATE,
        help_text="What happens to members not reviewed by the deadline",
    )

    # Spend: a workspace is flagged (and its admins and team leads told, once a month) when its month to date
    # passes this share of its team's monthly budget, or of its clusters' monthly estimate without a budget.
    spend_alert_percent = models.PositiveIntegerField(
        default=100,
        validators=[MinValueValidator(1), MaxValueValidator(1000)],
        help_text="Percent of the team's monthly budget (or, without one, of the workspace's estimate) at which "
        "its month-to-date spend is flagged",
    )

    class Meta:
        ordering = ["environment"]
        verbose_name_plural = "environment policies"

    def __str__(self) -> str:
        return f"Policy for {self.get_environment_display()}"

    def clean(self) -> None:
        """A default longer than its maximum would make every new membership need an admin."""
        super().clean()
        for persona in Persona.values:
            default, longest = self.membership_days(persona)
            if longest is not None and default > longest:
                raise ValidationError(f"the default days of a {persona.replace('_', ' ')} pass its maximum")
        if not self.scientist_default_days or not self.lead_default_days:
            raise ValidationError("a membership lasts at least one day")

    def membership_days(self, persona: str) -> tuple[int, int | None]:
        """(default, maximum) days of a membership as ``persona``; a maximum of None has no limit."""
        if persona == Persona.TEAM_LEAD:
            return self.lead_default_days, self.lead_max_days
        return self.scientist_default_days, self.scientist_max_days

    def reminders(self) -> list[int]:
        """The days before the end when reminders go out, largest first."""
        return reminder_days_parsed(self.reminder_days)

    @classmethod
    def read(cls, environment: str) -> EnvironmentPolicy:
        """The environment's policy, or an unsaved one with the defaults when admins have not made it (reading
        writes nothing; ``for_environment`` makes the row)."""
        return cls.objects.filter(environment=environment).first() or cls(environment=environment)

    @classmethod
    def for_environment(cls, environment: str) -> EnvironmentPolicy:
        """The environment's policy, created with defaults on first use."""
        policy, _ = cls.objects.get_or_create(environment=environment)
        return policy
