"""Policy edits through the Django admin leave a trace: one hash-chained audit event per object changed,
added or deleted, with the actor and the fields' old and new values, in the transaction of the change.

Policy decides what may be requested and approved (allowed subscriptions, regions and sizes, the limits
per environment, prices, users' groups): a change to it is as consequential as an approval. The admin's
change and delete views run in a transaction; the event is written after the object and its
many-to-many fields are saved (``save_related``), so both are seen, and rolled back with the change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models, router, transaction
from django.http import HttpRequest

from provisioning.audit import audit_record

# Never written to the audit, even as "changed": secrets and their hashes (a Teams webhook URL lets anyone
# holding it post to the channel).
HIDDEN_FIELDS = frozenset({"password", "webhook_url"})


def snapshot(obj: models.Model) -> dict[str, Any]:
    """An object's fields as plain values (many-to-many as sorted names), secrets left out."""
    values: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.name in HIDDEN_FIELDS:
            continue
        values[field.name] = field.value_from_object(obj)
    if obj.pk is not None:
        for m2m in obj._meta.many_to_many:
            values[m2m.name] = sorted(str(related) for related in getattr(obj, m2m.name).all())
    return values


def _differences(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    changed = sorted(k for k in after.keys() | before.keys() if before.get(k) != after.get(k))
    return {k: before.get(k) for k in changed}, {k: after.get(k) for k in changed}


class AuditedAdmin(admin.ModelAdmin):
    """A ModelAdmin whose every add, change and delete is audited (``policy.<model>.added|changed|deleted``)."""

    def _record(self, request: HttpRequest, obj: models.Model, verb: str, before: Any, after: Any) -> None:
        audit_record(
            actor=request.user,
            action=f"policy.{obj._meta.model_name}.{verb}",
            object_type=str(obj._meta.model_name),
            object_id=str(obj.pk or ""),
            before=before,
            after=after,
            message=f"{obj._meta.verbose_name} '{obj}' {verb} in the Django admin",
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        # Read as stored (the form has already put the new values on ``obj``).
        stored = type(obj)._default_manager.filter(pk=obj.pk).first() if change else None
        form._audit_before = snapshot(stored) if stored is not None else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        before = getattr(form, "_audit_before", {})
        after = snapshot(obj)
        if not change:
            self._record(request, obj, "added", None, after)
            return
        old, new = _differences(before, after)
        if old or new:
            self._record(request, obj, "changed", old, new)

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        before, pk = snapshot(obj), obj.pk
        super().delete_model(request, obj)
        obj.pk = pk  # Django clears it; the event names what was deleted
        self._record(request, obj, "deleted", before, None)
        obj.pk = None

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        """The changelist's bulk delete: one event per object, with the deletion, in one transaction."""
        with transaction.atomic(using=router.db_for_write(self.model)):
            doomed = [(obj, snapshot(obj)) for obj in queryset]
            super().delete_queryset(request, queryset)
            for obj, before in doomed:
                self._record(request, obj, "deleted", before, None)
