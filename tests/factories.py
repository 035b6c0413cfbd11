"""factory-boy factories and the tutorial's example, shared by every test module."""

from __future__ import annotations

import factory
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts import personas
from accounts.models import User
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    CoreUsage,
    TeamBudget,
    VmSize,
)
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec

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
    family: str, dedicated: int = 0, low_priority: int = 0, region: str = "eastus2"
) -> TeamBudget:
    """The tutorial team's budget in a family (created or changed)."""
    budget, _ = TeamBudget.objects.update_or_create(
        department="bgmr",
        team="bluegranit",
        region=region,
        family=family,
        defaults={"dedicated_cores": dedicated, "low_priority_cores": low_priority},
    )
    return budget
