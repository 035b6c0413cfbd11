"""Users kept in step with Microsoft Entra ID: found by (tenant, object id), personas from app roles."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from accounts import personas
from accounts.entra import EntraIdentity
from accounts.models import User
from provisioning.audit import audit_record
from provisioning.workflow.services import membership_link_user

# The app roles defined on the portal's app registration, and the persona each one grants.
ROLE_PERSONAS = {
    "Portal.Admin": personas.ADMIN,
    "Portal.TeamLead": personas.TEAM_LEAD,
    "Portal.DataScientist": personas.DATA_SCIENTIST,
}
# What admins edit in the Django admin (the same rights ``seed_demo`` gives its admin).
POLICY_MODELS = (
    "allowedsubscription",
    "allowedregion",
    "allowedvmsize",
    "policy",
    "environmentpolicy",
    "teambudget",
    "vmprice",
)


def personas_from_roles(roles: tuple[str, ...] | list[str]) -> set[str]:
    """The personas the app roles of an id token grant (unknown roles grant nothing)."""
    return {ROLE_PERSONAS[r] for r in roles if r in ROLE_PERSONAS}


def user_sign_in(*, identity: EntraIdentity) -> User:
    """Find or create the user of this Entra identity and bring them in step with the id token.

    The user is keyed by (tenant id, object id), never by email or UPN, which are kept for display; a
    member's (not a guest's) UPN binds memberships named by it before they were bound to an object id. Personas follow the app roles at every
    sign-in, so a removed role is gone at the next one; admins get (and lose) Django admin access with
    the role. Audited as "user.signed_in", or "user.sign_in_refused" when no role grants a persona.
    """
    held = personas_from_roles(identity.roles)
    with transaction.atomic():
        user, created = _user_for(identity)
        before = None if created else _snapshot(user)
        user.upn, user.email, user.first_name = identity.upn, identity.email, identity.name
        user.entra_guest = identity.guest
        user.is_staff = personas.ADMIN in held
        user.save()
        _sync_personas(user, held)
        linked = membership_link_user(user=user)
        audit_record(
            actor=user,
            action="user.signed_in" if held else "user.sign_in_refused",
            obj=user,
            before=before,
            after={**_snapshot(user), "memberships_linked": linked},
            message=f"{user.principal_name} signed in" if held else f"{user.principal_name} has no app role",
        )
    return user


def _user_for(identity: EntraIdentity) -> tuple[User, bool]:
    user, created = User.objects.select_for_update().get_or_create(
        entra_tenant_id=identity.tenant_id,
        entra_object_id=identity.object_id,
        # Entra users never sign in with a password.
        defaults={
            "username": f"entra.{identity.tenant_id}.{identity.object_id}",
            "password": make_password(None),
        },
    )
    return user, created


def _snapshot(user: User) -> dict[str, Any]:
    return {
        "upn": user.upn,
        "email": user.email,
        "personas": sorted(user.groups.filter(name__in=personas.ALL).values_list("name", flat=True)),
        "is_staff": user.is_staff,
        "guest": user.entra_guest,
    }


def _sync_personas(user: User, held: set[str]) -> None:
    groups = {g.name: g for g in Group.objects.filter(name__in=personas.ALL)}
    user.groups.remove(*(g for name, g in groups.items() if name not in held))
    user.groups.add(*(g for name, g in groups.items() if name in held))
    if personas.ADMIN in held:
        groups[personas.ADMIN].permissions.add(*admin_permissions())
    user.__dict__.pop("_persona_cache", None)


def admin_permissions() -> list[Permission]:
    """Full rights on the policy models, read-only on the rest of provisioning."""
    return list(
        Permission.objects.filter(
            Q(content_type__model__in=POLICY_MODELS) | Q(codename__startswith="view_"),
            content_type__app_label="provisioning",
        )
    )


def user_for_api(*, identity: EntraIdentity) -> User | None:
    """The user an API access token names, in step with it; None when its app roles grant no persona.

    A user already in step (same personas, names and guest flag) is returned without a write; otherwise the
    token is taken as a sign-in (``user_sign_in``: created or updated, and audited), so a role removed in
    Entra ID is gone at the next call, as at the next sign-in.
    """
    held = personas_from_roles(identity.roles)
    if not held:
        return None
    user = User.objects.filter(
        entra_tenant_id=identity.tenant_id, entra_object_id=identity.object_id, is_active=True
    ).first()
    if (
        user is not None
        and personas.personas_of(user) == held
        and (user.upn, user.email, user.first_name, user.entra_guest)
        == (identity.upn, identity.email, identity.name, identity.guest)
        and user.is_staff == (personas.ADMIN in held)
    ):
        return user
    if (
        user is None
        and User.objects.filter(
            entra_tenant_id=identity.tenant_id, entra_object_id=identity.object_id
        ).exists()
    ):
        return None  # deactivated in the portal
    return user_sign_in(identity=identity)
