"""Globally unique names are checked with Azure by a worker before an admin can approve."""

from __future__ import annotations

import pytest

from provisioning import jobs
from provisioning.engine.name_checks import request_check_names
from provisioning.models import ChangeRequest
from provisioning.workflow import services
from provisioning.workflow.services import RequestError
from tests.factories import ChangeRequestFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("loopback_only")]


def _submitted(alice, django_capture_on_commit_callbacks) -> ChangeRequest:
    with django_capture_on_commit_callbacks(execute=True):  # the check is queued once the submit commits
        return ChangeRequestFactory(requester=alice, submitted=True)


def test_submit_queues_the_check(policy, alice, rq_queue, django_capture_on_commit_callbacks) -> None:
    cr = _submitted(alice, django_capture_on_commit_callbacks)
    assert f"check-names-{cr.pk}" in rq_queue.job_ids


def test_storage_name_taken_elsewhere_is_caught_before_approval(
    policy, alice, bob, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks, client
) -> None:
    standin.take_name("storage", "bgmrbluegranite2devdata")
    cr = _submitted(alice, django_capture_on_commit_callbacks)

    answers = request_check_names(request_id=cr.pk, clients=azure_clients)

    taken = [a for a in answers if not a["available"]]
    assert [a["name"] for a in taken] == ["bgmrbluegranite2devdata"]
    with pytest.raises(RequestError) as refused:
        services.request_approve(request_id=cr.pk, approver=bob)
    assert "bgmrbluegranite2devdata" in refused.value.problems[0].message
    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.SUBMITTED
    client.force_login(bob)
    page = client.get(f"/requests/{cr.pk}/").content.decode()
    assert "Taken elsewhere in Azure" in page and "bgmrbluegranite2devdata" in page


def test_free_names_let_the_approval_through(
    policy, alice, bob, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks, settings
) -> None:
    cr = _submitted(alice, django_capture_on_commit_callbacks)
    assert request_check_names(request_id=cr.pk, clients=azure_clients)
    assert ChangeRequest.objects.get(pk=cr.pk).names_taken == []
    services.request_approve(request_id=cr.pk, approver=bob)
    assert ChangeRequest.objects.get(pk=cr.pk).status == ChangeRequest.Status.APPROVED


def test_the_job_counts_taken_names(
    policy, alice, standin, azure_clients, rq_queue, django_capture_on_commit_callbacks
) -> None:
    standin.take_name("key_vault", "bgmrbluegranite2devkv")
    cr = _submitted(alice, django_capture_on_commit_callbacks)
    assert jobs.check_names(cr.pk) == 1
