"""Sections of a page kept rendered (Django's ``{% cache %}`` tag), per version of the data they show and
per viewer.

The approvals and capacity pages render hundreds of rows and bars whose figures change only when something
is decided, provisioned, budgeted or read from Azure. A section is kept under

- the **version** of what it shows (one aggregate query: the newest audit event, request change, cluster,
  catalog and usage reading..., ``capacity.report``), so a change shows at the next view;
- the **viewer**: the user, their personas and their CSRF secret. The rows carry forms whose tokens are
  masked from that secret, and a token rendered for one secret is refused with another;
- what else the page was asked (its filters, sort and page);

for at most ``FRAGMENT_SECONDS``, which bounds how stale "3 minutes ago" can read. Nothing kept holds the
CSP nonce: the sections have no inline script or style.
"""

from __future__ import annotations

import hashlib

from django.http import HttpRequest
from django.middleware.csrf import get_token

from accounts.personas import personas_of

FRAGMENT_SECONDS = 60


def viewer_key(request: HttpRequest) -> str:
    """Whom a kept section was rendered for (a digest: the CSRF secret never reaches a cache key)."""
    get_token(request)  # the secret exists, and its cookie is sent, even when no section is rendered
    secret = request.META.get("CSRF_COOKIE", "")
    user = request.user
    who = f"{user.pk}|{','.join(sorted(personas_of(user)))}|{secret}"
    return hashlib.sha256(who.encode()).hexdigest()[:32]


def version_key(*parts: object) -> str:
    """One short key for what a section was computed from."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]
