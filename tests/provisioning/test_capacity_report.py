"""The capacity report's figures, read directly: which rows each figure counts and what the lines derive.

How the page shows them (charts, the idle families, empty states, a refused quota) is tested through the
web client in ``test_views_capacity``.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.capacity import report
from provisioning.capacity.report import Figures
from provisioning.models import AllowedRegion, AllowedSubscription, CoreUsage, ResourceState, WorkspaceQuota
from provisioning.spec import ClusterSpec, RequestSpec
from tests import factories
from tests.factories import (
    TUTORIAL_SUBSCRIPTION,
    ChangeRequestFactory,
    ClusterFactory,
    WorkspaceFactory,
    core_usage,
    team_budget,
    tutorial_spec,
)

pytestmark = pytest.mark.django_db

Scope = CoreUsage.Scope
DV2 = "standardDv2Family"
DSV2 = "standardDSv2Family"
OTHER_SUBSCRIPTION = "0f0e0d0c-0b0a-4909-8807-060504030201"
TUTORIAL_TEAM = ("bgmr", "bluegranit", "eastus2")


@pytest.fixture
def catalog(policy: None) -> None:
    for row in factories.TUTORIAL_SIZES:
        factories.vm_size("eastus2", *row)


def line(**figures: object) -> Figures:
    values: dict[str, object] = {"key": DV2, "label": "Standard Dv2 Family", "priority": "dedicated"}
    values.update({"used": None, "limit": None, **figures})
    return Figures(**values)  # type: ignore[arg-type]


def eastus2() -> report.RegionCapacity:
    (region,) = [r for r in report.capacity_overview().regions if r.region.name == "eastus2"]
    return region


# --- one line's derived figures ------------------------------------------------------------------------------


def test_over_allocation_is_what_the_budgets_give_beyond_the_limit() -> None:
    assert line(limit=24, allocated=32).over_allocated == 8
    assert line(limit=24, allocated=16).over_allocated == 0
    assert line(limit=None, allocated=32).over_allocated == 0  # no limit read: nothing to compare with


def test_the_pending_shortfall_is_how_far_every_pending_cluster_would_pass_the_limit() -> None:
    assert line(used=20, limit=24, pending=16).pending_shortfall == 12
    assert line(used=4, limit=24, pending=16).pending_shortfall == 0
    assert line(used=None, limit=24, pending=16).pending_shortfall == 0
    assert line(used=20, limit=24, pending=0).pending_shortfall == 0


def test_a_line_is_shown_when_anything_is_on_it_and_idle_with_only_a_limit() -> None:
    assert not line().shown
    assert line(limit=24).shown and line(limit=24).idle
    for figure in ("used", "allocated", "held", "pending"):
        busy = line(limit=24, **{figure: 1})
        assert busy.shown and not busy.idle, figure


# --- where the figures come from ---------------------------------------------------------------------------


def test_azures_figures_are_summed_over_the_active_allowed_subscriptions(catalog: None) -> None:
    AllowedSubscription.objects.create(subscription_id=OTHER_SUBSCRIPTION, display_name="Shared")
    core_usage(Scope.FAMILY, DV2, 4, 24)
    CoreUsage.objects.create(
        subscription_id=OTHER_SUBSCRIPTION,
        region="eastus2",
        scope=Scope.FAMILY,
        family=DV2,
        name="Standard Dv2 Family vCPUs",
        current=6,
        limit=10,
        refreshed_at=timezone.now(),
    )

    (dv2,) = eastus2().families
    assert (dv2.used, dv2.limit) == (10, 34)
    assert eastus2().subscriptions == sorted([TUTORIAL_SUBSCRIPTION, OTHER_SUBSCRIPTION])

    AllowedSubscription.objects.filter(subscription_id=OTHER_SUBSCRIPTION).update(is_active=False)
    (dv2,) = eastus2().families
    assert (dv2.used, dv2.limit) == (4, 24)
    assert eastus2().subscriptions == [TUTORIAL_SUBSCRIPTION]


def test_inactive_regions_are_left_out_and_the_overview_is_as_fresh_as_its_latest_region(
    policy: None,
) -> None:
    AllowedRegion.objects.filter(name="westeurope").update(is_active=False)
    earlier = timezone.now() - timedelta(hours=3)
    core_usage(Scope.DEDICATED_TOTAL, "", 30, 100)
    CoreUsage.objects.update(refreshed_at=earlier)

    overview = report.capacity_overview()

    assert [r.region.name for r in overview.regions] == ["eastus2"]
    assert overview.refreshed_at == earlier
    assert overview.regions[0].usage_known and overview.regions[0].anything


def test_a_region_never_read_has_no_azure_figures(policy: None) -> None:
    (west,) = [r for r in report.capacity_overview().regions if r.region.name == "westeurope"]

    assert (west.refreshed_at, west.usage_known, west.anything) == (None, False, False)
    assert (west.dedicated_total.used, west.dedicated_total.limit) == (None, None)
    assert report.capacity_overview().refreshed_at is None


def test_pending_cores_are_those_of_submitted_requests_only(catalog: None, alice, bob) -> None:  # type: ignore[no-untyped-def]
    ChangeRequestFactory(requester=alice, submitted=True)  # D13_v2 dedicated 2 x 8; DS3 and NV6 low priority
    ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="drafted"))
    ChangeRequestFactory(requester=alice, approver=bob, spec=tutorial_spec(team="refused"), rejected=True)

    assert report.pending_by_team() == {
        TUTORIAL_TEAM: {
            (DV2, "dedicated"): 16,
            (DSV2, "low_priority"): 4,
            ("standardNVFamily", "low_priority"): 6,
        }
    }


def test_a_change_to_a_workspace_is_pending_for_the_workspaces_team(catalog: None) -> None:
    workspace = WorkspaceFactory(team="falcon")
    spec = RequestSpec(clusters=(ClusterSpec("big", "STANDARD_D13_V2", "dedicated", max_nodes=3),))
    ChangeRequestFactory(workspace=workspace, spec=spec, submitted=True)

    assert report.pending_by_team() == {("bgmr", "falcon", "eastus2"): {(DV2, "dedicated"): 24}}


def test_held_cores_count_the_clusters_of_live_workspaces(catalog: None) -> None:
    live = WorkspaceFactory(team="falcon")
    ClusterFactory(workspace=live, vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=2)
    ClusterFactory(workspace=live, vm_size="STANDARD_DS3_V2", max_nodes=3, state=ResourceState.PENDING)
    ClusterFactory(workspace=live, vm_size="STANDARD_DS3_V2", max_nodes=5, state=ResourceState.REVOKED)
    retired = WorkspaceFactory(team="retired", state=ResourceState.REVOKED)
    ClusterFactory(workspace=retired, vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=4)

    assert report.held_by_team() == {
        ("bgmr", "falcon", "eastus2"): {(DV2, "dedicated"): 16, (DSV2, "low_priority"): 12}
    }


def test_a_region_adds_up_the_teams_held_pending_and_budgeted_cores(catalog: None, alice) -> None:  # type: ignore[no-untyped-def]
    falcon = WorkspaceFactory(team="falcon")
    ClusterFactory(workspace=falcon, vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=1)
    ChangeRequestFactory(requester=alice, submitted=True)
    team_budget(DV2, dedicated=32, low_priority=8)
    team_budget(DV2, dedicated=100, region="westeurope")  # another region's budget

    region = eastus2()

    dv2 = next(f for f in region.families if f.key == DV2)
    assert (dv2.allocated, dv2.held, dv2.pending) == (32, 8, 16)
    low = {f.key: f for f in region.low_priority_families}
    assert (low[DV2].allocated, low[DSV2].pending, low["standardNVFamily"].pending) == (8, 4, 6)
    assert (low[DV2].used, low[DV2].limit) == (None, None)  # Azure reports low priority only as a total
    assert (
        region.dedicated_total.allocated,
        region.dedicated_total.held,
        region.dedicated_total.pending,
    ) == (32, 8, 16)
    assert (region.low_priority_total.allocated, region.low_priority_total.pending) == (8, 10)


# --- budget rows -------------------------------------------------------------------------------------------


def test_a_budget_row_lists_azures_quota_in_each_active_workspace_of_the_team(catalog: None) -> None:
    budget = team_budget(DV2, dedicated=16)
    applied = WorkspaceFactory(team="bluegranit", custom_name="bgmrbluegranita")
    waiting = WorkspaceFactory(team="bluegranit", custom_name="bgmrbluegranitb")
    WorkspaceFactory(team="bluegranit", custom_name="bgmrbluegranitc", state=ResourceState.PENDING)
    WorkspaceFactory(team="other")
    WorkspaceQuota.objects.create(
        workspace=applied, family=DV2, requested=16, applied=16, status="Success", applied_at=timezone.now()
    )
    WorkspaceQuota.objects.create(workspace=waiting, family=DSV2, requested=8, applied=8, status="Success")
    ClusterFactory(workspace=applied, vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=1)

    (row,) = report.budget_rows(report.demands())

    assert (row.budget, row.team, row.family_label) == (budget, "bgmr/bluegranit", "Standard Dv2 Family")
    assert (row.held_dedicated, row.held_low_priority, row.pending_dedicated) == (8, 0, 0)
    assert [(q.workspace_name, q.requested, q.applied, q.ok, q.not_yet) for q in row.quotas] == [
        ("bgmrbluegranitaws", 16, 16, True, False),
        ("bgmrbluegranitbws", None, None, False, True),  # its quota is for another family
    ]


def test_the_budget_form_offers_known_teams_active_regions_and_known_families(catalog: None) -> None:
    WorkspaceFactory(team="falcon")
    team_budget("standardHBv3Family", dedicated=8)
    AllowedRegion.objects.filter(name="westeurope").update(is_active=False)

    choices = report.budget_choices()

    assert choices["teams"] == [("bgmr/bluegranit", "bgmr/bluegranit"), ("bgmr/falcon", "bgmr/falcon")]
    assert choices["regions"] == [("eastus2", "East US 2 (eastus2)")]
    assert [value for value, _ in choices["families"]] == [
        DSV2,
        DV2,
        "standardHBv3Family",
        "standardNVFamily",
    ]
