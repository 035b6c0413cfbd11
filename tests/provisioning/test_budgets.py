"""Team budgets and the capacity refresh as services: who may, what is checked against which subscription,
and what happens when Redis is down.

The budget form's errors, its audit and its quota job, and the refresh button, are tested through the
web client in ``test_views_capacity``.
"""

from __future__ import annotations

import socket

import pytest
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from provisioning.capacity import budgets
from provisioning.capacity.budgets import BudgetError, team_budget_problems, team_budget_set
from provisioning.models import AllowedSubscription, AuditEvent, CoreUsage, TeamBudget
from tests import factories
from tests.factories import WorkspaceFactory

pytestmark = pytest.mark.django_db

Scope = CoreUsage.Scope
OTHER_SUBSCRIPTION = "0f0e0d0c-0b0a-4909-8807-060504030201"
TEAM = {"department": "bgmr", "team": "bluegranit", "region": "eastus2", "family": "standardDv2Family"}


def problems(**figures: object) -> dict[str, str]:
    values: dict[str, object] = {**TEAM, "dedicated_cores": 8, "low_priority_cores": 8, **figures}
    return {p.field: p.message for p in team_budget_problems(**values)}  # type: ignore[arg-type]


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def redis_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(settings.RQ_QUEUES["provisioning"], "URL", f"redis://127.0.0.1:{_unused_port()}/0")


@pytest.fixture
def other_subscription(policy: None) -> None:
    """A second allowed subscription with room to spare: 100 Dv2 cores and 200 low-priority cores."""
    AllowedSubscription.objects.create(subscription_id=OTHER_SUBSCRIPTION, display_name="Shared research")
    CoreUsage.objects.bulk_create(
        [
            CoreUsage(
                subscription_id=OTHER_SUBSCRIPTION,
                region="eastus2",
                scope=scope,
                family=family,
                name=f"{family or scope} quota",
                current=0,
                limit=limit,
                refreshed_at=timezone.now(),
            )
            for scope, family, limit in [
                (Scope.FAMILY, "standardDv2Family", 100),
                (Scope.LOW_PRIORITY_TOTAL, "", 200),
            ]
        ]
    )


# --- what is checked ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("team", "message"),
    [
        ({"department": "1bgm"}, "its department is 1 to 4 lowercase letters and digits"),
        ({"department": "bgmrx"}, "its department is 1 to 4 lowercase letters and digits"),
        ({"team": "blue-granit"}, "its name is 1 to 24 lowercase letters and digits"),
        ({"team": ""}, "its name is 1 to 24 lowercase letters and digits"),
    ],
)
def test_the_team_must_be_one_the_naming_convention_can_make(policy: None, team: dict, message: str) -> None:
    assert message in problems(**team)["team"]


def test_the_region_must_be_one_the_portal_allows(policy: None) -> None:
    assert problems(region="westus") == {"region": "'westus' is not a region the portal allows."}


def test_without_a_catalog_or_limits_read_from_azure_any_family_and_figures_are_accepted(
    policy: None,
) -> None:
    assert problems(family="standardHBv3Family", dedicated_cores=5000, low_priority_cores=5000) == {}


def test_a_family_is_required(policy: None) -> None:
    assert problems(family="") == {"family": "Choose a VM family."}


def test_the_limits_are_those_of_the_subscription_the_team_works_in(
    policy: None, other_subscription: None
) -> None:
    factories.core_usage(Scope.FAMILY, "standardDv2Family", 0, 24)
    factories.core_usage(Scope.LOW_PRIORITY_TOTAL, "", 0, 40)
    WorkspaceFactory(team="bluegranit")  # in the tutorial's subscription

    refused = problems(dedicated_cores=50, low_priority_cores=50)

    assert set(refused) == {"dedicated_cores", "low_priority_cores"}
    assert "the subscription's limit in eastus2 (24)" in refused["dedicated_cores"]
    assert "regional low-priority limit in eastus2 (40)" in refused["low_priority_cores"]


def test_a_team_without_workspaces_may_use_the_roomiest_active_subscription(
    policy: None, other_subscription: None
) -> None:
    factories.core_usage(Scope.FAMILY, "standardDv2Family", 0, 24)

    assert problems(dedicated_cores=50, low_priority_cores=150) == {}
    assert "(200)" in problems(low_priority_cores=250)["low_priority_cores"]
    AllowedSubscription.objects.filter(subscription_id=OTHER_SUBSCRIPTION).update(is_active=False)
    assert "(24)" in problems(dedicated_cores=50)["dedicated_cores"]


# --- setting a budget ------------------------------------------------------------------------------------


def test_only_admins_set_budgets(policy: None, alice, dana) -> None:  # type: ignore[no-untyped-def]
    for user in (alice, dana):
        with pytest.raises(PermissionDenied):
            team_budget_set(actor=user, **TEAM, dedicated_cores=8, low_priority_cores=8)
    assert not TeamBudget.objects.exists()
    assert not AuditEvent.objects.exists()


def test_a_refused_budget_says_every_problem_and_saves_nothing(policy: None, bob) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(BudgetError) as refused:
        team_budget_set(actor=bob, **{**TEAM, "family": ""}, dedicated_cores=-1, low_priority_cores=-2)

    assert [p.field for p in refused.value.problems] == ["family", "dedicated_cores", "low_priority_cores"]
    assert str(refused.value) == "; ".join(p.message for p in refused.value.problems)
    assert not TeamBudget.objects.exists()
    assert not AuditEvent.objects.exists()


def test_what_the_admin_typed_is_tidied_before_it_is_saved(
    policy: None, bob, rq_queue, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        budget = team_budget_set(
            actor=bob,
            department=" BGMR ",
            team="BlueGranit ",
            region=" eastus2",
            family="standardDv2Family ",
            dedicated_cores=8,
            low_priority_cores=4,
        )

    assert (budget.department, budget.team, budget.region, budget.family) == (
        "bgmr",
        "bluegranit",
        "eastus2",
        "standardDv2Family",
    )
    event = AuditEvent.objects.get(action="budget.set")
    assert (
        event.message == "bgmr/bluegranit in eastus2, Standard Dv2 Family: 8 dedicated, 4 low-priority cores"
    )
    assert rq_queue.job_ids == [f"team-quota-bgmr-bluegranit-eastus2-{event.pk}"]


def test_saving_the_same_figures_again_asks_azure_again(
    policy: None, bob, rq_queue, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            team_budget_set(actor=bob, **TEAM, dedicated_cores=8, low_priority_cores=4)

    first, second = AuditEvent.objects.filter(action="budget.set").order_by("id")
    assert first.before is None and second.before == second.after == first.after
    assert TeamBudget.objects.count() == 1
    assert sorted(rq_queue.job_ids) == sorted(
        f"team-quota-bgmr-bluegranit-eastus2-{event.pk}" for event in (first, second)
    )


@pytest.mark.django_db(transaction=True)  # django-rq enqueues at once only outside a transaction
def test_a_budget_is_kept_when_redis_is_down(policy: None, bob, redis_down: None, caplog) -> None:  # type: ignore[no-untyped-def]
    team_budget_set(actor=bob, **TEAM, dedicated_cores=8, low_priority_cores=4)

    assert TeamBudget.objects.get().dedicated_cores == 8
    assert AuditEvent.objects.filter(action="budget.set").count() == 1
    assert "save the budget again later" in caplog.text


@pytest.mark.django_db(transaction=True)  # django-rq enqueues at once only outside a transaction
def test_the_quota_job_says_when_it_could_not_be_queued(redis_down: None) -> None:
    assert (
        budgets.team_quota_enqueue(department="bgmr", team="bluegranit", region="eastus2", job_id="q")
        is False
    )


# --- the capacity refresh --------------------------------------------------------------------------------------


def test_only_admins_refresh_capacity(policy: None, alice, rq_queue) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PermissionDenied):
        budgets.capacity_refresh_enqueue(actor=alice)
    assert rq_queue.job_ids == []


@pytest.mark.django_db(transaction=True)  # django-rq enqueues at once only outside a transaction
def test_a_refresh_with_redis_down_is_reported_unavailable(policy: None, bob, redis_down: None) -> None:  # type: ignore[no-untyped-def]
    assert budgets.capacity_refresh_enqueue(actor=bob) == "unavailable"
