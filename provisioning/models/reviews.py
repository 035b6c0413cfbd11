"""Access reviews: a campaign per workspace in which its team lead decides, member by member, keep or remove."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from provisioning.models.inventory import Membership, Workspace
from provisioning.models.policy import UnreviewedAccess
from provisioning.models.requests import ChangeRequest


class AccessReview(models.Model):
    """One review campaign of a workspace's members, open until its team lead (or the deadline) closes it.

    At most one is open per workspace. Closing removes the members decided *remove* through one revocation
    request; members nobody decided by the deadline are removed or escalated to an admin, as the
    environment's policy said when the campaign started (``unreviewed``).
    """

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ESCALATED = "escalated", "Escalated to an admin"
        CLOSED = "closed", "Closed"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="access_reviews")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The admin who started it; empty when the schedule did",
    )
    started_at = models.DateTimeField()
    deadline = models.DateTimeField()
    unreviewed = models.CharField(
        max_length=10,
        choices=UnreviewedAccess.choices,
        help_text="What happens to members not reviewed by the deadline (the policy's when it started)",
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    revocation = models.ForeignKey(
        ChangeRequest,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The request that removed the members decided (or left) to remove",
    )

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["workspace"],
                condition=~models.Q(status="closed"),
                name="access_review_one_live_per_workspace",
            ),
        ]
        indexes = [models.Index(fields=["status", "deadline"], name="access_review_due")]

    def __str__(self) -> str:
        return f"Access review #{self.pk} of {self.workspace.workspace_name}"

    @property
    def is_live(self) -> bool:
        return self.status != self.Status.CLOSED


class AccessReviewDecision(models.Model):
    """Keep or remove one member, decided in a review (pending until someone decides)."""

    class Decision(models.TextChoices):
        PENDING = "pending", "Not reviewed"
        KEEP = "keep", "Keep"
        REMOVE = "remove", "Remove"

    review = models.ForeignKey(AccessReview, on_delete=models.CASCADE, related_name="decisions")
    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="review_decisions")
    # Who the member was when the campaign started (the membership may be removed later; the record stays).
    principal_name = models.CharField(max_length=256)
    persona = models.CharField(max_length=20)
    decision = models.CharField(max_length=10, choices=Decision.choices, default=Decision.PENDING)
    escalated = models.BooleanField(default=False, help_text="Not reviewed by the deadline: an admin decides")
    decided_by = models.CharField(
        max_length=256, blank=True, help_text="Who decided: a person, or the policy"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["persona", "principal_name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["review", "membership"], name="access_review_decision_once"),
        ]

    def __str__(self) -> str:
        return f"{self.principal_name}: {self.get_decision_display()}"
