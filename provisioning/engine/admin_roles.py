"""The two administration roles in Azure (docs/roles.md): defined in every allowed subscription, assigned to the
groups the subscription names.

- *AzureML Capacity Admin* is created (or brought back to the documented permissions, audited
  ``admin_role.updated``) and assigned to ``AllowedSubscription.capacity_admin_group`` at the subscription.
- *AzureML Workspace Admin* likewise, assigned to ``workspace_admin_group`` at the resource group of every
  active workspace the portal manages in the subscription.

Azure is called with no transaction open; each change found is audited in its own short transaction. Every
call is idempotent (role definitions compared first, assignments under the portal's deterministic names), so
the hourly job and ``manage.py admin_roles`` may run any number of times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import requests
from django.db import transaction

from provisioning.arm import ADMIN_ROLES
from provisioning.audit import audit_record
from provisioning.azure import authz
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError
from provisioning.models import AllowedSubscription, ResourceState, Workspace
from provisioning.roles import CAPACITY_ADMIN, WORKSPACE_ADMIN

SYSTEM = "system:admin-roles"


@dataclass(frozen=True)
class Change:
    """One thing made or found: a role definition, or an assignment of a role to a group at a scope."""

    subscription: str
    what: str  # "definition" or "assignment"
    role: str
    outcome: str  # "created", "updated", "unchanged", "exists" or "failed"
    scope: str = ""
    group: str = ""
    message: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def _audit(change: Change) -> None:
    if change.outcome not in ("created", "updated"):
        return
    with transaction.atomic():
        audit_record(
            actor=SYSTEM,
            action=f"admin_role.{'assigned' if change.what == 'assignment' else change.outcome}",
            object_type="role_definition" if change.what == "definition" else "role_assignment",
            object_id=change.role,
            after=change.as_dict(),
            message=f"{change.role} {change.outcome}"
            + (f" for {change.group} on {change.scope}" if change.group else f" in {change.subscription}"),
        )


def _group_id(clients: AzureClients, group: str) -> str:
    try:
        return clients.graph().group_object_id(group)
    except (LookupError, requests.RequestException) as exc:
        raise AzureStepError("GraphLookupFailed", str(exc)) from exc


def _assign(
    clients: AzureClients, sub: str, role: str, role_id: str, group: str, group_id: str, scope: str
) -> Change:
    outcome = authz.ensure_role_assignment(
        clients,
        subscription=sub,
        scope=scope,
        role_definition_id=role_id,
        principal_id=group_id,
        principal_type="group",
    )
    return Change(sub, "assignment", role, outcome.action, scope, group)


def subscription_admin_roles(clients: AzureClients, allowed: AllowedSubscription) -> list[Change]:
    """Define both roles in one subscription and assign them to its admin groups (those it names)."""
    sub = allowed.subscription_id
    changes, role_ids = [], {}
    for role in ADMIN_ROLES:
        outcome = authz.ensure_custom_role(clients, subscription=sub, role_name=role)
        role_ids[role] = outcome.azure_id
        changes.append(Change(sub, "definition", role, outcome.action, f"/subscriptions/{sub}"))
    if allowed.capacity_admin_group:
        group_id = _group_id(clients, allowed.capacity_admin_group)
        changes.append(
            _assign(
                clients,
                sub,
                CAPACITY_ADMIN,
                role_ids[CAPACITY_ADMIN],
                allowed.capacity_admin_group,
                group_id,
                f"/subscriptions/{sub}",
            )
        )
    if allowed.workspace_admin_group:
        group_id = _group_id(clients, allowed.workspace_admin_group)
        if allowed.workspace_admin_group_id != group_id:  # reconcile tolerates this group's admin role
            AllowedSubscription.objects.filter(pk=allowed.pk).update(workspace_admin_group_id=group_id)
        managed = Workspace.objects.filter(
            subscription_id=sub, state=ResourceState.ACTIVE, management=Workspace.Management.MANAGED
        ).order_by("resource_group")
        for group_name in managed.values_list("resource_group", flat=True).distinct():
            scope = f"/subscriptions/{sub}/resourceGroups/{group_name}"
            changes.append(
                _assign(
                    clients,
                    sub,
                    WORKSPACE_ADMIN,
                    role_ids[WORKSPACE_ADMIN],
                    allowed.workspace_admin_group,
                    group_id,
                    scope,
                )
            )
    return changes


def admin_roles_ensure(clients: AzureClients | None = None) -> list[Change]:
    """Both administration roles in every active allowed subscription; a subscription that fails (a group not
    found, Azure refusing) is reported and the others are still done."""
    changes: list[Change] = []
    with AzureClients.given_or_own(clients) as own:
        for allowed in AllowedSubscription.objects.filter(is_active=True).order_by("subscription_id"):
            try:
                found = subscription_admin_roles(own, allowed)
            except AzureStepError as exc:
                found = [Change(allowed.subscription_id, "subscription", "", "failed", message=exc.message)]
            for change in found:
                _audit(change)
            changes += found
    return changes
