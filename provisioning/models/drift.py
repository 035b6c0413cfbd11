"""What a reconcile last read from Azure (observed state) and where it differs from the approved state.

Observed rows are replaced by each reconcile of a workspace and never edited by hand. A drift item
is one difference, open from the reconcile that first finds it until a later one no longer does
(resolved), an admin's remediation run restores the approved state (remediated), or an admin accepts
it with a reason (accepted: the approved state becomes what Azure has, and later reconciles leave it
alone).
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from provisioning.drift import in_words
from provisioning.models.inventory import Workspace


class ObservedResource(models.Model):
    """One object Azure holds for a managed workspace, as its latest reconcile read it."""

    class Kind(models.TextChoices):
        RESOURCE_GROUP = "resource_group", "Resource group"
        RESOURCE = "resource", "Resource"
        CLUSTER = "cluster", "Cluster"
        ROLE_ASSIGNMENT = "role_assignment", "Role assignment"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="observed")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    azure_id = models.CharField(max_length=500)
    name = models.CharField(max_length=300)
    properties = models.JSONField(encoder=DjangoJSONEncoder, default=dict)
    managed = models.BooleanField(default=False, help_text="Carries the portal's managed-by tag")
    observed_at = models.DateTimeField()

    class Meta:
        ordering = ["workspace", "kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "azure_id"], name="observed_unique_per_workspace")
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.name}"


class DriftItem(models.Model):
    """One difference between what the portal approved and what Azure holds."""

    class Kind(models.TextChoices):
        MISSING = "missing", "Missing in Azure"
        CHANGED = "changed", "Changed in Azure"
        ACCESS_REMOVED = "access_removed", "Access removed in Azure"
        ACCESS_ADDED = "access_added", "Access added outside the portal"
        UNMANAGED = "unmanaged", "Not made by the portal"

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        REMEDIATING = "remediating", "Being remediated"
        REMEDIATED = "remediated", "Remediated"
        ACCEPTED = "accepted", "Accepted"
        RESOLVED = "resolved", "Gone (no longer seen)"

    LIVE = frozenset({Status.OPEN, Status.REMEDIATING})

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="drift_items")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    key = models.CharField(max_length=700, help_text="Identity of the difference: kind, Azure id and field")
    resource_id = models.CharField(max_length=500, help_text="The Azure id of the object that differs")
    field = models.CharField(max_length=60, blank=True)
    expected = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    actual = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    details = models.JSONField(
        encoder=DjangoJSONEncoder, default=dict, help_text="What remediation or acceptance needs to know"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="Why it was accepted")
    remediation = models.ForeignKey(
        "ChangeRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="remediated_drift",
        help_text="The run that restores the approved state",
    )

    class Meta:
        ordering = ["-last_seen", "-id"]
        constraints = [
            # One live item, or standing accepted exception, per difference: a reconcile updates it instead
            # of adding another. An acceptance that changed the approved state closes its item (closed_at),
            # so the same difference appearing again later is a new item.
            models.UniqueConstraint(
                fields=["workspace", "key"],
                condition=models.Q(status__in=["open", "remediating"])
                | models.Q(status="accepted", closed_at__isnull=True),
                name="drift_unique_live_key_per_workspace",
            )
        ]
        indexes = [models.Index(fields=["status", "workspace"], name="drift_status_workspace")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.resource_id} {self.field}".strip()

    @property
    def expected_text(self) -> str:
        """What the portal approved, in words."""
        return in_words(self.expected)

    @property
    def actual_text(self) -> str:
        """What Azure holds, in words."""
        return in_words(self.actual)

    @property
    def target_name(self) -> str:
        """The name of what differs (a cluster, a resource, the scope of an assignment)."""
        name = self.details.get("name") or self.resource_id.rstrip("/").rsplit("/", 1)[-1]
        if self.kind in (self.Kind.ACCESS_ADDED, self.Kind.ACCESS_REMOVED):
            scope = str(self.details.get("scope") or self.resource_id)
            name = scope.rstrip("/").rsplit("/", 1)[-1]
        return str(name)
