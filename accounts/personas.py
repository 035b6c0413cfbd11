"""The portal's three personas, held as Django groups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User

ADMIN = "Admin"
TEAM_LEAD = "Team Lead"
DATA_SCIENTIST = "Data Scientist"
ALL = (ADMIN, TEAM_LEAD, DATA_SCIENTIST)


def personas_of(user: User | AnonymousUser) -> set[str]:
    """The persona names this user holds (cached on the user object for the request)."""
    if not user.is_authenticated:
        return set()
    cached: set[str] | None = getattr(user, "_persona_cache", None)
    if cached is None:
        cached = set(user.groups.filter(name__in=ALL).values_list("name", flat=True))
        user._persona_cache = cached  # type: ignore[attr-defined]
    return cached


def is_admin(user: Any) -> bool:
    """True for portal administrators."""
    return ADMIN in personas_of(user)


def is_team_lead(user: Any) -> bool:
    """True for team leads, who request workspaces, clusters and access."""
    return TEAM_LEAD in personas_of(user)


def is_data_scientist(user: Any) -> bool:
    """True for data scientists, who see the access they have."""
    return DATA_SCIENTIST in personas_of(user)
