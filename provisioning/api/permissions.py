"""Who may call the API at all: a signed-in person holding one of the portal's personas."""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission

from accounts import personas


class HoldsPersona(BasePermission):
    """Authenticated, and an admin, a team lead or a data scientist (as every page asks)."""

    message = "you hold no role in the portal"

    def has_permission(self, request: Any, view: Any) -> bool:
        return bool(request.user and request.user.is_authenticated and personas.personas_of(request.user))


class IsAdmin(BasePermission):
    message = "only portal administrators can do this"

    def has_permission(self, request: Any, view: Any) -> bool:
        return personas.is_admin(request.user)
