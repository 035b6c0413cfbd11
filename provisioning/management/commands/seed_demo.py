"""``manage.py seed_demo [--password P]``: demo users, the admin-maintained policy lists and a sample request.

A development helper (``manage.py demo`` runs it): one user per persona with a known password for
local sign-in, which the settings refuse with DEBUG off unless explicitly allowed. Idempotent:
running it again resets the demo passwords and adds only what is missing.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from accounts import personas
from accounts.models import User
from accounts.services import admin_permissions
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    ChangeRequest,
    Policy,
    TeamBudget,
)
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec
from provisioning.workflow import services

DEMO_SUBSCRIPTION = ("8b41ca0c-0c5a-4c01-b49b-5bb8d329cc27", "Data science (demo)")
# username, first name, last name, persona
DEMO_USERS = (
    ("admin", "Ada", "Admin", personas.ADMIN),
    ("lead", "Lena", "Lead", personas.TEAM_LEAD),
    ("scientist", "Sam", "Scientist", personas.DATA_SCIENTIST),
    ("lead2", "Leo", "Lead", personas.TEAM_LEAD),
)
# Core budgets: (department, team, region, VM family, dedicated, low priority).
DEMO_BUDGETS = (
    ("bgmr", "bluegranit", "eastus2", "standardDSv2Family", 8, 16),
    ("bgmr", "bluegranit", "eastus2", "standardDv2Family", 16, 16),
    ("bgmr", "bluegranit", "eastus2", "standardNVFamily", 6, 12),
    ("fin", "risk", "westeurope", "standardDSv2Family", 8, 16),
    ("fin", "risk", "westeurope", "standardNCSv3Family", 0, 12),
)
DEMO_REGIONS = (
    ("eastus2", "e2", "East US 2"),
    ("westeurope", "we", "West Europe"),
    ("westus2", "w2", "West US 2"),
    ("northeurope", "ne", "North Europe"),
)
DEMO_VM_SIZES = (
    ("STANDARD_DS3_V2", "4 vCPU, 14 GiB: general purpose"),
    ("STANDARD_D13_V2", "8 vCPU, 56 GiB: memory optimized"),
    ("STANDARD_NV6", "6 vCPU, 56 GiB, 1 NVIDIA M60 GPU: visualization"),
    ("STANDARD_NC6S_V3", "6 vCPU, 112 GiB, 1 NVIDIA V100 GPU: training"),
    ("STANDARD_E4DS_V4", "4 vCPU, 32 GiB, local SSD: memory optimized"),
)
# A second team's submitted request, so the admin's approval queue is not empty. The tutorial's own
# example is left for the demo user to create.
SAMPLE_SPEC = RequestSpec(
    workspace=WorkspaceSpec(
        subscription_id=DEMO_SUBSCRIPTION[0],
        region="westeurope",
        department="fin",
        team="risk",
        region_abbv="we",
        environment="dev",
    ),
    clusters=(
        ClusterSpec(name="cpu-cluster", vm_size="STANDARD_DS3_V2", priority="low_priority", max_nodes=4),
        ClusterSpec(name="gpu-cluster", vm_size="STANDARD_NC6S_V3", priority="low_priority", max_nodes=2),
    ),
    members=(
        MemberSpec(principal="lead2@contoso.com", persona="team_lead"),
        MemberSpec(principal="scientist@contoso.com", persona="data_scientist"),
    ),
)


def demo_user(username: str, first: str, last: str, persona: str, *, password: str) -> User:
    """Create or refresh one demo user with its persona and password."""
    user, _ = User.objects.get_or_create(username=username)
    user.first_name, user.last_name = first, last
    user.email = user.upn = f"{username}@contoso.com"
    user.is_staff = persona == personas.ADMIN
    user.set_password(password)
    user.save()
    user.groups.add(Group.objects.get(name=persona))
    if user.is_staff:
        user.user_permissions.add(*admin_permissions())
    return user


def policy_seed() -> None:
    """The allowed subscription, regions and VM sizes; rows already there (maybe edited) are kept."""
    AllowedSubscription.objects.get_or_create(
        subscription_id=DEMO_SUBSCRIPTION[0], defaults={"display_name": DEMO_SUBSCRIPTION[1]}
    )
    for name, abbreviation, display_name in DEMO_REGIONS:
        AllowedRegion.objects.get_or_create(
            name=name, defaults={"abbreviation": abbreviation, "display_name": display_name}
        )
    for name, description in DEMO_VM_SIZES:
        AllowedVmSize.objects.get_or_create(name=name, defaults={"description": description})
    Policy.current()
    for department, team, region, family, dedicated, low_priority in DEMO_BUDGETS:
        TeamBudget.objects.get_or_create(
            department=department,
            team=team,
            region=region,
            family=family,
            defaults={"dedicated_cores": dedicated, "low_priority_cores": low_priority},
        )


def sample_request_seed(requester: User) -> ChangeRequest | None:
    """The sample submitted request, made once: None when the requester already has a request."""
    if ChangeRequest.objects.filter(requester=requester).exists():
        return None
    with transaction.atomic():
        cr = services.request_create(
            requester=requester, kind=ChangeRequest.Kind.NEW_WORKSPACE, spec=SAMPLE_SPEC
        )
        return services.request_submit(request_id=cr.pk, actor=requester)


class Command(BaseCommand):
    help = "Create the demo users (one per persona), the policy lists and a sample request. Idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", default="portal-demo", help="password of every demo user")

    def handle(self, *args: Any, **options: Any) -> None:
        password = options["password"]
        with transaction.atomic():
            users = {
                name: demo_user(name, first, last, persona, password=password)
                for name, first, last, persona in DEMO_USERS
            }
            policy_seed()
        try:
            sample = sample_request_seed(users["lead2"])
        except services.RequestError as exc:  # e.g. an admin has since disallowed West Europe
            sample = None
            self.stderr.write(f"Sample request skipped: {exc.message}")
        if options["verbosity"] >= 1:
            self._report(password, sample)

    def _report(self, password: str, sample: ChangeRequest | None) -> None:
        self.stdout.write(
            f"Demo users: admin (Admin), lead and lead2 (Team Lead), scientist (Data Scientist); "
            f"password '{password}'"
        )
        if sample is not None:
            self.stdout.write(f"Sample request #{sample.pk} ({sample.workspace_name}) submitted by lead2")
        if not settings.DEBUG:
            self.stderr.write(
                "DEBUG is off: these accounts have a known password; do not keep them in production."
            )
