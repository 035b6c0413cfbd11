"""What a run reads before it writes: nothing it knows is missing, everything an earlier attempt may have sent.

ARM's read limit binds a burst of new workspaces before its write limit does, so a step does not look for what
cannot exist yet: a resource, a deployment or a grant inside a resource group the same run created, on the
step's first attempt. A retried step, and a step a dead worker had started, look first as always.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisioning import arm
from provisioning.azure import authz, resources
from provisioning.engine import executor as engine
from provisioning.engine import runs
from provisioning.models import ChangeRequest, Run, Step
from provisioning.spec import MemberSpec, RequestSpec
from tests.factories import TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, tutorial_workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

MEMBER = "user1@contoso.com"
GROUP = "bgmr-reads-eastus2-dev"
GROUP_ID = f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourcegroups/{GROUP}"
STORAGE_WORK = "bgmrreadse2devwork"
WORKSPACE = "bgmrreadse2devws"
# What the workspace's resource group holds once the request has run (lower-case ARM paths).
INSIDE = (
    f"{GROUP_ID}/providers/microsoft.storage/storageaccounts/{STORAGE_WORK}",
    f"{GROUP_ID}/providers/microsoft.storage/storageaccounts/bgmrreadse2devdata",
    f"{GROUP_ID}/providers/microsoft.keyvault/vaults/bgmrreadse2devkv",
    f"{GROUP_ID}/providers/microsoft.containerregistry/registries/bgmrreadse2devcr",
    f"{GROUP_ID}/providers/microsoft.insights/components/bgmrreadse2devai",
)


def _approved(alice: Any, bob: Any, standin: Any) -> ChangeRequest:
    standin.add_user(MEMBER)
    spec = RequestSpec(
        workspace=tutorial_workspace(team="reads", data_lake=False, security_group=""),
        members=(MemberSpec(principal=MEMBER, persona="team_lead"),),
    )
    return ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True)


def _on(standin: Any, path: str) -> list[str]:
    """The methods sent to one resource, in the order they arrived."""
    records = sorted(standin.state.requests, key=lambda r: r.arrived)
    return [r.method for r in records if r.path.lower() == path]


def test_a_new_resource_group_is_filled_without_looking_first(
    policy, alice, bob, standin, azure_clients
) -> None:
    cr = _approved(alice, bob, standin)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    assert _on(standin, GROUP_ID)[:2] == ["GET", "PUT"]  # the group itself is looked for
    for path in INSIDE:
        assert _on(standin, path)[0] == "PUT", path  # (a key vault's later GETs poll its creation)
    assert standin.state.count("role_assignment.get") == 0
    assert standin.state.count("deployment.list") == 0
    workspace = f"{GROUP_ID}/providers/microsoft.machinelearningservices/workspaces/{WORKSPACE}"
    deployed = min(r.arrived for r in standin.state.requests if r.operation == "workspace.deployment")
    before = [r for r in standin.state.requests if r.path.lower() == workspace and r.arrived < deployed]
    assert len(before) == 1  # azure-ai-ml's own, choosing between create and update; none of the portal's
    grants = Step.objects.filter(run__change_request=cr, kind="role_grant")
    assert grants.count() == 7  # one member on seven scopes
    assert set(grants.values_list("outcome", flat=True)) == {"created"}
    assert len(standin.state.list_role_assignments()) == 7


def test_a_retried_step_looks_before_it_sends_again(
    policy, alice, bob, standin, azure_clients, monkeypatch
) -> None:
    monkeypatch.setattr(engine, "STEP_BACKOFF", (0.05,))
    cr = _approved(alice, bob, standin)
    # More 429s than azure-core retries within one call (shared by the two storage accounts): a first attempt
    # fails and its step tries again.
    standin.fail_next("storage.create", status=429, retry_after=0.01, times=30)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    retried = Step.objects.filter(run__change_request=cr, kind="storage_account", attempts__gte=2)
    assert retried
    for step in retried:
        sent = _on(standin, next(p for p in INSIDE if p.endswith("/" + step.target.rsplit(" ", 1)[-1])))
        first_get = sent.index("GET")
        assert set(sent[:first_get]) == {"PUT"}  # the first attempt did not look
        assert "PUT" in sent[first_get:]  # the retry looked, found nothing and sent it


def test_a_step_a_dead_worker_started_looks_first_when_the_run_is_resumed(
    policy, alice, bob, standin, azure_clients
) -> None:
    cr = _approved(alice, bob, standin)
    # The dead worker: it created the group, started the storage step and sent its PUT, then died.
    run = runs.run_claim(request_id=cr.pk, worker="dead:1")
    assert run is not None
    group = resources.ensure_resource_group(
        azure_clients,
        subscription=TUTORIAL_SUBSCRIPTION,
        name=GROUP,
        location="eastus2",
        tags=arm.ownership_tags(),
    )
    rows = {s.key: s for s in run.steps.all()}
    runs.step_start(step_id=rows["resource_group"].pk)
    runs.step_finish(step_id=rows["resource_group"].pk, ok=True, outcome="created", azure_id=group.azure_id)
    runs.step_start(step_id=rows[f"storage_account:{STORAGE_WORK}"].pk)
    resources.ensure_storage_account(
        azure_clients,
        subscription=TUTORIAL_SUBSCRIPTION,
        resource_group=GROUP,
        name=STORAGE_WORK,
        location="eastus2",
        tags=arm.ownership_tags(),
        hierarchical_namespace=False,
        look_first=False,
    )
    Run.objects.filter(pk=run.pk).update(lease_expires_at=run.started_at)
    standin.state.clear_requests()

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    assert _on(standin, INSIDE[0]) == ["GET"]  # found, not sent again
    assert Step.objects.get(pk=rows[f"storage_account:{STORAGE_WORK}"].pk).outcome == "unchanged"
    for path in INSIDE[2:]:  # the steps nobody had started still know the group is new
        assert _on(standin, path)[0] == "PUT", path


def test_a_grant_sent_again_without_looking_is_unchanged(policy, standin, azure_clients) -> None:
    principal = standin.add_user(MEMBER)
    resources.ensure_resource_group(
        azure_clients,
        subscription=TUTORIAL_SUBSCRIPTION,
        name=GROUP,
        location="eastus2",
        tags=arm.ownership_tags(),
    )
    reader = authz.RoleCatalog(azure_clients, TUTORIAL_SUBSCRIPTION).role_id("Reader")
    grant = {
        "subscription": TUTORIAL_SUBSCRIPTION,
        "scope": f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourceGroups/{GROUP}",
        "role_definition_id": reader,
        "principal_id": principal,
        "principal_type": "user",
        "look_first": False,
    }

    first = authz.ensure_role_assignment(azure_clients, **grant)
    again = authz.ensure_role_assignment(azure_clients, **grant)

    assert (first.action, again.action) == ("created", "unchanged")
    assert first.azure_id == again.azure_id
    assert len(standin.state.list_role_assignments()) == 1
    assert standin.state.status_codes("role_assignment.create") == [201, 200]
