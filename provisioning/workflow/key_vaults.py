"""Soft-deleted key vaults: what a worker read of them, the names they hold, and an admin's purge.

A worker records a deleted vault when a decommission ends or when the name check finds a key vault name
held by one; the workspace page shows it, new requests are refused its name until its scheduled purge
date, and an admin may purge it (a job asks Azure; Azure refuses while purge protection is on, and that
refusal is recorded with Azure's reason). Every purge asked and its result are audited.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import queue
from provisioning.audit import audit_record
from provisioning.models import DeletedKeyVault, ResourceState, Workspace
from provisioning.workflow.transitions import RequestError

PURGE_JOB = "provisioning.jobs.purge_key_vault"


def deleted_vault_record(
    *,
    name: str,
    subscription_id: str,
    location: str,
    azure_id: str,
    vault_id: str = "",
    deleted_at: datetime | None = None,
    scheduled_purge_at: datetime | None = None,
    purge_protection: bool = False,
    workspace_id: int | None = None,
) -> DeletedKeyVault:
    """Store (or refresh) a deleted vault as Azure showed it; linked to the decommissioned workspace it was."""
    if workspace_id is None:
        owner = (
            Workspace.objects.filter(key_vault__iexact=name, state=ResourceState.DECOMMISSIONED)
            .order_by("-decommissioned_at")
            .first()
        )
        workspace_id = owner.pk if owner is not None else None
    fields = {
        "name": name,
        "subscription_id": subscription_id,
        "location": location,
        "vault_id": vault_id,
        "deleted_at": deleted_at,
        "scheduled_purge_at": scheduled_purge_at,
        "purge_protection": purge_protection,
        "workspace_id": workspace_id,
        "read_at": timezone.now(),
    }
    with transaction.atomic():
        row, _ = DeletedKeyVault.objects.update_or_create(azure_id=azure_id, purged_at=None, defaults=fields)
    return row


def _holding(names: Q) -> QuerySet[DeletedKeyVault]:
    """Deleted vaults of these names still holding them (not purged, retention not over)."""
    return DeletedKeyVault.objects.filter(names, purged_at__isnull=True).filter(
        Q(scheduled_purge_at__isnull=True) | Q(scheduled_purge_at__gt=timezone.now())
    )


def names_held(names: list[str]) -> QuerySet[DeletedKeyVault]:
    """Deleted vaults still holding any of these names (not purged, retention not over)."""
    held = Q(pk__in=[])
    for name in names:
        held |= Q(name__iexact=name)
    return _holding(held)


def held_until(vault: DeletedKeyVault) -> str:
    """The date a deleted vault frees its name, in words."""
    if vault.scheduled_purge_at is None:
        return "its purge"
    return vault.scheduled_purge_at.date().isoformat()


def deleted_vaults_of(ws: Workspace) -> list[DeletedKeyVault]:
    """The workspace's soft-deleted key vaults still holding their names (the workspace page)."""
    return list(names_held([ws.key_vault]).filter(Q(workspace=ws) | Q(workspace__isnull=True)))


def holds_deleted_vaults() -> Exists:
    """Whether ``deleted_vaults_of`` would find any, as an annotation of a workspace queryset (a live
    workspace seldom has one: its page asks in its own query rather than in one more)."""
    mine = Q(workspace=OuterRef("pk")) | Q(workspace__isnull=True)
    return Exists(_holding(Q(name__iexact=OuterRef("key_vault"))).filter(mine))


def can_purge(user: Any) -> bool:
    return personas.is_admin(user)


def _live(name: str) -> DeletedKeyVault | None:
    return DeletedKeyVault.objects.filter(name__iexact=name.strip()).order_by("purged_at", "-read_at").first()


def key_vault_purge_check(*, name: str, actor: User) -> DeletedKeyVault:
    """The deleted vault an admin may purge by this name (permission and existence checked)."""
    if not can_purge(actor):
        raise PermissionDenied("only admins purge deleted key vaults")
    vault = _live(name)
    if vault is None:
        raise RequestError(
            f"the portal knows no deleted key vault named '{name}': a decommission or a name check records them"
        )
    return vault


def key_vault_purge_request(*, name: str, actor: User) -> str:
    """Queue the purge of a deleted vault (admins); "already purged" when it is, "queued" otherwise."""
    vault = key_vault_purge_check(name=name, actor=actor)
    if vault.purged_at is not None:
        return "already purged"
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="key_vault.purge_requested",
            obj=vault,
            workspace_name=vault.workspace.workspace_name if vault.workspace else "",
            after={"name": vault.name, "azure_id": vault.azure_id},
            message=f"purge of the deleted key vault {vault.name} asked",
        )
        vault_id, actor_id = vault.pk, actor.pk
        transaction.on_commit(
            lambda: queue.job_enqueue(
                PURGE_JOB,
                vault_id,
                actor_id,
                job_id=f"purge-key-vault-{vault_id}",
                description=f"purge the deleted key vault {vault.name}",
            )
        )
    return "queued"


def key_vault_purge_recorded(
    *, vault_id: int, actor_id: int | None, ok: bool, message: str = ""
) -> DeletedKeyVault:
    """A worker's purge ended: the name is free (purged), or Azure refused (its reason kept); audited."""
    with transaction.atomic():
        vault = (
            DeletedKeyVault.objects.select_for_update(of=("self",))
            .select_related("workspace")
            .get(pk=vault_id)
        )
        actor = User.objects.filter(pk=actor_id).first() if actor_id else None
        if vault.purged_at is not None:
            return vault
        if ok:
            vault.purged_at, vault.purged_by, vault.purge_error = timezone.now(), actor, ""
        else:
            vault.purge_error = message[:2000]
        vault.save(update_fields=["purged_at", "purged_by", "purge_error"])
        audit_record(
            actor=actor or "worker",
            action="key_vault.purged" if ok else "key_vault.purge_refused",
            obj=vault,
            workspace_name=vault.workspace.workspace_name if vault.workspace else "",
            after={"name": vault.name, "azure_id": vault.azure_id, "purged": ok},
            message=message or f"deleted key vault {vault.name} purged: its name is free",
        )
    return vault
