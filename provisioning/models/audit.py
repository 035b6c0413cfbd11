"""The append-only, hash-chained record of every change."""

from __future__ import annotations

import hashlib
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class AuditEvent(models.Model):
    """One recorded change. Append-only: PostgreSQL refuses UPDATE and DELETE on this table.

    Each event's ``hash`` covers its content and the previous event's hash, so an edit made
    behind the database's back breaks the chain (``manage.py audit_verify`` finds it).
    Actors, requests and workspaces are stored as values, not foreign keys, so deleting a
    user never has to touch the audit.
    """

    created_at = models.DateTimeField()
    actor = models.CharField(max_length=254, help_text="Who did it (username or 'system')")
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
        return json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode()).hexdigest()
