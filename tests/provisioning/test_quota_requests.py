"""Quota increase requests: asked by a team lead, approved by an admin, filed with Azure's Quota API (the
stand-in, through azure-mgmt-quota), followed until Azure decides; a request refused for quota then goes through.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from provisioning.engine import capacity_sync
from provisioning.engine import quota_requests as engine
from provisioning.models import AuditEvent, ChangeRequest, CoreUsage, QuotaIncreaseRequest
from provisioning.spec import ClusterSpec, RequestSpec
from provisioning.workflow import quota_requests as service
from provisioning.workflow import services
from provisioning.workflow.transitions import RequestError
from tests import factories
from tests.factories import TUTORIAL_SUBSCRIPTION as SUB
from tests.factories import ChangeRequestFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

Status = QuotaIncreaseRequest.Status
DV2 = "standardDv2Family"
BIG = RequestSpec(
    clusters=(ClusterSpec(name="bigd13", vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=4),)
)


def _family_limit() -> int:
    return CoreUsage.objects.get(subscription_id=SUB, region="eastus2", scope="family", family=DV2).limit


@pytest.fixture
def refreshed(policy: None, standin: Any, azure_clients: Any) -> Any:
    """Usages read from the stand-in: eastus2 allows 24 Dv2 cores."""
    capacity_sync.capacity_refresh(azure_clients)
    assert _family_limit() == 24
    return azure_clients


def _ask(user: Any, limit: int = 32, **kwargs: Any) -> QuotaIncreaseRequest:
    values = {"subscription_id": SUB, "region": "eastus2", "family": DV2, "justification": "Training runs"}
    return service.quota_request_ask(requester=user, requested_limit=limit, **{**values, **kwargs})


def test_refused_for_quota_then_granted_and_the_request_goes_through(
    refreshed: Any, standin: Any, active_workspace: Any, alice: Any, bob: Any, client: Any
) -> None:
    cr = ChangeRequestFactory(workspace=active_workspace, spec=BIG)
    with pytest.raises(RequestError) as refused:
        services.request_submit(request_id=cr.pk, actor=alice)
    assert any("subscription's quota" in p.message for p in refused.value.problems)
    client.force_login(alice)
    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()
    assert "Ask Azure for more quota" in page and "limit=32" in page

    ask = client.post(
        reverse("provisioning:quota_request_new"),
        {
            "subscription_id": SUB,
            "region": "eastus2",
            "family": DV2,
            "requested_limit": 32,
            "justification": "Four D13 nodes for training",
            "change_request": cr.pk,
        },
    )
    assert ask.status_code == 302
    qr = QuotaIncreaseRequest.objects.get()
    assert (qr.status, qr.current_limit, list(qr.waiting.all())) == (Status.SUBMITTED, 24, [cr])

    standin.set_quota(delay=0.4)
    client.force_login(bob)
    assert client.post(reverse("provisioning:quota_request_approve", args=[qr.pk])).status_code == 302
    assert engine.quota_request_file(quota_request_id=qr.pk, clients=refreshed) == Status.IN_PROGRESS
    qr.refresh_from_db()
    assert qr.azure_request_id and qr.next_poll_at is not None and qr.filed_at is not None
    assert service.quota_requests_due(qr.next_poll_at) == ([], [qr.pk])

    time.sleep(0.45)
    assert engine.quota_request_poll(quota_request_id=qr.pk, clients=refreshed) == Status.SUCCEEDED
    qr.refresh_from_db()
    assert (qr.granted_limit, qr.azure_status, _family_limit()) == (32, "Succeeded", 32)
    capacity = client.get(reverse("provisioning:capacity")).content.decode()
    assert f'id="quota-request-{qr.pk}"' in capacity and "granted 32" in capacity

    client.force_login(alice)
    page = client.get(reverse("provisioning:request_detail", args=[cr.pk])).content.decode()
    assert f"Waiting on quota request #{qr.pk}" in page and "submit the request again" in page
    services.request_submit(request_id=cr.pk, actor=alice)
    services.request_approve(request_id=cr.pk, approver=bob)
    assert ChangeRequest.objects.get(pk=cr.pk).status == ChangeRequest.Status.APPROVED
    actions = set(AuditEvent.objects.filter(object_type="quota_request").values_list("action", flat=True))
    assert {
        "quota_request.submitted",
        "quota_request.approved",
        "quota_request.filing",
        "quota_request.in_progress",
        "quota_request.succeeded",
        "quota_request.resumable",
    } <= actions


def test_a_denied_request_shows_azures_reason(
    refreshed: Any, standin: Any, alice: Any, bob: Any, client: Any
) -> None:
    standin.set_quota(maximum=30)
    qr = _ask(alice, 40)
    service.quota_request_approve(quota_request_id=qr.pk, approver=bob)

    assert engine.quota_request_file(quota_request_id=qr.pk, clients=refreshed) == Status.DENIED
    qr.refresh_from_db()
    assert qr.azure_message == "ContactSupport: Request failed, please contact support."
    assert _family_limit() == 24
    for user in (alice, bob):
        client.force_login(user)
        listed = client.get(reverse("provisioning:quota_requests")).content.decode()
        assert "Azure's reason: ContactSupport: Request failed, please contact support." in listed


def test_filing_twice_files_once(refreshed: Any, standin: Any, alice: Any, bob: Any) -> None:
    standin.set_quota(delay=60)
    qr = _ask(alice)
    service.quota_request_approve(quota_request_id=qr.pk, approver=bob)
    service.quota_request_approve(quota_request_id=qr.pk, approver=bob)  # a double click

    first = engine.quota_request_file(quota_request_id=qr.pk, clients=refreshed)
    second = engine.quota_request_file(quota_request_id=qr.pk, clients=refreshed)

    assert (first, second) == (Status.IN_PROGRESS, Status.IN_PROGRESS)
    assert standin.state.count("quota_api.create") == 1
    assert AuditEvent.objects.filter(action="quota_request.approved").count() == 1
    qr.refresh_from_db()
    assert qr.attempts == 1  # the first poll: still in progress, the next one later
    assert service.poll_delay(0).total_seconds() == 30 and service.poll_delay(20).total_seconds() == 3600


def test_asks_are_bounded(refreshed: Any, alice: Any) -> None:
    cases = [
        ({"limit": 24}, "requested_limit"),
        ({"limit": 10_001}, "requested_limit"),
        ({"justification": "more\u202ecores"}, "justification"),
        ({"justification": "x" * 1001}, "justification"),
        ({"justification": " "}, "justification"),
        ({"family": "standardXYZFamily"}, "family"),
        ({"region": "mars"}, "region"),
    ]
    for change, field in cases:
        limit = change.pop("limit", 32)
        with pytest.raises(RequestError) as refused:
            _ask(alice, int(limit), **change)
        assert field in {p.field for p in refused.value.problems}, change
    low = _ask(alice, 120, family="TotalLowPriorityCores")
    assert low.current_limit == 100
    _ask(alice)
    with pytest.raises(RequestError, match="already has an open quota request"):
        _ask(alice, 40)


def test_permissions(refreshed: Any, alice: Any, bob: Any, charlie: Any, dana: Any, client: Any) -> None:
    with pytest.raises(PermissionDenied):
        _ask(dana)
    qr = _ask(alice)
    with pytest.raises(PermissionDenied):
        service.quota_request_approve(quota_request_id=qr.pk, approver=charlie)
    own = _ask(bob, 120, family="TotalLowPriorityCores")
    with pytest.raises(PermissionDenied):
        service.quota_request_approve(quota_request_id=own.pk, approver=bob)
    with pytest.raises(RequestError):
        service.quota_request_reject(quota_request_id=qr.pk, approver=bob, reason="")
    service.quota_request_reject(quota_request_id=qr.pk, approver=bob, reason="Use westeurope")
    qr.refresh_from_db()
    assert (qr.status, qr.reason) == (Status.REJECTED, "Use westeurope")
    with pytest.raises(RequestError):
        service.quota_request_approve(quota_request_id=qr.pk, approver=bob)
    client.force_login(charlie)
    assert client.post(reverse("provisioning:quota_request_approve", args=[own.pk])).status_code == 404
    assert list(service.quota_requests_visible_to(charlie)) == []
    other = factories.admin("erin")
    service.quota_request_approve(quota_request_id=own.pk, approver=other)
    assert QuotaIncreaseRequest.objects.get(pk=own.pk).status == Status.APPROVED
