import pytest
from django.core.exceptions import PermissionDenied

from provisioning import services
from provisioning.models import AuditEvent, ChangeRequest, Cluster, Membership, Workspace
from tests.factories import tutorial_spec

pytestmark = pytest.mark.django_db(transaction=False)


def test_tutorial_request_goes_from_draft_to_approved(
    policy, alice, bob, rq_queue, django_capture_on_commit_callbacks
):
    cr = services.request_create(requester=alice, kind="new_workspace", spec=tutorial_spec())
    services.request_submit(request_id=cr.pk, actor=alice)
    with pytest.raises(PermissionDenied):
        services.request_approve(request_id=cr.pk, approver=alice)
    with django_capture_on_commit_callbacks(execute=True):
        services.request_approve(request_id=cr.pk, approver=bob)
    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.APPROVED
    ws = Workspace.objects.get()
    assert ws.workspace_name == "bgmrbluegranite2devws"
    assert Cluster.objects.count() == 3
    assert Membership.objects.count() == 5
    assert [e.action for e in AuditEvent.objects.order_by("id")] == [
        "request.created",
        "request.submitted",
        "request.approved",
    ]
    assert rq_queue.job_ids == ["provision-request-%d-run-1" % cr.pk]
    assert cr.enqueued_at is not None or ChangeRequest.objects.get(pk=cr.pk).enqueued_at is not None
