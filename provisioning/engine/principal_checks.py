"""The worker's side of the principal check: look every member and group of a submitted request up in
Entra ID (Microsoft Graph), then store the verdicts on the request."""

from __future__ import annotations

from typing import Any

from provisioning.azure.clients import AzureClients
from provisioning.models import ChangeRequest
from provisioning.workflow.principal_checks import (
    guests_allowed,
    principal_check_record,
    principal_verdict,
    principals_to_check,
)


def request_check_principals(*, request_id: int, clients: AzureClients | None = None) -> list[dict[str, Any]]:
    """Judge every principal of a submitted request; Graph errors fail the job (the sweeper retries)."""
    cr = ChangeRequest.objects.select_related("workspace").get(pk=request_id)
    if cr.status != ChangeRequest.Status.SUBMITTED:
        return []
    targets = principals_to_check(cr)
    guests = guests_allowed(cr)
    answers: list[dict[str, Any]] = []
    if targets:
        with AzureClients.given_or_own(clients) as azure:
            graph = azure.graph()
            for target in targets:
                found = (
                    graph.groups_named(target.principal)
                    if target.principal_type == "group"
                    else graph.users_matching(target.principal)
                )
                answers.append(principal_verdict(target, found, guests=guests))
    principal_check_record(request_id=request_id, answers=answers)
    return answers
