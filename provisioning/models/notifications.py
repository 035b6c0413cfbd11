"""Notifications: an outbox of mails and Teams cards, each person's preferences, and teams' Teams channels."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

MAX_WEBHOOK_URL = 2000
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def webhook_url_problem(url: str) -> str | None:
    """Why ``url`` is not a Teams incoming webhook the portal posts to (None: it is one).

    HTTPS only; plain HTTP to the loopback is let through for a local receiver (tests, the demo)."""
    if len(url) > MAX_WEBHOOK_URL:
        return f"at most {MAX_WEBHOOK_URL} characters"
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if not parts.hostname or any(c.isspace() for c in url):
        return "not a URL"
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
        return None
    return "the webhook must be an https:// URL"


def validate_webhook_url(url: str) -> None:
    """Model and form validator of Teams webhook URLs (``webhook_url_problem``)."""
    if (problem := webhook_url_problem(url)) is not None:
        raise ValidationError(problem)


class NotificationKind(models.TextChoices):
    """What a notification is about; people turn kinds of mail off (``NotificationPreference``)."""

    REQUEST_SUBMITTED = "request_submitted", "A request waits for approval"
    REQUEST_APPROVED = "request_approved", "My request was approved"
    REQUEST_REJECTED = "request_rejected", "My request was rejected"
    PROVISIONING_SUCCEEDED = "provisioning_succeeded", "Provisioning of my request succeeded"
    PROVISIONING_FAILED = "provisioning_failed", "Provisioning failed"
    AMENDMENT_WAITING = "amendment_waiting", "An amended request waits for approval"
    MEMBERSHIP_ENDING = "membership_ending", "A membership ends soon"
    REVIEW_TO_DO = "review_to_do", "An access review to do"
    DRIFT_FOUND = "drift_found", "Drift found in Azure"
    SPEND_OVER_THRESHOLD = "spend_over_threshold", "A workspace's spend passed its threshold"


class Notification(models.Model):
    """One mail or Teams card to send: written in the transaction of the change it tells of, delivered
    after the commit by a job that claims the row, so a rolled-back change sends nothing and a restart
    loses nothing.

    ``key`` is unique: the same event never makes two rows. A mail's ``recipients`` are addresses (``cc``
    its copies); a Teams card's recipient names a channel (``teams:portal`` or ``teams:<dept>/<team>``),
    whose URL is read when it is sent so the outbox never holds a webhook's secret.
    """

    class Channel(models.TextChoices):
        MAIL = "mail", "Mail"
        TEAMS = "teams", "Microsoft Teams"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (gave up)"

    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    recipients = models.JSONField(default=list)
    cc = models.JSONField(default=list, blank=True)
    subject = models.CharField(max_length=300)
    body = models.TextField()
    link = models.URLField(max_length=500, blank=True)
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    key = models.CharField(max_length=500, unique=True, help_text="The same event never makes two rows")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=models.Q(status="pending"),
                name="notification_due",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_channel_display()} {self.kind} to {', '.join(self.recipients)}"


class NotificationPreference(models.Model):
    """A person's choice to receive a kind of mail or not (no row: they receive it). Teams channel
    messages are not personal and are not affected."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_preferences"
    )
    kind = models.CharField(max_length=30, choices=NotificationKind.choices)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "kind"], name="notification_preference_once"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: {self.kind} {'on' if self.enabled else 'off'}"


class TeamChannel(models.Model):
    """A team's Microsoft Teams channel (its incoming webhook), where the team's events are posted too.

    A team is a (department, team) pair as workspaces and budgets name it. The URL is a secret (it lets
    anyone post to the channel): it is never written to the audit or the outbox.
    """

    department = models.CharField(max_length=4)
    team = models.CharField(max_length=24)
    webhook_url = models.URLField(
        max_length=MAX_WEBHOOK_URL,
        validators=[validate_webhook_url],
        help_text="The channel's incoming webhook (https://…); its events are posted there as cards",
    )

    class Meta:
        ordering = ["department", "team"]
        constraints = [
            models.UniqueConstraint(fields=["department", "team"], name="teamchannel_unique_team"),
        ]

    def __str__(self) -> str:
        return f"{self.department}/{self.team}"
