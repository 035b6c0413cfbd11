"""What a team lead asked for, and where it is in the approval and provisioning workflow."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from provisioning.models.inventory import Workspace


class ChangeRequest(models.Model):
    """What a team lead asked for, and where it is in the approval and provisioning workflow.

    The ``spec`` holds the request as submitted (see ``provisioning.spec``); ``plan`` is computed
    from it at approval and lists every resource and role assignment to be made.
    """

    class Kind(models.TextChoices):
        NEW_WORKSPACE = "new_workspace", "New workspace"
        ADD_CLUSTERS = "add_clusters", "Add clusters"
        GRANT_ACCESS = "grant_access", "Grant access"
        REVOKE_ACCESS = "revoke_access", "Revoke access"
        REMEDIATE_DRIFT = "remediate_drift", "Remediate drift"
        # Day 2: clusters changed, replaced or deleted, members' roles changed or removed (a plan of diffs).
        CHANGE_WORKSPACE = "change_workspace", "Change workspace"
        DECOMMISSION = "decommission", "Decommission workspace"
        # A membership's end date moved past the policy's default: an admin approves, no Azure call.
        RENEW_ACCESS = "renew_access", "Renew access"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        PROVISIONING = "provisioning", "Provisioning"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"
        ABANDONED = "abandoned", "Abandoned (what Azure holds is kept)"
        ROLLING_BACK = "rolling_back", "Rolling back"
        ROLLED_BACK = "rolled_back", "Rolled back"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.DRAFT: frozenset({Status.SUBMITTED, Status.CANCELLED}),
        Status.SUBMITTED: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
        Status.APPROVED: frozenset({Status.PROVISIONING}),
        Status.PROVISIONING: frozenset({Status.SUCCEEDED, Status.FAILED}),
        # A failed request is retried, amended (a wider amendment goes back to an approver), or abandoned:
        # kept as Azure holds it, or rolled back by a run that deletes what it created.
        Status.FAILED: frozenset(
            {Status.PROVISIONING, Status.SUBMITTED, Status.ABANDONED, Status.ROLLING_BACK}
        ),
        Status.ROLLING_BACK: frozenset({Status.ROLLED_BACK, Status.FAILED}),
        Status.ROLLED_BACK: frozenset(),
        Status.ABANDONED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.SUCCEEDED: frozenset(),
        Status.CANCELLED: frozenset(),
    }
    EDITABLE = frozenset({Status.DRAFT})
    OPEN = frozenset({Status.DRAFT, Status.SUBMITTED})
    PENDING_OR_LIVE = frozenset({Status.SUBMITTED, Status.APPROVED, Status.PROVISIONING, Status.ROLLING_BACK})
    # What a worker is (or will be) running.
    RUNNING = frozenset({Status.APPROVED, Status.PROVISIONING, Status.ROLLING_BACK})

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, null=True, blank=True, related_name="change_requests"
    )
    workspace_name = models.CharField(
        max_length=33, db_index=True, help_text="The workspace this request creates or changes"
    )
    spec = models.JSONField(encoder=DjangoJSONEncoder)
    plan = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approved_requests",
    )
    reason = models.TextField(blank=True, help_text="Why it was rejected")
    copied_from = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="copies",
        help_text="The rejected or cancelled request this draft was copied from",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    name_check = models.JSONField(
        null=True, blank=True, help_text="Azure's answer on the globally unique names, checked by a worker"
    )
    name_checked_at = models.DateTimeField(null=True, blank=True)
    first_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="first_approved_requests",
        help_text="The first of two admins, when policy asks a second approval for going over budget",
    )
    first_approved_at = models.DateTimeField(null=True, blank=True)
    amended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="amended_requests",
        help_text="Who last amended it after it failed; they do not approve their own amendment",
    )
    principal_check = models.JSONField(
        null=True,
        blank=True,
        help_text="Entra ID's answer on every member and the security group, checked by a worker",
    )
    principal_checked_at = models.DateTimeField(null=True, blank=True)
    form_token = models.CharField(
        max_length=64,
        blank=True,
        help_text="The one-time token of the form that made it: the same form posted twice makes one request",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "created_at"]),
            # The requests list (newest first) and the approval page's latest decisions, at 10,000s of rows.
            models.Index(fields=["-created_at", "-id"], name="changerequest_newest"),
            models.Index(fields=["-decided_at", "-id"], name="changerequest_latest_decided"),
            # The capacity page's version of its kept figures reads the newest change.
            models.Index(fields=["-updated_at"], name="changerequest_latest_change"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["requester", "form_token"],
                condition=~models.Q(("form_token", "")),  # a form token is set (a lookup, not a password)
                name="changerequest_unique_form_token",
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.workspace_name}"

    def can_transition(self, target: str) -> bool:
        """Whether the status machine allows moving from the current status to ``target``."""
        return target in self.TRANSITIONS[self.status]

    def can_approve(self, user: Any) -> bool:
        """Admins decide submitted requests, never their own; a second approval needs another admin."""
        from accounts.personas import is_admin

        return (
            self.status == self.Status.SUBMITTED
            and is_admin(user)
            and user.pk not in (self.requester_id, self.first_approver_id, self.amended_by_id)
        )

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def principals_refused(self) -> list[dict[str, Any]]:
        """Members and groups Entra ID does not accept (unknown, disabled, guest, not a security group)."""
        return [p for p in (self.principal_check or []) if p.get("problem")]

    @property
    def names_taken(self) -> list[dict[str, str]]:
        """Globally unique names Azure said are taken (empty until checked, or when all are free)."""
        return [c for c in (self.name_check or []) if not c.get("available")]
