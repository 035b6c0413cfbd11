"""Change requests in each state, and what the audit trail and refusals say about them."""

from __future__ import annotations

import pytest

from provisioning.models import AuditEvent, ChangeRequest
from provisioning.spec import RequestSpec
from provisioning.workflow.services import RequestError
from tests.factories import ChangeRequestFactory, tutorial_spec

Status = ChangeRequest.Status
NEW = ChangeRequest.Kind.NEW_WORKSPACE


def actions(cr: ChangeRequest) -> list[str]:
    return list(AuditEvent.objects.filter(request_id=cr.pk).order_by("id").values_list("action", flat=True))


def problem_fields(exc: pytest.ExceptionInfo[RequestError]) -> list[str]:
    return [p.field for p in exc.value.problems]


def draft(user, spec: RequestSpec | None = None) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=user, kind=NEW, spec=spec or tutorial_spec())


def submitted(user, spec: RequestSpec | None = None) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(requester=user, spec=spec or tutorial_spec(), submitted=True)


def approved(user, approver, spec: RequestSpec | None = None) -> ChangeRequest:  # type: ignore[no-untyped-def]
    return ChangeRequestFactory(
        requester=user, approver=approver, spec=spec or tutorial_spec(), approved=True
    )
