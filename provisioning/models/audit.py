"""The append-only, hash-chained record of every change, and exports of it."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

# Hashed only when non-empty (see AuditEvent.canonical).
LATER_FIELDS = ("actor_name", "actor_upn", "via")


class AuditEvent(models.Model):
    """One recorded change. Append-only: PostgreSQL refuses UPDATE and DELETE on this table.

    Each event's ``hash`` covers its content and the previous event's hash, so an edit made
    behind the database's back breaks the chain (``manage.py audit_verify`` finds it).
    Actors, requests and workspaces are stored as values, not foreign keys, so deleting a
    user never has to touch the audit. Beside the actor's stable id (``actor``, the username) the
    event keeps the person's display name and UPN as they were then, and how the action came
    (``via``); events older than these fields have them empty.
    """

    class Via(models.TextChoices):
        WEB = "web", "web"
        API = "api", "API"
        CLI = "cli", "command line"
        SYSTEM = "system", "system"

    created_at = models.DateTimeField()
    actor = models.CharField(max_length=254, help_text="Who did it (username or 'system')")
    actor_name = models.CharField(
        max_length=300, blank=True, default="", help_text="The actor's display name when it happened"
    )
    actor_upn = models.CharField(
        max_length=254, blank=True, default="", help_text="The actor's UPN (or email) when it happened"
    )
    via = models.CharField(
        max_length=10, blank=True, default="", choices=Via.choices, help_text="How the action came"
    )
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    request_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    workspace_name = models.CharField(max_length=33, blank=True, db_index=True)
    before = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    after = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    message = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor} {self.action} {self.object_type}#{self.object_id}"

    def canonical(self) -> str:
        """The event's content in one stable text form, the input of its hash."""
        body = {
            "created_at": self.created_at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": str(self.object_id),
            "request_id": self.request_id,
            "workspace_name": self.workspace_name,
            "before": self.before,
            "after": self.after,
            "message": self.message,
        }
        # Fields added after the first events are hashed only when set, so older events keep their hashes.
        for name in LATER_FIELDS:
            if value := getattr(self, name):
                body[name] = value
        return json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode()).hexdigest()


class AuditCheckpoint(models.Model):
    """The audit chain's head at one moment, signed with a key the database does not hold.

    Deleting the newest audit events leaves a valid (shorter) chain; a checkpoint names the head it saw
    (id, hash, how many events up to it) with an HMAC made with ``AUDIT_ANCHOR_KEY``, so
    ``manage.py audit_verify`` finds the cut. Append-only on PostgreSQL (migration 0016), written by
    workers, and written to the log too.
    """

    created_at = models.DateTimeField()
    event_id = models.BigIntegerField(help_text="The newest audit event when the checkpoint was made")
    event_hash = models.CharField(max_length=64)
    events = models.BigIntegerField(help_text="How many events the chain held up to and including it")
    signature = models.CharField(max_length=64, help_text="HMAC-SHA256 of the above with AUDIT_ANCHOR_KEY")

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"checkpoint #{self.pk} at audit event #{self.event_id}"

    def message(self) -> str:
        """What the signature covers, in one stable text form."""
        return f"{self.created_at.isoformat()}|{self.event_id}|{self.event_hash}|{self.events}"


class AuditExport(models.Model):
    """An export of the audit trail, written to a file by a worker and offered to its requester alone
    until it expires (a large export never holds a web worker)."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON lines"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Being written"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired"

    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="audit_exports"
    )
    format = models.CharField(max_length=10, choices=Format.choices, default=Format.CSV)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    filters = models.JSONField(encoder=DjangoJSONEncoder, default=dict, help_text="The audit page's filters")
    last_event_id = models.BigIntegerField(
        default=0, help_text="The newest event when it was asked for: later events are not in it"
    )
    rows = models.PositiveIntegerField(default=0)
    size_bytes = models.BigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True, help_text="In the exports storage")
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"audit export #{self.pk} ({self.format}, {self.status})"

    @property
    def job_id(self) -> str:
        """The RQ job that writes it (the same id every time, so a duplicate enqueue replaces it)."""
        return f"audit-export-{self.pk}"

    @property
    def download_name(self) -> str:
        """The file name the browser saves."""
        extension = "csv" if self.format == self.Format.CSV else "jsonl"
        return f"audit-{self.created_at:%Y%m%d-%H%M%S}-{self.pk}.{extension}"
