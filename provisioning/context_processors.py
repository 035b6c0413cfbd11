"""Template context for every page: the number of requests waiting for an admin's decision (the nav's badge)."""

from __future__ import annotations

from typing import Any

from django.core.cache import cache
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from accounts import personas
from provisioning.workflow import selectors

# Every admin page shows it: a count at most this old spares a query on most of them.
WAITING_CACHE_SECONDS = 30


def approvals_waiting_key(user: Any) -> str:
    """The cache key of ``user``'s count (another admin's own requests are not theirs to decide)."""
    return f"provisioning:approvals_waiting:{user.pk}"


def approvals_waiting_count(user: Any) -> int:
    """How many submitted requests ``user`` (an admin) may decide: one COUNT, kept briefly per admin."""
    key = approvals_waiting_key(user)
    count = cache.get(key)
    if count is None:
        count = selectors.approval_queue(user).order_by().count()
        cache.set(key, count, WAITING_CACHE_SECONDS)
    return int(count)


def approvals_waiting(request: HttpRequest) -> dict[str, Any]:
    """``approvals_waiting`` for admins (read only where the template shows it), nothing for others."""
    user = request.user
    if not user.is_authenticated or not personas.is_admin(user):
        return {}
    return {"approvals_waiting": SimpleLazyObject(lambda: approvals_waiting_count(user))}
