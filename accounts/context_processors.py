"""Template context: which persona navigation to show."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from accounts import directory
from accounts import personas as persona_rules


def personas(request: HttpRequest) -> dict[str, Any]:
    """Expose the signed-in user's personas to every template."""
    # The module is imported under another name: this function's name would shadow it.
    held = persona_rules.personas_of(request.user)
    return {
        "is_admin": persona_rules.ADMIN in held,
        "is_team_lead": persona_rules.TEAM_LEAD in held,
        "is_data_scientist": persona_rules.DATA_SCIENTIST in held,
        "persona_names": sorted(held),
        # Member fields search the directory as people type, when the portal signs in with Entra ID.
        "directory_url": reverse("accounts:directory_search") if directory.enabled() else "",
    }
