"""Azure failing in the ways it does: throttling, outages, replication delay, failed operations, conflicts.

The engine runs in-process against the stand-in (real SDK clients over HTTPS); each test injects one
fault and checks what the request, its steps and its page say afterwards.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.urls import reverse
from django.utils.html import escape

from provisioning import arm
from provisioning.azure import common, ml
from provisioning.engine import executor as engine
from provisioning.models import AuditEvent, ChangeRequest, Run, Step
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow import services
from tests.factories import TUTORIAL_CLUSTERS, TUTORIAL_SUBSCRIPTION, ChangeRequestFactory, tutorial_workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]

MEMBER = "user1@contoso.com"
# What the small request below creates (team "faults", no data lake, no security group).
GROUP = "bgmr-faults-eastus2-dev"
WORKSPACE = "bgmrfaultse2devws"
STORAGE_WORK = "bgmrfaultse2devwork"


def _small_spec(*, clusters: int = 0, team: str = "faults") -> RequestSpec:
    """A workspace with one member (and optionally a cluster): few steps, so each test stays quick."""
    return RequestSpec(
        workspace=tutorial_workspace(team=team, data_lake=False, security_group=""),
        clusters=TUTORIAL_CLUSTERS[:clusters],
        members=(MemberSpec(principal=MEMBER, persona="team_lead"),),
    )


def _approved(alice: Any, bob: Any, spec: RequestSpec) -> ChangeRequest:
    return ChangeRequestFactory(requester=alice, approver=bob, spec=spec, approved=True)


def _step(cr: ChangeRequest, key: str, run: int = 1) -> Step:
    return Step.objects.get(run__change_request=cr, run__number=run, key=key)


def _page(client: Any, user: Any, cr: ChangeRequest) -> str:
    client.force_login(user)
    response = client.get(reverse("provisioning:request_detail", args=[cr.pk]))
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def fast_step_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Step retries without the production backoff (2 s to 30 s); the number of attempts is unchanged."""
    monkeypatch.setattr(engine, "STEP_BACKOFF", (0.05,))


def test_throttling_with_retry_after_is_waited_out(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    standin.fail_next("storage.create", status=429, retry_after=1, times=1)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    # The two accounts are created in parallel, so the log interleaves them: read the throttled account's own
    # requests (the 429 answer, then azure-core's retry that succeeded).
    creates = [r for r in standin.state.requests if r.operation == "storage.create"]
    throttled_path = next(r.path for r in creates if r.status == 429)
    first, *retried = [r.status for r in creates if r.path == throttled_path]
    assert first == 429
    assert retried and all(c < 300 for c in retried)
    assert [r.status for r in creates].count(429) == 1
    assert len(standin.state.list_resources("storage")) == 2
    # azure-core waited out the throttling itself: the step needed a single attempt.
    throttled = Step.objects.filter(run__change_request=cr, kind="storage_account")
    assert sorted(throttled.values_list("attempts", flat=True)) == [1, 1]


def test_a_step_throttled_beyond_its_attempts_keeps_waiting_and_succeeds(
    policy, alice, bob, standin, azure_clients, rq_queue, fast_step_retries
) -> None:
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    # Every attempt is azure-core's call and its three retries, and the two accounts share the 60 throttled
    # answers: about 30 each outlast six attempts (24 calls).
    standin.fail_next("storage.create", status=429, retry_after=0.01, times=60)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    attempts = Step.objects.filter(run__change_request=cr, kind="storage_account").values_list(
        "attempts", flat=True
    )
    assert max(attempts) > engine.STEP_ATTEMPTS  # throttling is waited out, never a failure
    assert standin.state.status_codes("storage.create").count(429) == 60
    assert len(standin.state.list_resources("storage")) == 2


def test_throttling_fails_a_step_only_after_the_patience(
    policy, alice, bob, standin, azure_clients, rq_queue, fast_step_retries, monkeypatch
) -> None:
    monkeypatch.setattr(engine, "THROTTLE_PATIENCE_SECONDS", 0.0)
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    standin.fail_next("storage.create", status=429, retry_after=0.01, times=1000)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED

    step = _step(cr, f"storage_account:{STORAGE_WORK}")
    assert (step.error_code, step.attempts) == ("TooManyRequests", engine.STEP_ATTEMPTS)


def test_built_in_roles_are_looked_up_once_per_process(
    policy, alice, bob, standin, azure_clients, rq_queue
) -> None:
    from provisioning.azure import authz

    authz._built_in.clear()
    standin.add_user(MEMBER)
    first = _approved(alice, bob, _small_spec())
    assert engine.request_execute(request_id=first.pk, clients=azure_clients) == Run.Status.SUCCEEDED
    looked_up = standin.state.count("role_definition.list")
    standin.state.clear_requests()
    second = _approved(alice, bob, _small_spec(team="faultsb"))

    assert engine.request_execute(request_id=second.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    # The second run looks up only the custom roles by name (ensured each run); built-in ones are known.
    custom = Step.objects.filter(run__change_request=second, kind="custom_role").count()
    assert 0 < standin.state.count("role_definition.list") <= custom < looked_up


def test_an_outage_fails_the_step_after_bounded_attempts_with_a_clear_message(
    policy, alice, bob, standin, azure_clients, rq_queue, client, fast_step_retries
) -> None:
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    # Retry-After 50 ms keeps azure-core's own three retries per attempt fast.
    standin.fail_next("storage.create", status=503, retry_after=0.05, times=100)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.FAILED
    step = _step(cr, f"storage_account:{STORAGE_WORK}")
    assert step.status == Step.Status.FAILED
    assert step.error_code == "ServiceUnavailable"
    assert "temporarily unavailable" in step.error_message
    assert step.hint == common.DEFAULT_HINT
    assert 1 < step.attempts <= engine.STEP_ATTEMPTS
    # Every attempt is azure-core's call plus its three retries, so the outage saw a bounded number of calls.
    assert standin.state.count("storage.create") <= 2 * 4 * engine.STEP_ATTEMPTS
    assert _step(cr, "workspace").status == Step.Status.BLOCKED
    assert not standin.state.list_resources("storage")
    failed = AuditEvent.objects.get(request_id=cr.pk, action="request.failed")
    assert failed.message.startswith(f"{step.target}: ServiceUnavailable: ")
    page = _page(client, bob, cr)
    assert escape(step.target) in page
    assert "ServiceUnavailable" in page
    assert escape(step.error_message) in page
    assert escape(step.hint) in page


def test_a_principal_not_yet_replicated_is_retried_until_it_appears(
    policy, alice, bob, standin, azure_clients, rq_queue, monkeypatch
) -> None:
    # Steps retry every second here (production backs off 2, 4, 8, 15 s), within the same six attempts.
    monkeypatch.setattr(engine, "STEP_BACKOFF", (1.0,))
    standin.add_user(MEMBER)
    standin.principal_not_found_for(3)
    cr = _approved(alice, bob, _small_spec())

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    codes = standin.state.status_codes("role_assignment.create")
    assert 400 in codes and codes[-1] == 201
    grants = Step.objects.filter(run__change_request=cr, kind="role_grant")
    assert grants.count() == grants.filter(status=Step.Status.SUCCEEDED).count() > 0
    assert max(grants.values_list("attempts", flat=True)) > 1
    assert len(standin.state.list_role_assignments()) == grants.count()


@pytest.mark.parametrize(
    ("operation", "code", "key", "kind"),
    [
        ("compute.create", "ClusterCreationFailed", f"cluster:{TUTORIAL_CLUSTERS[0].name}", "compute"),
        ("registry.create", "RegistryCreationFailed", "container_registry:bgmrfaultse2devcr", "registry"),
    ],
)
def test_a_failed_long_running_operation_fails_its_step_and_a_retry_resumes(
    policy, alice, bob, standin, azure_clients, rq_queue, client, operation, code, key, kind
) -> None:
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec(clusters=1))
    message = "Allocation failed: no capacity in eastus2 right now."
    standin.lro_fail(operation, code, message)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED

    step = _step(cr, key)
    assert (step.status, step.error_code, step.attempts) == (Step.Status.FAILED, code, 1)
    assert message in step.error_message
    page = _page(client, bob, cr)
    assert code in page and escape(message) in page
    # Azure keeps the resource, in state Failed.
    assert [r["properties"]["provisioningState"] for r in standin.state.list_resources(kind)] == ["Failed"]
    done_in_run_1 = set(
        Step.objects.filter(run__change_request=cr, run__number=1, status=Step.Status.SUCCEEDED).values_list(
            "key", flat=True
        )
    )

    # The fault was for one operation only: the admin retries.
    services.request_retry(request_id=cr.pk, actor=bob)
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED

    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.SUCCEEDED
    second = {s.key: s.status for s in Step.objects.filter(run__change_request=cr, run__number=2)}
    assert {k for k, status in second.items() if status == Step.Status.SKIPPED} == done_in_run_1
    assert "resource_group" in done_in_run_1
    assert second[key] == Step.Status.SUCCEEDED
    assert set(second.values()) == {Step.Status.SKIPPED, Step.Status.SUCCEEDED}
    assert [r["properties"]["provisioningState"] for r in standin.state.list_resources(kind)] == ["Succeeded"]


def test_an_existing_resource_group_without_the_portals_tag_is_left_alone(
    policy, alice, bob, standin, azure_clients, rq_queue, client
) -> None:
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    azure_clients.resources(TUTORIAL_SUBSCRIPTION).resource_groups.create_or_update(
        GROUP, {"location": "eastus2", "tags": {"owner": "someone else"}}
    )
    standin.state.clear_requests()

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED

    step = _step(cr, "resource_group")
    assert step.error_code == "NotManagedByPortal"
    assert "exists, not managed by the portal" in step.error_message
    assert step.hint == common.HINTS["NotManagedByPortal"]
    group = standin.state.resource(f"/subscriptions/{TUTORIAL_SUBSCRIPTION}/resourceGroups/{GROUP}")
    assert group["tags"] == {"owner": "someone else"}
    assert [r for r in standin.state.list_resources() if f"/resourcegroups/{GROUP}/" in r["id"].lower()] == []
    writes = [r for r in standin.state.requests if r.method in ("PUT", "PATCH", "DELETE")]
    assert [w.path for w in writes if GROUP.lower() in w.path.lower()] == []
    assert "exists, not managed by the portal" in _page(client, bob, cr)


def test_a_storage_name_taken_in_another_subscription_fails_with_azures_code_and_a_hint(
    policy, alice, bob, standin, azure_clients, rq_queue, client
) -> None:
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    standin.take_name("storage", STORAGE_WORK)

    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.FAILED

    step = _step(cr, f"storage_account:{STORAGE_WORK}")
    assert step.error_code == "StorageAccountAlreadyTaken"
    assert step.attempts == 1  # a taken name is not transient: no retries
    assert step.hint == common.HINTS["StorageAccountAlreadyTaken"]
    cr.refresh_from_db()
    assert cr.status == ChangeRequest.Status.FAILED
    page = _page(client, bob, cr)
    assert "StorageAccountAlreadyTaken" in page and escape(step.hint) in page


@pytest.fixture
def provisioned(policy, alice, bob, standin, azure_clients, rq_queue) -> None:  # type: ignore[no-untyped-def]
    """The small workspace, provisioned: what an interrupted later attempt finds in Azure."""
    standin.add_user(MEMBER)
    cr = _approved(alice, bob, _small_spec())
    assert engine.request_execute(request_id=cr.pk, clients=azure_clients) == Run.Status.SUCCEEDED


def _cluster_left_creating(azure_clients: Any, standin: Any, *, fails: bool, seconds: float = 1.5) -> Any:
    """A worker killed right after sending a cluster's PUT: Azure's operation runs on without it."""
    from azure.ai.ml.entities import AmlCompute

    if fails:
        standin.lro_fail("compute.create", "ClusterCreationFailed", "Allocation failed: try again later.")
    standin.set_latency("compute.create", seconds)
    cluster = TUTORIAL_CLUSTERS[0]
    ml = azure_clients.ml(TUTORIAL_SUBSCRIPTION, GROUP, WORKSPACE)
    ml.compute.begin_create_or_update(
        AmlCompute(
            name=cluster.name,
            size=cluster.vm_size,
            location="eastus2",
            tier="low_priority",
            min_instances=0,
            max_instances=cluster.max_nodes,
            idle_time_before_scale_down=cluster.idle_seconds,
            tags={arm.OWNERSHIP_TAG: arm.OWNERSHIP_VALUE},
        )
    )  # the poller is dropped: nobody waits for the result
    (left,) = standin.state.list_resources("compute")
    assert left["properties"]["provisioningState"] == "Creating"
    standin.set_latency("compute.create", 0)  # what comes next is quick; the operation above keeps its time
    return cluster


def _ensure_cluster(azure_clients: Any, cluster: Any) -> common.Outcome:
    return ml.ensure_cluster(
        azure_clients,
        subscription=TUTORIAL_SUBSCRIPTION,
        resource_group=GROUP,
        workspace=WORKSPACE,
        name=cluster.name,
        location="eastus2",
        vm_size=cluster.vm_size,
        priority=cluster.priority,
        min_nodes=cluster.min_nodes,
        max_nodes=cluster.max_nodes,
        idle_seconds=cluster.idle_seconds,
        tags={arm.OWNERSHIP_TAG: arm.OWNERSHIP_VALUE},
    )


@pytest.mark.parametrize("fails", [True, False], ids=["creation-fails", "creation-succeeds"])
def test_a_cluster_an_earlier_attempt_left_creating_is_waited_for(
    provisioned, standin, azure_clients, fails
) -> None:
    cluster = _cluster_left_creating(azure_clients, standin, fails=fails)

    outcome = _ensure_cluster(azure_clients, cluster)

    # Not "unchanged" while Azure was still creating it: a failure would have gone unnoticed.
    (held,) = standin.state.list_resources("compute")
    assert held["properties"]["provisioningState"] == "Succeeded"
    assert outcome.action == ("created" if fails else "unchanged")
    assert standin.state.count("compute.create") == (2 if fails else 1)


def test_an_operation_that_outlasts_the_wait_fails_the_step_with_what_azure_is_doing(
    provisioned, standin, azure_clients
) -> None:
    cluster = _cluster_left_creating(azure_clients, standin, fails=False, seconds=60)  # the wait is 1 s
    ml = azure_clients.ml(TUTORIAL_SUBSCRIPTION, GROUP, WORKSPACE)

    with pytest.raises(common.AzureStepError) as raised:
        common.settled("compute cluster", cluster.name, lambda: ml.compute.get(cluster.name), seconds=1)

    assert raised.value.code == "StillInProgress" and not raised.value.transient
    assert f"compute cluster '{cluster.name}' is still creating in Azure" in raised.value.message
    assert "retry the run once it has finished" in raised.value.hint


def _workspace_left_creating(azure_clients: Any, standin: Any, *, fails: bool) -> str:
    """The workspace's PUT sent by an attempt that was killed; Azure's operation runs on without it."""
    workspace_id = arm.arm_id(
        TUTORIAL_SUBSCRIPTION, GROUP, "Microsoft.MachineLearningServices/workspaces", WORKSPACE
    )
    standin.state.delete(workspace_id)  # as before the first attempt reached it
    if fails:
        standin.lro_fail("workspace.create", "InternalServerError", "The workspace could not be provisioned.")
    standin.set_latency("workspace.create", 1.5)
    body = {"location": "eastus2", "tags": {arm.OWNERSHIP_TAG: arm.OWNERSHIP_VALUE}, "properties": {}}
    azure_clients.resources(TUTORIAL_SUBSCRIPTION).resources.begin_create_or_update_by_id(
        workspace_id, body, api_version=ml.WORKSPACE_API_VERSION
    )  # nobody waits for the result
    assert standin.state.resource(workspace_id)["properties"]["provisioningState"] == "Creating"
    standin.set_latency("workspace.create", 0)
    return workspace_id


def _resource_id(standin: Any, kind: str, name: str) -> str:
    (found,) = [r["id"] for r in standin.state.list_resources(kind) if r["name"] == name]
    return str(found)


def _ensure_workspace(azure_clients: Any, dependencies: dict[str, str], **options: Any) -> common.Outcome:
    """``ensure_workspace`` of the small workspace, wired to ``dependencies``."""
    return ml.ensure_workspace(
        azure_clients,
        subscription=TUTORIAL_SUBSCRIPTION,
        resource_group=GROUP,
        name=WORKSPACE,
        location="eastus2",
        tags={arm.OWNERSHIP_TAG: arm.OWNERSHIP_VALUE},
        **options,
        **dependencies,
    )


def _workspace_dependencies(standin: Any) -> dict[str, str]:
    """The ids of what the small workspace depends on, as ``ensure_workspace`` takes them."""
    return {
        "storage_id": _resource_id(standin, "storage", STORAGE_WORK),
        "key_vault_id": _resource_id(standin, "key_vault", "bgmrfaultse2devkv"),
        "registry_id": _resource_id(standin, "registry", "bgmrfaultse2devcr"),
        "app_insights_id": _resource_id(standin, "app_insights", "bgmrfaultse2devai"),
    }


@pytest.mark.parametrize("fails", [True, False], ids=["creation-fails", "creation-succeeds"])
def test_a_workspace_an_earlier_attempt_left_creating_is_waited_for(
    provisioned, standin, azure_clients, fails
) -> None:
    workspace_id = _workspace_left_creating(azure_clients, standin, fails=fails)

    outcome = _ensure_workspace(azure_clients, _workspace_dependencies(standin))

    held = standin.state.resource(workspace_id)
    assert held["properties"]["provisioningState"] == "Succeeded"
    assert outcome.action == ("created" if fails else "unchanged")
    assert standin.state.count("workspace.create") == (2 if fails else 1)
    if fails:  # provisioned again with what it depends on
        assert (
            held["properties"]["storageAccount"].lower()
            == _resource_id(standin, "storage", STORAGE_WORK).lower()
        )


def test_a_workspace_deployment_an_earlier_attempt_left_running_is_waited_for_not_sent_again(
    provisioned, standin, azure_clients
) -> None:
    """A step stopped waiting for its deployment (its worker died, or azure-ai-ml's progress polls were throttled
    past azure-core's retries): the retried step waits for that deployment instead of deploying again."""
    from azure.ai.ml.entities import Workspace as MlWorkspace

    workspace_id = _resource_id(standin, "workspace", WORKSPACE)
    dependencies = _workspace_dependencies(standin)
    standin.state.delete(workspace_id)  # as before the earlier attempt's deployment created it
    standin.set_latency("workspace.deployment", 1.5)
    standin.state.clear_requests()
    left = azure_clients.ml(TUTORIAL_SUBSCRIPTION, GROUP, WORKSPACE).workspaces.begin_create(
        MlWorkspace(
            name=WORKSPACE,
            location="eastus2",
            tags={arm.OWNERSHIP_TAG: arm.OWNERSHIP_VALUE},
            storage_account=dependencies["storage_id"],
            key_vault=dependencies["key_vault_id"],
            container_registry=dependencies["registry_id"],
            application_insights=dependencies["app_insights_id"],
        )
    )  # the earlier attempt: its deployment runs on, nobody waits for it here

    outcome = _ensure_workspace(azure_clients, dependencies)

    assert outcome.action == "created"
    assert standin.state.resource(workspace_id)["properties"]["provisioningState"] == "Succeeded"
    assert standin.state.count("workspace.deployment") == 1  # deployed once, not twice
    assert standin.state.count("deployment.list") == 1
    left.result()  # the earlier attempt's poller, finished before the next test


@pytest.mark.parametrize("fails", [False, True], ids=["deployed", "deployment-fails"])
def test_a_workspace_deployment_is_waited_for_without_listing_its_progress(
    provisioned, standin, azure_clients, fails
) -> None:
    """azure-ai-ml's own wait lists the deployment's operations every 5 s while it runs (a third of a new
    workspace's reads against ARM's limit); the step waits on the deployment's status instead, and lists once."""
    workspace_id = _resource_id(standin, "workspace", WORKSPACE)
    dependencies = _workspace_dependencies(standin)
    standin.state.delete(workspace_id)
    standin.set_latency("workspace.deployment", 6)  # past azure-ai-ml's first 5 s sleep
    if fails:
        standin.lro_fail(
            "workspace.deployment", "InternalServerError", "The workspace could not be provisioned."
        )
    standin.state.clear_requests()

    def ensure() -> common.Outcome:
        return _ensure_workspace(azure_clients, dependencies, look_first=False)

    if fails:
        with pytest.raises(common.AzureStepError) as raised:
            ensure()
        assert raised.value.code == "InternalServerError"  # the resource's error, inside DeploymentFailed
        assert "could not be provisioned" in str(raised.value)
        assert standin.state.resource(workspace_id) is None
    else:
        assert ensure().action == "created"
        assert standin.state.resource(workspace_id)["properties"]["provisioningState"] == "Succeeded"
    assert standin.state.count("workspace.deployment") == 1
    # azure-ai-ml's own wait lists 3 times here (at 5 s, 10 s, and once done); a failure is raised unlisted
    assert standin.state.count("deployment.operations") == (0 if fails else 1)
