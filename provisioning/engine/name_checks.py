"""The worker's side of the name check: ask Azure whether a submitted request's global names are free."""

from __future__ import annotations

from typing import Any

from provisioning.azure import resources
from provisioning.azure.clients import AzureClients
from provisioning.models import ChangeRequest
from provisioning.spec import RequestSpec
from provisioning.workflow.name_checks import name_check_record, names_to_check


def request_check_names(*, request_id: int, clients: AzureClients | None = None) -> list[dict[str, Any]]:
    """Ask Azure about every globally unique name, then store the answers on the request."""
    cr = ChangeRequest.objects.get(pk=request_id)
    spec = RequestSpec.from_json(cr.spec)
    if spec.workspace is None or cr.status != ChangeRequest.Status.SUBMITTED:
        return []
    clients = clients or AzureClients.from_settings()
    answers = [
        resources.name_available(clients, subscription=spec.workspace.subscription_id, kind=kind, name=name)
        for kind, name in names_to_check(cr)
    ]
    name_check_record(request_id=request_id, answers=answers)
    return answers
