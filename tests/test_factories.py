"""The factories build what production builds: each status through the services, with a valid audit chain."""

from __future__ import annotations

import pytest

from provisioning.audit import audit_verify_chain
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    Cluster,
    Membership,
    ResourceState,
    Run,
    Step,
    Workspace,
)
from provisioning.workflow import selectors
from tests.factories import (
    ChangeRequestFactory,
    ClusterFactory,
    MembershipFactory,
    RunFactory,
    StepFactory,
    tutorial_spec,
)

pytestmark = pytest.mark.django_db

Status = ChangeRequest.Status

# The audit actions each status leaves, in order.
STORIES = {
    Status.DRAFT: ["request.created"],
    Status.CANCELLED: ["request.created", "request.cancelled"],
    Status.SUBMITTED: ["request.created", "request.submitted"],
    Status.REJECTED: ["request.created", "request.submitted", "request.rejected"],
    Status.APPROVED: ["request.created", "request.submitted", "request.approved"],
    Status.PROVISIONING: ["request.created", "request.submitted", "request.approved", "request.provisioning"],
}
FAILED_STORY = [*STORIES[Status.PROVISIONING], "request.failed"]
STORIES[Status.ABANDONED] = [*FAILED_STORY, "request.abandoned"]
STORIES[Status.ROLLING_BACK] = [*FAILED_STORY, "request.rolling_back"]
STORIES[Status.ROLLED_BACK] = [*FAILED_STORY, "request.rolling_back", "request.rolled_back"]


def _request_actions(cr: ChangeRequest) -> list[str]:
    events = AuditEvent.objects.filter(request_id=cr.pk, object_type="change_request").order_by("id")
    return list(events.values_list("action", flat=True))


@pytest.mark.parametrize("status", Status.values)
def test_every_status_is_reached_through_the_services(status: str, alice, bob) -> None:
    cr = ChangeRequestFactory(requester=alice, approver=bob, **{status: True})

    assert cr.status == status
    story = STORIES.get(status) or [*STORIES[Status.PROVISIONING], f"request.{status}"]
    assert _request_actions(cr) == story
    assert audit_verify_chain() == (AuditEvent.objects.count(), None)
    approved = status not in (Status.DRAFT, Status.CANCELLED, Status.SUBMITTED, Status.REJECTED)
    assert (cr.plan is not None, Workspace.objects.filter(pk=cr.workspace_id).exists()) == (
        approved,
        approved,
    )
    assert cr.approver == (bob if approved or status == Status.REJECTED else None)


def test_a_succeeded_request_leaves_its_desired_state_active(alice) -> None:
    cr = ChangeRequestFactory(requester=alice, succeeded=True)

    assert cr.workspace.state == ResourceState.ACTIVE
    assert cr.workspace.azure_id.endswith("/workspaces/bgmrbluegranite2devws")
    assert set(Cluster.objects.filter(change_request=cr).values_list("state", flat=True)) == {"active"}
    members = Membership.objects.filter(change_request=cr)
    assert members.count() == 5 and not members.exclude(state="active").exists()
    assert not members.filter(object_id="").exists()
    run = Run.objects.get(change_request=cr)
    assert (run.status, run.lease_owner) == (Run.Status.SUCCEEDED, "")
    assert not run.steps.exclude(status=Step.Status.SUCCEEDED).exists()


def test_a_failed_request_names_its_failed_step_and_blocks_the_rest(alice) -> None:
    cr = ChangeRequestFactory(requester=alice, failed=True)

    run = Run.objects.get(change_request=cr)
    failed = run.steps.get(status=Step.Status.FAILED)
    assert failed.key == "storage_account:bgmrbluegranite2devwork"
    assert failed.error_code == "StorageAccountAlreadyTaken"
    assert (
        run.steps.filter(status=Step.Status.BLOCKED).count()
        == run.steps.filter(position__gt=failed.position).count()
    )
    assert cr.workspace.state == ResourceState.FAILED
    event = AuditEvent.objects.filter(request_id=cr.pk, action="request.failed").get()
    assert event.message.startswith("storage account bgmrbluegranite2devwork: StorageAccountAlreadyTaken")


def test_a_provisioning_request_has_a_claimed_run(alice) -> None:
    cr = ChangeRequestFactory(requester=alice, provisioning=True)

    run = Run.objects.get(change_request=cr)
    assert (run.status, run.deliveries) == (Run.Status.RUNNING, 1)
    assert set(run.steps.values_list("status", flat=True)) == {Step.Status.PENDING}


def test_changes_to_a_workspace_default_to_its_owner(alice) -> None:
    workspace = ChangeRequestFactory(requester=alice, succeeded=True).workspace

    more = ChangeRequestFactory(workspace=workspace, approved=True)

    assert (more.kind, more.requester) == (ChangeRequest.Kind.ADD_CLUSTERS, alice)
    assert Cluster.objects.filter(change_request=more).count() == 1


def test_fields_only_the_services_set_are_refused(alice) -> None:
    with pytest.raises(TypeError):
        ChangeRequestFactory(requester=alice, name_check=[])


def test_plain_rows_follow_the_naming_convention_and_hang_together() -> None:
    membership = MembershipFactory(persona="team_lead")
    workspace = membership.workspace
    cluster = ClusterFactory(workspace=workspace)
    step = StepFactory()

    assert workspace.workspace_name == f"bgmr{workspace.team}e2devws"
    assert workspace.storage_work == f"bgmr{workspace.team}e2devwork"
    assert cluster.change_request == membership.change_request == workspace.change_requests.get()
    assert selectors.workspaces_managed_by(workspace.owner).get() == workspace
    assert (step.run.number, step.run.change_request.status) == (1, Status.APPROVED)
    assert RunFactory(change_request=step.run.change_request).number == 2
    assert ChangeRequestFactory(spec=tutorial_spec(team="other")).workspace_name == "bgmrothere2devws"
