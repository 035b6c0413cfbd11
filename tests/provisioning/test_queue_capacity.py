"""Deciding requests that ask for cores from the approval queue: the page's capacity checks are made together
(a fixed number of queries), they say what each request's own check says, and a decision goes back to the
queue as it was filtered."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.azure.quotas import UsageReading
from provisioning.capacity import checks as capacity
from provisioning.models import ChangeRequest, CoreUsage
from provisioning.spec import ClusterSpec, MemberSpec, RequestSpec
from provisioning.workflow import name_checks
from tests import factories
from tests.factories import ChangeRequestFactory, ClusterFactory, WorkspaceFactory, tutorial_spec

pytestmark = pytest.mark.django_db

Kind = ChangeRequest.Kind
Status = ChangeRequest.Status
QUEUE = reverse("provisioning:approval_queue")
DSV2, DV2, NV = "standardDSv2Family", "standardDv2Family", "standardNVFamily"


@pytest.fixture
def catalog(policy: None) -> None:
    for row in factories.TUTORIAL_SIZES:
        factories.vm_size("eastus2", *row)


@pytest.fixture
def quota(catalog: None) -> None:
    """Azure's usages of the tutorial's subscription: room in every family."""
    for family in (DSV2, DV2, NV):
        factories.core_usage(CoreUsage.Scope.FAMILY, family, 0, 100)
    factories.core_usage(CoreUsage.Scope.DEDICATED_TOTAL, "", 0, 200)
    factories.core_usage(CoreUsage.Scope.LOW_PRIORITY_TOTAL, "", 0, 200)


def _budget(team: str, dedicated: int = 40, low_priority: int = 40) -> None:
    for family in (DSV2, DV2, NV):
        factories.team_budget(family, dedicated, low_priority)
    if team != "bluegranit":
        from provisioning.models import TeamBudget

        TeamBudget.objects.filter(team="bluegranit").update(team=team)


def _clean(cr: ChangeRequest) -> ChangeRequest:
    """Azure found every name free and Entra ID every member (what the workers' checks store)."""
    if cr.kind == Kind.NEW_WORKSPACE:
        answers = [
            {"kind": "storage", "name": "x", "available": True, "reason": "", "message": ""},
        ]
        name_checks.name_check_record(request_id=cr.pk, answers=answers)
    factories.members_found(cr)
    return ChangeRequest.objects.get(pk=cr.pk)


def _asking(alice: Any, team: str = "bluegranit") -> ChangeRequest:
    """A new workspace with the tutorial's three clusters (4 + 16 + 6 cores), its checks clean."""
    return _clean(ChangeRequestFactory(requester=alice, spec=tutorial_spec(team=team), submitted=True))


def _rows(client: Any, **params: Any) -> dict[int, Any]:
    return {row.cr.pk: row for row in client.get(QUEUE, params).context["waiting"]}


def test_a_request_within_budget_and_quota_is_approved_from_the_queue(
    client, quota, alice, bob, rq_queue
) -> None:
    _budget("bluegranit")
    cr = _asking(alice)
    client.force_login(bob)

    row = _rows(client)[cr.pk]
    assert (row.blocker, row.capacity) == ("", "fits")
    page = client.get(QUEUE).content.decode()
    assert f'action="{reverse("provisioning:request_approve", args=[cr.pk])}"' in page
    assert "within budget and quota" in page

    client.post(reverse("provisioning:request_approve", args=[cr.pk]), {"next": QUEUE})
    cr.refresh_from_db()
    assert (cr.status, cr.approver) == (Status.APPROVED, bob)


def test_over_budget_or_not_fully_checked_is_decided_on_its_page(client, quota, alice, bob) -> None:
    _budget("bluegranit")
    over = _asking(alice)
    _budget("bluegranit", dedicated=8)  # cut since: the D13_v2 cluster's 16 dedicated cores no longer fit
    unbudgeted = _asking(alice, team="nobudget")  # no budget for its team: a note, not checked in full
    client.force_login(bob)

    rows = _rows(client)

    assert (rows[over.pk].blocker, rows[over.pk].capacity) == ("it goes over a budget or quota", "over")
    assert rows[unbudgeted.pk].capacity == "unchecked"
    assert "read the notes on its page" in rows[unbudgeted.pk].blocker
    page = client.get(QUEUE).content.decode()
    assert reverse("provisioning:request_approve", args=[over.pk]) not in page
    assert "over budget or quota" in page


def test_the_queues_verdicts_follow_a_budget_change_and_azures_usage(
    client, quota, alice, bob, rq_queue
) -> None:
    """The verdicts are kept between views (the checks' queries are not made again), and a budget set by an
    admin or a refresh of Azure's usages shows at the next view."""
    from provisioning.capacity import budgets, store

    _budget("bluegranit")
    cr = _asking(alice)
    _budget("bluegranit", dedicated=8)  # cut since (before the first view)
    client.force_login(bob)
    with CaptureQueriesContext(connection) as first:
        assert _rows(client)[cr.pk].capacity == "over"
    computed = len(first)
    with CaptureQueriesContext(connection) as kept:
        assert _rows(client)[cr.pk].capacity == "over"
    assert len(kept) <= computed - 5  # the checks' five queries are not made again

    for family in (DSV2, DV2, NV):
        budgets.team_budget_set(
            actor=bob,
            department="bgmr",
            team="bluegranit",
            region="eastus2",
            family=family,
            dedicated_cores=40,
            low_priority_cores=40,
        )
    assert _rows(client)[cr.pk].capacity == "fits"

    sub = f"/subscriptions/{factories.TUTORIAL_SUBSCRIPTION}/usages"
    full = [  # Azure's usages read again: the D13_v2's family (Dv2) is used up by something else
        UsageReading(f"{sub}/0", "vmFamily", "Standard DSv2 Family Cluster Dedicated vCPUs", 0, 100),
        UsageReading(f"{sub}/1", "vmFamily", "Standard Dv2 Family Cluster Dedicated vCPUs", 100, 100),
        UsageReading(f"{sub}/2", "vmFamily", "Standard NV Family Cluster Dedicated vCPUs", 0, 100),
        UsageReading(f"{sub}/3", "dedicatedCores", "Total Cluster Dedicated Regional vCPUs", 100, 200),
        UsageReading(f"{sub}/4", "lowPriorityCores", "Total Cluster LowPriority Regional vCPUs", 0, 200),
    ]
    store.usage_store(factories.TUTORIAL_SUBSCRIPTION, "eastus2", full)
    with CaptureQueriesContext(connection) as again:
        assert _rows(client)[cr.pk].capacity == "over"  # the family's quota is used up in Azure
    assert len(again) >= len(kept) + 5  # checked again


def test_a_requests_usage_not_yet_read_is_not_approved_from_the_queue(client, catalog, alice, bob) -> None:
    _budget("bluegranit")
    cr = _asking(alice)  # no CoreUsage rows: the subscription's quota was never read
    client.force_login(bob)

    assert _rows(client)[cr.pk].capacity == "unchecked"


def test_the_pages_checks_say_what_each_requests_own_check_says(quota, alice, bob) -> None:
    """The batched checks of a page and the one-request check agree line for line, notes included: new
    workspaces of several teams (one over, one without budget), and a day-2 change growing a cluster."""
    _budget("bluegranit")
    requests = [_asking(alice), _asking(alice, team="nobudget")]
    _budget("bluegranit", dedicated=8)
    ws = WorkspaceFactory(owner=alice, team="bluegranit")
    cpu = ClusterFactory(workspace=ws, name="cpu", priority="dedicated", max_nodes=1)
    wider = ClusterSpec(name="cpu", vm_size=cpu.vm_size, priority="dedicated", max_nodes=2)
    requests.append(
        ChangeRequestFactory(
            workspace=ws,
            kind=Kind.CHANGE_WORKSPACE,
            spec=RequestSpec(cluster_updates=(wider,)),
            submitted=True,
        )
    )
    requests.append(
        ChangeRequestFactory(
            workspace=ws,
            kind=Kind.GRANT_ACCESS,
            spec=RequestSpec(members=(MemberSpec(principal="user9@contoso.com", persona="data_scientist"),)),
            submitted=True,
        )
    )
    loaded = list(ChangeRequest.objects.filter(pk__in=[r.pk for r in requests]).select_related("workspace"))

    together = capacity.requests_checks(loaded)

    for cr in loaded:
        alone = capacity.request_check(
            RequestSpec.from_json(cr.spec), workspace=cr.workspace, request_id=cr.pk
        )
        mine = together[cr.pk]
        assert (mine.lines, mine.notes, mine.demands, mine.replaced) == (
            alone.lines,
            alone.notes,
            alone.demands,
            alone.replaced,
        )
    assert together[requests[0].pk].over and together[requests[1].pk].notes
    change = together[requests[2].pk]
    assert change.replaced == (cpu.pk,) and change.demands[0].was == 4
    assert together[requests[3].pk].lines == []


def _queue_queries(client: Any) -> int:
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(QUEUE).status_code == 200
    return len(captured.captured_queries)


def test_the_queues_capacity_checks_do_not_grow_with_teams_or_requests(client, quota, alice, bob) -> None:
    for team in ("team0", "team1"):
        _budget(team)
        _asking(alice, team=team)
    client.force_login(bob)
    few = _queue_queries(client)

    for n in range(2, 12):
        _budget(f"team{n}")
        _asking(alice, team=f"team{n}")
        ClusterFactory(workspace=WorkspaceFactory(team=f"team{n}"))

    assert _queue_queries(client) == few
    assert {row.capacity for row in client.get(QUEUE).context["waiting"]} == {"fits"}


@pytest.mark.parametrize(
    ("back", "expected"),
    [
        (f"{QUEUE}?team=blue&sort=-submitted&page=2", f"{QUEUE}?team=blue&sort=-submitted&page=2"),
        ("queue", QUEUE),
        (QUEUE, QUEUE),
        ("https://evil.example" + QUEUE, None),
        ("//evil.example" + QUEUE, None),
        ("/requests/", None),
        (QUEUE + "?q=" + "x" * 2000, None),
    ],
)
def test_a_decision_goes_back_to_the_queue_as_filtered_and_nowhere_else(
    client, alice, bob, back: str, expected: str | None
) -> None:
    cr = ChangeRequestFactory(workspace=WorkspaceFactory(owner=alice), kind=Kind.GRANT_ACCESS, submitted=True)
    client.force_login(bob)

    response = client.post(
        reverse("provisioning:request_reject", args=[cr.pk]), {"next": back, "reason": "Not now."}
    )

    assert response.url == (expected or reverse("provisioning:request_detail", args=[cr.pk]))


def test_the_queues_decisions_carry_the_filters_shown(client, quota, alice, bob) -> None:
    _budget("bluegranit")
    _asking(alice)
    client.force_login(bob)

    page = client.get(QUEUE, {"team": "bluegranit", "sort": "submitted"}).content.decode()

    assert 'name="next" value="/approvals/?team=bluegranit&amp;sort=submitted"' in page
