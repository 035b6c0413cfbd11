"""Quota increase requests: more subscription cores for a VM family in a region, asked of Azure's Quota API."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from provisioning.models.requests import ChangeRequest

LOW_PRIORITY_RESOURCE = "TotalLowPriorityCores"  # the Quota API's resource name for low-priority cores
MAX_JUSTIFICATION = 1000


class QuotaIncreaseRequest(models.Model):
    """A team lead's (or an admin's) ask for a higher subscription limit, approved by an admin, filed with
    Azure by a worker and followed until Azure decides.

    Azure takes minutes to days: the poll's schedule (``next_poll_at``, ``attempts``) is kept here, so a
    restart loses nothing. The change requests refused for lack of this quota wait on it (``waiting``).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Waiting for an admin"
        APPROVED = "approved", "Approved, to be filed"
        FILING = "filing", "Being filed with Azure"
        IN_PROGRESS = "in_progress", "Filed, Azure is deciding"
        SUCCEEDED = "succeeded", "Granted"
        PARTIALLY_SUCCEEDED = "partially_succeeded", "Partly granted"
        DENIED = "denied", "Denied by Azure"
        FAILED = "failed", "Could not be filed"
        REJECTED = "rejected", "Rejected by an admin"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.DRAFT: frozenset({Status.SUBMITTED, Status.CANCELLED}),
        Status.SUBMITTED: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
        Status.APPROVED: frozenset({Status.FILING}),
        # Filing goes back to approved when Azure could not be reached (filed again later).
        Status.FILING: frozenset({Status.IN_PROGRESS, Status.APPROVED, Status.FAILED, Status.SUCCEEDED}),
        Status.IN_PROGRESS: frozenset(
            {Status.SUCCEEDED, Status.PARTIALLY_SUCCEEDED, Status.DENIED, Status.FAILED}
        ),
        Status.SUCCEEDED: frozenset(),
        Status.PARTIALLY_SUCCEEDED: frozenset(),
        Status.DENIED: frozenset(),
        Status.FAILED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.CANCELLED: frozenset(),
    }
    OPEN = frozenset({Status.DRAFT, Status.SUBMITTED, Status.APPROVED, Status.FILING, Status.IN_PROGRESS})
    GRANTED = frozenset({Status.SUCCEEDED, Status.PARTIALLY_SUCCEEDED})

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    family = models.CharField(
        max_length=60, help_text=f"The Quota API's resource name: a VM family, or {LOW_PRIORITY_RESOURCE}"
    )
    current_limit = models.PositiveIntegerField(help_text="The limit Azure last reported when asked")
    requested_limit = models.PositiveIntegerField()
    justification = models.TextField(max_length=MAX_JUSTIFICATION)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="quota_requests"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.SUBMITTED)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="quota_requests_decided",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    reason = models.TextField(blank=True, help_text="The admin's reason for a rejection")
    azure_request_id = models.CharField(max_length=64, blank=True, help_text="Azure's quota request id")
    azure_status = models.CharField(max_length=40, blank=True, help_text="Azure's provisioningState")
    azure_message = models.TextField(blank=True, help_text="Azure's message, its reason when denied")
    granted_limit = models.PositiveIntegerField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Polls (or filing attempts) so far")
    lease_until = models.DateTimeField(null=True, blank=True, help_text="A worker is filing it until then")
    filed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    waiting = models.ManyToManyField(
        ChangeRequest,
        blank=True,
        related_name="quota_requests",
        help_text="Change requests refused for lack of this quota",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription_id", "region", "family"],
                condition=models.Q(status__in=["draft", "submitted", "approved", "filing", "in_progress"]),
                name="quotarequest_one_open_per_family",
            ),
            models.CheckConstraint(
                condition=models.Q(requested_limit__gt=models.F("current_limit")),
                name="quotarequest_asks_more",
            ),
        ]

    def __str__(self) -> str:
        return f"quota request #{self.pk}: {self.family} in {self.region} to {self.requested_limit}"

    def can_transition(self, status: str) -> bool:
        return status in self.TRANSITIONS[self.status]

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    @property
    def is_granted(self) -> bool:
        return self.status in self.GRANTED

    @property
    def low_priority(self) -> bool:
        return self.family.lower() == LOW_PRIORITY_RESOURCE.lower()
