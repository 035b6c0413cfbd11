"""factory-boy factories and the tutorial's example, shared by every test module."""

from __future__ import annotations

import uuid
from typing import Any

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning import naming
from provisioning.arm import KIND_PROVIDER, WORKSPACE_PROVIDER
from provisioning.engine import runs
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    ChangeRequest,
    Cluster,
    CoreUsage,
    Membership,
    ResourceState,
    Run,
    Step,
    TeamBudget,
    VmSize,
    Workspace,
)
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec
from provisioning.workflow import principal_checks, recovery, services

TUTORIAL_SUBSCRIPTION = "8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@contoso.com")
    upn = factory.LazyAttribute(lambda u: f"{u.username}@contoso.com")
    password = factory.django.Password("correct horse battery staple")

    @factory.post_generation
    def persona(self, create: bool, extracted: str | list[str] | None, **kwargs: object) -> None:
        if not create or not extracted:
            return
        names = [extracted] if isinstance(extracted, str) else extracted
        for name in names:
            # get_or_create: transactional tests flush the groups the accounts migration made.
            self.groups.add(Group.objects.get_or_create(name=name)[0])


def team_lead(username: str) -> User:
    return UserFactory(username=username, persona=personas.TEAM_LEAD)


def admin(username: str) -> User:
    return UserFactory(username=username, persona=personas.ADMIN)


def data_scientist(username: str) -> User:
    return UserFactory(username=username, persona=personas.DATA_SCIENTIST)


def allow_tutorial_policy() -> None:
    """The admin-maintained lists with the tutorial's subscription, region and VM sizes."""
    AllowedSubscription.objects.get_or_create(
        subscription_id=TUTORIAL_SUBSCRIPTION, defaults={"display_name": "Data science (tutorial)"}
    )
    AllowedRegion.objects.get_or_create(
        name="eastus2", defaults={"display_name": "East US 2", "abbreviation": "e2"}
    )
    AllowedRegion.objects.get_or_create(
        name="westeurope", defaults={"display_name": "West Europe", "abbreviation": "we"}
    )
    for size in ("STANDARD_DS3_V2", "STANDARD_D13_V2", "STANDARD_NV6"):
        AllowedVmSize.objects.get_or_create(name=size)


def tutorial_workspace(**overrides: object) -> WorkspaceSpec:
    values: dict[str, object] = {
        "subscription_id": TUTORIAL_SUBSCRIPTION,
        "region": "eastus2",
        "department": "bgmr",
        "team": "bluegranit",
        "region_abbv": "e2",
        "environment": "dev",
        "custom_name": "",
        "security_group": "datasciencegroup",
        "data_lake": True,
    }
    values.update(overrides)
    return WorkspaceSpec(**values)  # type: ignore[arg-type]


TUTORIAL_CLUSTERS = (
    ClusterSpec(name="ds3-v2-cluster", vm_size="STANDARD_DS3_V2", priority="low_priority", max_nodes=1),
    ClusterSpec(name="ds13-v2-2ndclust", vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=2),
    ClusterSpec(name="nv6-gpucluster", vm_size="STANDARD_NV6", priority="low_priority", max_nodes=1),
)

TUTORIAL_MEMBERS = (
    MemberSpec(principal="admin1@contoso.com", persona="team_lead"),
    MemberSpec(principal="user1@contoso.com", persona="team_lead"),
    MemberSpec(principal="user2@contoso.com", persona="data_scientist"),
    MemberSpec(principal="user3@contoso.com", persona="data_scientist"),
)


def tutorial_spec(**workspace_overrides: object) -> RequestSpec:
    """The tutorial's example: bgmr / bluegranit / eastus2 / e2 / dev, 3 clusters, 2 leads, 2 scientists."""
    return RequestSpec(
        workspace=tutorial_workspace(**workspace_overrides),
        clusters=TUTORIAL_CLUSTERS,
        members=TUTORIAL_MEMBERS,
    )


# --- capacity: what Azure reports and what admins allot ------------------------------------------------

# (name, family, vCPUs, GPUs, memory GB) of the tutorial's sizes, as Azure lists them in eastus2
TUTORIAL_SIZES = (
    ("Standard_DS3_v2", "standardDSv2Family", 4, 0, 14.0),
    ("Standard_D13_v2", "standardDv2Family", 8, 0, 56.0),
    ("Standard_NV6", "standardNVFamily", 6, 1, 56.0),
)


def vm_size(region: str, name: str, family: str, vcpus: int, gpus: int = 0, memory: float = 8.0) -> VmSize:
    """A size catalog row, as the capacity refresh writes it."""
    return VmSize.objects.create(
        region=region,
        name=name.upper(),
        display_name=name,
        family=family,
        vcpus=vcpus,
        gpus=gpus,
        memory_gb=memory,
        refreshed_at=timezone.now(),
    )


def core_usage(scope: str, family: str, current: int, limit: int, region: str = "eastus2") -> CoreUsage:
    """A usage row of the tutorial's subscription, as the capacity refresh writes it."""
    return CoreUsage.objects.create(
        subscription_id=TUTORIAL_SUBSCRIPTION,
        region=region,
        scope=scope,
        family=family,
        name=f"{family or scope} quota",
        current=current,
        limit=limit,
        refreshed_at=timezone.now(),
    )


def team_budget(
    family: str,
    dedicated: int = 0,
    low_priority: int = 0,
    region: str = "eastus2",
    *,
    team: str = "bluegranit",
    project: str = "",
) -> TeamBudget:
    """The tutorial team's budget in a family (created or changed); ``project``: one of its projects'."""
    budget, _ = TeamBudget.objects.update_or_create(
        department="bgmr",
        team=team,
        project=project,
        region=region,
        family=family,
        defaults={"dedicated_cores": dedicated, "low_priority_cores": low_priority},
    )
    return budget


# --- requests, brought to each status by the real services ---------------------------------------------

Status = ChangeRequest.Status
Kind = ChangeRequest.Kind
# Statuses reached through an approval, in the order a request passes them.
ABANDONED_OR_ROLLED_BACK = (Status.ABANDONED, Status.ROLLING_BACK, Status.ROLLED_BACK)
APPROVED_OR_LATER = (
    Status.APPROVED,
    Status.PROVISIONING,
    Status.SUCCEEDED,
    Status.FAILED,
    *ABANDONED_OR_ROLLED_BACK,
)
WORKER = "test-worker"


def _default_spec(kind: str, n: int) -> RequestSpec | None:
    """What a request of this kind asks for when the test does not say (revocations must say whom)."""
    if kind == Kind.NEW_WORKSPACE:
        return tutorial_spec()
    if kind == Kind.ADD_CLUSTERS:
        return RequestSpec(clusters=(ClusterSpec(name=f"extra{n}", vm_size="STANDARD_DS3_V2"),))
    if kind == Kind.GRANT_ACCESS:
        return RequestSpec(
            members=(MemberSpec(principal=f"member{n}@contoso.com", persona="data_scientist"),)
        )
    return None


def _azure_id(plan: dict[str, Any], step: Step) -> str:
    """What Azure would answer for a step the worker made: object ids for principals, ARM ids otherwise."""
    if step.kind == "principal":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, step.key))
    group = f"/subscriptions/{plan['subscription_id']}/resourceGroups/{plan['names']['resource_group']}"
    if step.kind == "resource_group":
        return group
    workspace = f"{group}/providers/{WORKSPACE_PROVIDER}/{plan['names']['workspace']}"
    if step.kind == "workspace":
        return workspace
    if step.kind == "cluster":
        return f"{workspace}/computes/{step.key.removeprefix('cluster:')}"
    if step.kind in KIND_PROVIDER:  # storage_account:name, key_vault:name...
        return f"{group}/providers/{KIND_PROVIDER[step.kind]}/{step.key.split(':', 1)[1]}"
    if step.kind == "role_grant":
        name = uuid.uuid5(uuid.NAMESPACE_URL, f"{cr_key(plan)}:{step.key}")
        return f"{group}/providers/Microsoft.Authorization/roleAssignments/{name}"
    return ""


def cr_key(plan: dict[str, Any]) -> str:
    return str(plan["names"]["workspace"])


def _failing_key(run: Run, failed_step: str | None) -> str:
    """The step that fails: the one named (or the first of the kind named), else the first storage account
    (a name taken), else the first."""
    steps = list(run.steps.order_by("position").values_list("key", "kind"))
    keys = [key for key, _ in steps]
    by_kind = [key for key, kind in steps if kind == failed_step]
    if by_kind:  # a kind names its first step: "role_grant" fails once the workspace exists
        return by_kind[0]
    if failed_step is not None:
        if failed_step not in keys:
            raise ValueError(f"the plan has no step {failed_step!r}; it has {keys}")
        return failed_step
    return next((k for k in keys if k.startswith("storage_account:")), keys[0])


def _work_the_run(cr: ChangeRequest, *, fail: bool, failed_step: str | None) -> None:
    """What a worker does to the database, without Azure: claim, each step in order, finish.

    As the engine does, a failed step stops the run and the steps not started are blocked.
    """
    run = runs.run_claim(request_id=cr.pk, worker=WORKER)
    if run is None:
        raise RuntimeError(f"request #{cr.pk} has no run to claim")
    failing = _failing_key(run, failed_step) if fail else None
    steps = list(run.steps.exclude(status__in=Step.DONE).order_by("position"))
    for i, step in enumerate(steps):
        runs.step_start(step_id=step.pk)
        if step.key == failing:
            runs.step_finish(
                step_id=step.pk,
                ok=False,
                error_code="StorageAccountAlreadyTaken",
                error_message=f"The storage account named {step.target.split()[-1]} is already taken.",
                correlation_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{cr.pk}:{step.key}")),
                hint="Reject the request and ask for another team or custom name.",
            )
            runs.steps_block(run_id=run.pk, keys=[s.key for s in steps[i + 1 :]])
            break
        runs.step_finish(step_id=step.pk, ok=True, outcome="created", azure_id=_azure_id(cr.plan or {}, step))
    runs.run_finish(run_id=run.pk, worker=WORKER)


class ChangeRequestFactory(factory.django.DjangoModelFactory):
    """A change request in any status, reached through the services production uses.

    ``ChangeRequestFactory()`` is a draft of the tutorial's new workspace by a new team lead; a trait
    (``submitted``, ``approved``, ``rejected``, ``cancelled``, ``provisioning``, ``succeeded``,
    ``failed``) or ``status=`` takes it further. The requester creates and submits (or cancels it, as a
    draft), an admin who is not the requester approves or rejects (``approver=``, else a new admin), and
    a worker's database services claim the run and record each step (no Azure): so the audit chain, the
    plan, the run and the desired-state rows are exactly what production makes. ``reason=`` is the
    rejection's, ``failed_step=`` the plan step that fails (default: the first storage account).

    Two live requests for new workspaces need different names: pass ``spec=tutorial_spec(team=...)``.
    Changes to a workspace take ``workspace=`` (the requester defaults to its owner) and a ``kind``.
    """

    class Meta:
        model = ChangeRequest
        skip_postgeneration_save = True

    class Params:
        draft = factory.Trait(status=Status.DRAFT)
        submitted = factory.Trait(status=Status.SUBMITTED)
        approved = factory.Trait(status=Status.APPROVED)
        rejected = factory.Trait(status=Status.REJECTED)
        cancelled = factory.Trait(status=Status.CANCELLED)
        provisioning = factory.Trait(status=Status.PROVISIONING)
        succeeded = factory.Trait(status=Status.SUCCEEDED)
        failed = factory.Trait(status=Status.FAILED)
        abandoned = factory.Trait(status=Status.ABANDONED)
        rolling_back = factory.Trait(status=Status.ROLLING_BACK)
        rolled_back = factory.Trait(status=Status.ROLLED_BACK)

    status = Status.DRAFT
    workspace = None
    kind = factory.Maybe("workspace", yes_declaration=Kind.ADD_CLUSTERS, no_declaration=Kind.NEW_WORKSPACE)
    requester = factory.Maybe(
        "workspace",
        yes_declaration=factory.SelfAttribute("workspace.owner"),
        no_declaration=factory.SubFactory(UserFactory, persona=personas.TEAM_LEAD),
    )
    spec = factory.LazyAttributeSequence(lambda o, n: _default_spec(o.kind, n))
    approver = None
    reason = "Not this quarter: the team has no budget yet."
    failed_step = None

    @classmethod
    def _build(cls, model_class: type[ChangeRequest], *args: Any, **kwargs: Any) -> ChangeRequest:
        raise TypeError("ChangeRequestFactory makes requests through the services: use create(), not build()")

    @classmethod
    def _create(cls, model_class: type[ChangeRequest], *args: Any, **kwargs: Any) -> ChangeRequest:
        status = kwargs.pop("status")
        requester = kwargs.pop("requester")
        approver = kwargs.pop("approver")
        reason = kwargs.pop("reason")
        failed_step = kwargs.pop("failed_step")
        spec = kwargs.pop("spec")
        kind, workspace = kwargs.pop("kind"), kwargs.pop("workspace")
        if kwargs:
            raise TypeError(f"ChangeRequestFactory sets only what the services set; not {sorted(kwargs)}")
        if spec is None:
            raise TypeError(f"a {kind} request needs a spec (say which memberships to revoke)")
        if isinstance(spec, dict):
            spec = RequestSpec.from_json(spec)

        # The requester joins only when the spec names them: tests say exactly who the members are.
        cr = services.request_create(
            requester=requester, kind=kind, spec=spec, workspace=workspace, lead_joins=False
        )
        if status == Status.CANCELLED:
            services.request_cancel(request_id=cr.pk, actor=requester)
        elif status != Status.DRAFT:
            allow_tutorial_policy()
            services.request_submit(request_id=cr.pk, actor=requester)
        if status in (Status.REJECTED, *APPROVED_OR_LATER):
            approver = approver or UserFactory(persona=personas.ADMIN)
        if status == Status.REJECTED:
            services.request_reject(request_id=cr.pk, approver=approver, reason=reason)
        elif status in APPROVED_OR_LATER:
            approved = services.request_approve(request_id=cr.pk, approver=approver)
            if approved.status != Status.APPROVED:
                raise RuntimeError(f"request #{cr.pk} is over budget: it waits for a second admin's approval")
        cr = ChangeRequest.objects.get(pk=cr.pk)
        if status == Status.PROVISIONING:
            if runs.run_claim(request_id=cr.pk, worker=WORKER) is None:
                raise RuntimeError(f"request #{cr.pk} has no run to claim")
        elif status in (Status.SUCCEEDED, Status.FAILED):
            _work_the_run(cr, fail=status == Status.FAILED, failed_step=failed_step)
        elif status in ABANDONED_OR_ROLLED_BACK:
            # It failed once the workspace existed (at its first grant, unless told), then was abandoned.
            _work_the_run(cr, fail=True, failed_step=failed_step or "role_grant")
            admin = approver or UserFactory(persona=personas.ADMIN)
            if status == Status.ABANDONED:
                recovery.request_keep(request_id=cr.pk, actor=admin, reason="keep what exists")
            else:
                recovery.request_rollback(request_id=cr.pk, actor=admin, reason="give it up")
            if status == Status.ROLLED_BACK:
                _work_the_run(cr, fail=False, failed_step=None)
        cr = ChangeRequest.objects.get(pk=cr.pk)
        if cr.status != status:
            raise RuntimeError(f"request #{cr.pk} ended {cr.status}, not {status}")
        return cr


# --- desired-state rows, runs and steps as plain rows ----------------------------------------------------


def _origin_request(workspace: Workspace) -> ChangeRequest:
    """The request a plain desired-state row belongs to: the workspace's first, else a plain row for it.

    The plain request has no audit events; use ``ChangeRequestFactory`` when the story matters.
    """
    first = workspace.change_requests.order_by("pk").first()
    if first is not None:
        return first
    spec = RequestSpec(
        workspace=WorkspaceSpec(
            subscription_id=workspace.subscription_id,
            region=workspace.region,
            department=workspace.department,
            team=workspace.team,
            region_abbv=workspace.region_abbv,
            environment=workspace.environment,
            custom_name=workspace.custom_name,
            security_group=workspace.security_group,
            data_lake=workspace.data_lake,
        )
    )
    return ChangeRequest.objects.create(
        kind=Kind.NEW_WORKSPACE,
        status=Status.SUCCEEDED,
        requester=workspace.owner,
        workspace=workspace,
        workspace_name=workspace.workspace_name,
        spec=spec.to_json(),
    )


def _names(o: Any) -> naming.ResourceNames:
    return naming.resource_names(
        naming.NamingInput(
            department=o.department,
            team=o.team,
            region=o.region,
            region_abbv=o.region_abbv,
            environment=o.environment,
            custom_name=o.custom_name,
            project=o.project,
        ),
        data_lake=o.data_lake,
    )


class WorkspaceFactory(factory.django.DjangoModelFactory):
    """An active workspace of team ``teamN`` (bgmr, eastus2, dev), named by the convention."""

    class Meta:
        model = Workspace

    subscription_id = TUTORIAL_SUBSCRIPTION
    region = "eastus2"
    department = "bgmr"
    team = factory.Sequence(lambda n: f"team{n}")
    region_abbv = "e2"
    environment = "dev"
    custom_name = ""
    security_group = ""
    data_lake = False
    purpose = "team"
    project = ""
    pool_teams: list[str] = []
    resource_group = factory.LazyAttribute(lambda o: _names(o).resource_group)
    workspace_name = factory.LazyAttribute(lambda o: _names(o).workspace)
    storage_work = factory.LazyAttribute(lambda o: _names(o).storage_work)
    storage_data = factory.LazyAttribute(lambda o: _names(o).storage_data)
    data_lake_name = factory.LazyAttribute(lambda o: _names(o).data_lake)
    key_vault = factory.LazyAttribute(lambda o: _names(o).key_vault)
    registry = factory.LazyAttribute(lambda o: _names(o).registry)
    app_insights = factory.LazyAttribute(lambda o: _names(o).app_insights)
    azure_id = factory.LazyAttribute(
        lambda o: (
            f"/subscriptions/{o.subscription_id}/resourceGroups/{o.resource_group}/providers/"
            f"{WORKSPACE_PROVIDER}/{o.workspace_name}"
        )
    )
    owner = factory.SubFactory(UserFactory, persona=personas.TEAM_LEAD)
    state = ResourceState.ACTIVE


class ClusterFactory(factory.django.DjangoModelFactory):
    """An active low-priority DS3_v2 cluster (0 to 1 node), of its workspace's first request."""

    class Meta:
        model = Cluster

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda n: f"cluster{n}")
    vm_size = "STANDARD_DS3_V2"
    priority = "low_priority"
    min_nodes = 0
    max_nodes = 1
    idle_seconds = 120
    state = ResourceState.ACTIVE
    change_request = factory.LazyAttribute(lambda o: _origin_request(o.workspace))


class MembershipFactory(factory.django.DjangoModelFactory):
    """An active data scientist ``memberN@contoso.com``, of its workspace's first request."""

    class Meta:
        model = Membership

    workspace = factory.SubFactory(WorkspaceFactory)
    principal_type = Membership.PrincipalType.USER
    principal_name = factory.Sequence(lambda n: f"member{n}@contoso.com")
    persona = "data_scientist"
    state = ResourceState.ACTIVE
    change_request = factory.LazyAttribute(lambda o: _origin_request(o.workspace))


class RunFactory(factory.django.DjangoModelFactory):
    """A queued run of an approved request (its next number), without steps."""

    class Meta:
        model = Run

    change_request = factory.SubFactory(
        ChangeRequestFactory, approved=True, spec=factory.Sequence(lambda n: tutorial_spec(team=f"run{n}"))
    )
    number = factory.LazyAttribute(lambda o: o.change_request.runs.count() + 1)
    status = Run.Status.QUEUED


class StepFactory(factory.django.DjangoModelFactory):
    """A pending step of a run (a resource group, unless told otherwise), after the run's last step."""

    class Meta:
        model = Step

    run = factory.SubFactory(RunFactory)
    kind = "resource_group"
    key = factory.Sequence(lambda n: f"step:{n}")
    target = factory.LazyAttribute(lambda o: f"{o.kind.replace('_', ' ')} {o.key}")
    status = Step.Status.PENDING
    position = factory.LazyAttribute(lambda o: o.run.steps.count())


def members_found(cr: ChangeRequest) -> None:
    """Entra ID found every member of a submitted request (what the worker's check stores)."""
    answers = [
        {
            "principal": t.principal,
            "principal_type": t.principal_type,
            "field": t.field,
            "object_id": "00000000-0000-0000-0000-000000000001",
            "display_name": t.principal,
            "problem": "",
            "hint": "",
        }
        for t in principal_checks.principals_to_check(cr)
    ]
    principal_checks.principal_check_record(request_id=cr.pk, answers=answers)
