"""The worker's side of the name check: ask Azure whether a submitted request's global names are free."""

from __future__ import annotations

from typing import Any

from provisioning.azure import key_vaults, resources
from provisioning.azure.clients import AzureClients
from provisioning.engine.key_vaults import record
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
    subscription = spec.workspace.subscription_id
    answers = [
        resources.name_available(clients, subscription=subscription, kind=kind, name=name)
        for kind, name in names_to_check(cr)
    ]
    for answer in answers:
        if answer["kind"] == "key_vault" and not answer["available"]:
            _soft_deleted(clients, subscription, answer)
    name_check_record(request_id=request_id, answers=answers)
    return answers


def _soft_deleted(clients: AzureClients, subscription: str, answer: dict[str, Any]) -> None:
    """A key vault name Azure says is taken may be held by a soft-deleted vault: say until when, and record it."""
    found = key_vaults.deleted_vault(clients, subscription=subscription, name=answer["name"])
    if found is None:
        return
    record(found, subscription_id=subscription)
    answer["soft_deleted"] = True
    answer["frees_on"] = found.scheduled_purge_at.date().isoformat() if found.scheduled_purge_at else ""
    answer["purge_protection"] = found.purge_protection
