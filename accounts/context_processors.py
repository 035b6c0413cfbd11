"""Template context: which persona navigation to show."""

from typing import Any

from django.http import HttpRequest

from accounts import personas


def personas(request: HttpRequest) -> dict[str, Any]:
    """Expose the signed-in user's personas to every template."""
    held = personas.personas_of(request.user)
    return {
        "is_admin": personas.ADMIN in held,
        "is_team_lead": personas.TEAM_LEAD in held,
        "is_data_scientist": personas.DATA_SCIENTIST in held,
        "persona_names": sorted(held),
    }
