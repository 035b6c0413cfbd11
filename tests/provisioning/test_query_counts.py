"""How many queries the approval path and the capacity page take, pinned so repeated work cannot creep back.

The estate has many teams, each with budgets, a workspace, clusters and a waiting request, so a query made
per team, per workspace or per waiting request shows as a count that grows with the data.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from provisioning.audit import audit_record
from provisioning.capacity import budgets
from provisioning.capacity.spend import this_month
from provisioning.context_processors import approvals_waiting_key
from provisioning.models import ChangeRequest, CoreUsage, TeamBudget, WorkspaceQuota, WorkspaceSpend
from provisioning.spec import ClusterSpec, RequestSpec
from provisioning.workflow import name_checks, services
from tests import factories
from tests.factories import ChangeRequestFactory, ClusterFactory, MembershipFactory, WorkspaceFactory

pytestmark = pytest.mark.django_db

Scope = CoreUsage.Scope
Status = ChangeRequest.Status
TEAMS = 20
FAMILIES = ("standardDSv2Family", "standardDv2Family", "standardNVFamily")

# The counts measured when pinned. Before issue #12: submit 22, approve 40 (new workspace) and 37 (clusters),
# a waiting request's page 19, a draft's page 32, the capacity page 85 with 5 teams and 247 with 20.
# Notifications (issue #18) add the outbox's writes: submit +2 (the admins who want the mail, one insert);
# approve +2 to +3 (the requester if they want it, the team's Teams channel, one insert).
SUBMIT = 22  # one more: the soft-deleted key vaults holding the name (decommission)
APPROVE_NEW_WORKSPACE = 28  # likewise
APPROVE_CLUSTERS = 23
REQUEST_PAGE = 13  # +1: the quota requests it waits on; +1: the version its kept capacity check is kept under
DRAFT_PAGE = 17  # +1: the quota requests it waits on; +1: the version of its kept capacity check
REQUEST_KEPT = REQUEST_PAGE - 6  # the check's five readings, and whether the workspace can be linked
# The capacity page: a first view (the held and pending cores computed); 4 fewer while they are kept; +1: quota
# requests. Spend (issue #19) is its own page, loaded into the capacity page's section: the session, the user, the
# groups, then 6 whatever the number of teams: the workspaces read this month with their spend, their clusters and
# those clusters' prices (the estimates), the teams' budgets, the catalog's sizes with their prices (the budgets'
# value, one query), the policies' thresholds.
CAPACITY_PAGE = 29  # +1: the version of the page's kept sections (issue #20)
# A view while its sections are kept (issue #20): session, user, groups, the version, the budget rows' count,
# the quota requests, and the CSRF-cookie-less first view aside, nothing that grows.
CAPACITY_KEPT = 7
# The approval queue while its rows are kept: session, user, groups, the count and the page's rows, the
# version, the requester's own waiting requests.
QUEUE_KEPT = 7
SPEND_PAGE = 3 + 6
# The audit page with runs on it (issue #18): session, user, groups, its rows, and one read of their runs' steps
# (the fold; a page without runs reads 4).
AUDIT_PAGE = 6  # +1: the newest event's id, which its kept rows are kept under (issue #20)
AUDIT_KEPT = 4  # session, user, groups, the newest event's id
# An admin's page counts the approvals waiting for the nav (one COUNT, then kept for 30 s): pins are cold.
NAV_COUNT = 1


def _catalog() -> None:
    """The tutorial's sizes in eastus2, and room enough in the subscription for every request."""
    factories.allow_tutorial_policy()
    for row in factories.TUTORIAL_SIZES:
        factories.vm_size("eastus2", *row)
    for family in FAMILIES:
        factories.core_usage(Scope.FAMILY, family, 10, 10_000)
    factories.core_usage(Scope.DEDICATED_TOTAL, "", 30, 10_000)
    factories.core_usage(Scope.LOW_PRIORITY_TOTAL, "", 12, 10_000)


def _team(i: int, owner: User | None = None) -> ChangeRequest:
    """Team ``d<i>/team<i>``: budgets, an active workspace with clusters, a member and a quota, and a
    waiting request for more clusters (by the workspace's owner)."""
    department, team = f"d{i}", f"team{i}"
    for family in FAMILIES:
        TeamBudget.objects.create(
            department=department,
            team=team,
            region="eastus2",
            family=family,
            dedicated_cores=200,
            low_priority_cores=200,
        )
    ws = WorkspaceFactory(department=department, team=team, **({"owner": owner} if owner else {}))
    ClusterFactory(workspace=ws)
    ClusterFactory(workspace=ws, vm_size="STANDARD_D13_V2", priority="dedicated", max_nodes=2)
    MembershipFactory(workspace=ws)
    WorkspaceQuota.objects.create(workspace=ws, family="standardDv2Family", requested=200, applied=200)
    # This month's spend (team 0 far over its budget: flagged on the capacity page).
    spent = Decimal(1_000_000 if i == 0 else 10 * i)
    WorkspaceSpend.objects.create(
        workspace=ws, month=this_month(), month_to_date=spent, currency="USD", read_at=timezone.now()
    )
    return ChangeRequestFactory(workspace=ws, submitted=True)


def _teams(start: int, stop: int, owner: User | None = None) -> list[ChangeRequest]:
    """Teams ``start`` to ``stop - 1`` (the first owned by ``owner``), each with a waiting request for
    clusters; every other one also waits for a new workspace."""
    waiting = [_team(i, owner if i == start else None) for i in range(start, stop)]
    for i in range(start, stop, 2):
        spec = factories.tutorial_spec(department=f"d{i}", team=f"new{i}")
        waiting.append(ChangeRequestFactory(spec=spec, submitted=True))
    return waiting


@pytest.fixture
def waiting(alice: User, bob: User) -> list[ChangeRequest]:
    """Twenty teams and thirty waiting requests; the first is alice's, for clusters in her workspace."""
    _catalog()
    return _teams(0, TEAMS, owner=alice)


def test_submitting_a_new_workspace_request(
    waiting: list[ChangeRequest], alice: User, django_assert_max_num_queries: Any
) -> None:
    draft = ChangeRequestFactory(requester=alice, spec=factories.tutorial_spec())

    with django_assert_max_num_queries(SUBMIT):
        services.request_submit(request_id=draft.pk, actor=alice)

    draft.refresh_from_db()
    assert draft.status == Status.SUBMITTED


def test_approving_a_new_workspace_request(
    waiting: list[ChangeRequest], alice: User, bob: User, django_assert_max_num_queries: Any
) -> None:
    cr = ChangeRequestFactory(requester=alice, spec=factories.tutorial_spec(), submitted=True)

    with django_assert_max_num_queries(APPROVE_NEW_WORKSPACE):
        services.request_approve(request_id=cr.pk, approver=bob)

    cr.refresh_from_db()
    assert cr.status == Status.APPROVED
    assert cr.plan["workspace_quotas"] == []  # bgmr/bluegranit has no budget


def test_approving_a_request_for_clusters(
    waiting: list[ChangeRequest], bob: User, django_assert_max_num_queries: Any
) -> None:
    cr = waiting[3]

    with django_assert_max_num_queries(APPROVE_CLUSTERS):
        services.request_approve(request_id=cr.pk, approver=bob)

    cr.refresh_from_db()
    assert cr.status == Status.APPROVED
    assert [q["family"] for q in cr.plan["workspace_quotas"]] == sorted(FAMILIES)


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_the_page_of_a_waiting_request(
    waiting: list[ChangeRequest], client: Client, who: str, django_assert_max_num_queries: Any
) -> None:
    cr = waiting[0]
    client.force_login(User.objects.get(username=who))

    with django_assert_max_num_queries(REQUEST_PAGE + (NAV_COUNT if who == "bob" else 0)):
        response = client.get(reverse("provisioning:request_detail", args=[cr.pk]))

    assert response.status_code == 200
    assert response.context["capacity"].lines
    assert [q["family"] for q in response.context["plan"]["workspace_quotas"]] == sorted(FAMILIES)


def test_a_waiting_requests_page_keeps_its_capacity_check_until_a_budget_changes(
    waiting: list[ChangeRequest], client: Client, alice: User, bob: User
) -> None:
    cr = waiting[0]
    client.force_login(alice)
    url = reverse("provisioning:request_detail", args=[cr.pk])

    first, again, kept_queries = _viewed_twice(client, url)
    team = first.context["capacity"].team
    for family in FAMILIES:
        budgets.team_budget_set(
            actor=bob,
            department=team.department,
            team=team.team,
            region=team.region,
            family=family,
            dedicated_cores=4321,
            low_priority_cores=4321,
        )
    after = client.get(url)

    def team_limits(response: Any) -> set[int]:
        return {line.limit for line in response.context["capacity"].lines if line.holder == "team"}

    assert kept_queries == REQUEST_KEPT
    assert again.context["capacity"].lines == first.context["capacity"].lines
    assert 4321 not in team_limits(first) and team_limits(after) == {4321}


def test_the_page_of_a_draft(
    waiting: list[ChangeRequest], client: Client, alice: User, django_assert_max_num_queries: Any
) -> None:
    ws = waiting[0].workspace
    draft = ChangeRequestFactory(
        workspace=ws, spec=RequestSpec(clusters=(ClusterSpec(name="Bad name!", vm_size="STANDARD_DS3_V2"),))
    )
    client.force_login(alice)

    with django_assert_max_num_queries(DRAFT_PAGE):
        response = client.get(reverse("provisioning:request_detail", args=[draft.pk]))

    assert response.status_code == 200
    assert response.context["capacity"].lines
    assert [p.field for p in response.context["problems"]] == ["clusters.0.name"]


@pytest.mark.parametrize("teams", [5, TEAMS])
def test_the_capacity_page(client: Client, bob: User, teams: int, django_assert_max_num_queries: Any) -> None:
    _catalog()
    _teams(0, teams)
    client.force_login(bob)

    with django_assert_max_num_queries(CAPACITY_PAGE + NAV_COUNT):
        response = client.get(reverse("provisioning:capacity"))

    assert response.status_code == 200
    assert response.context["budget_page"].paginator.count == teams * len(FAMILIES)
    assert reverse("provisioning:capacity_spend") in response.content.decode()

    with django_assert_max_num_queries(SPEND_PAGE):  # the nav's count kept from the capacity page
        spend = client.get(reverse("provisioning:capacity_spend"))
    assert [t.team for t in spend.context["spend_teams"] if t.flagged] == ["d0/team0"]


def test_the_capacity_page_kept_reads_its_version_and_shows_a_change_at_the_next_view(
    client: Client, bob: User
) -> None:
    _catalog()
    _teams(0, TEAMS)
    client.force_login(bob)
    url = reverse("provisioning:capacity")

    first, again, kept = _viewed_twice(client, url)

    assert kept <= CAPACITY_KEPT + NAV_COUNT
    assert _without_tokens(again) == _without_tokens(first)
    budgets.team_budget_set(
        actor=bob,
        department="d0",
        team="team0",
        region="eastus2",
        family=FAMILIES[0],
        dedicated_cores=4321,
        low_priority_cores=0,
    )
    assert ">4321</td>" in client.get(url).content.decode()


def test_a_kept_capacity_page_carries_tokens_its_viewer_can_post_and_nobody_else_is_served_them(
    bob: User,
) -> None:
    carol_admin = factories.admin("carol")
    _catalog()
    _teams(0, 5)
    url = reverse("provisioning:capacity")
    browsers = {}
    for admin in (bob, carol_admin):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(admin)
        browser.get(url)
        browsers[admin.pk] = (browser, _tokens(browser.get(url)))  # the second view is the kept one

    for browser, tokens in browsers.values():
        refreshed = browser.post(reverse("provisioning:capacity_refresh"), {"csrfmiddlewaretoken": tokens[0]})
        assert refreshed.status_code == 302  # not 403: the kept token is masked from this browser's secret
    bob_tokens, carol_tokens = browsers[bob.pk][1], browsers[carol_admin.pk][1]
    assert not set(bob_tokens) & set(carol_tokens)


def test_the_queue_keeps_its_rows_and_shows_a_name_check_stored_meanwhile(client: Client, bob: User) -> None:
    _catalog()
    waiting = _teams(0, 5)
    client.force_login(bob)
    queue = reverse("provisioning:approval_queue")

    first, again, kept = _viewed_twice(client, queue)

    assert kept <= QUEUE_KEPT + NAV_COUNT
    assert _without_tokens(again) == _without_tokens(first)
    # A check stored with update() leaves the request's updated_at as it was: the row shows it all the same.
    new_workspace = next(cr for cr in waiting if cr.kind == ChangeRequest.Kind.NEW_WORKSPACE)
    name_checks.name_check_record(
        request_id=new_workspace.pk, answers=[{"name": "stbgmrteam0", "available": False, "kind": "storage"}]
    )
    assert "names are taken in Azure" in client.get(queue).content.decode()


def test_a_kept_queue_row_approves(bob: User) -> None:
    _catalog()
    _teams(0, 3)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(bob)
    queue = reverse("provisioning:approval_queue")
    browser.get(queue)
    kept = browser.get(queue).content.decode()
    found = re.search(
        r'<form method="post" action="([^"]+/(\d+)/approve/)"[^>]*><input type="hidden" '
        r'name="csrfmiddlewaretoken" value="([^"]+)"',
        kept,
    )
    assert found is not None
    action, pk, token = found.groups()

    assert browser.post(action, {"csrfmiddlewaretoken": token, "next": queue}).status_code == 302
    assert ChangeRequest.objects.get(pk=pk).status != ChangeRequest.Status.SUBMITTED


def _viewed_twice(client: Client, url: str) -> tuple[Any, Any, int]:
    """A page viewed twice: the first view, the second (its sections kept), and the queries the second made
    (counted before another request empties the connection's query log)."""
    first = client.get(url)
    with CaptureQueriesContext(connection) as kept:
        again = client.get(url)
    return first, again, len(kept)


def _tokens(response: Any) -> list[str]:
    return re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', response.content.decode())


def _without_tokens(response: Any) -> str:
    text = re.sub(r'(name="csrfmiddlewaretoken" value=")[^"]+', r"\1", response.content.decode())
    text = re.sub(r'"X-CSRFToken": "[^"]+"', "", text)
    return re.sub(r'nonce="[^"]+"', "", text)


def test_the_capacity_page_reads_as_much_for_twenty_teams_as_for_five(client: Client, bob: User) -> None:
    _catalog()
    _teams(0, 5)
    client.force_login(bob)
    url = reverse("provisioning:capacity")

    with CaptureQueriesContext(connection) as five:
        client.get(url)
    _teams(5, TEAMS)
    cache.delete(approvals_waiting_key(bob))  # both views count the approvals waiting
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(url)

    assert len(twenty) == len(five)
    assert response.context["budget_page"].paginator.count == TEAMS * len(FAMILIES)


def _runs(start: int, stop: int) -> None:
    """Requests ``start`` to ``stop - 1`` each started a run of three steps (as the engine records them)."""
    with transaction.atomic():
        for request_id in range(start, stop):
            audit_record(
                actor="worker", action="request.provisioning", object_type="x", request_id=request_id
            )
            for n in range(3):
                audit_record(
                    actor="worker",
                    action="step.succeeded",
                    object_type="step",
                    object_id=n,
                    request_id=request_id,
                )


def test_the_audit_page_folds_the_steps_of_five_runs_or_twenty_in_one_query(
    client: Client, bob: User
) -> None:
    _runs(1, 6)
    client.force_login(bob)
    url = reverse("provisioning:audit")

    with CaptureQueriesContext(connection) as five:
        client.get(url)
    _runs(6, 21)
    cache.delete(approvals_waiting_key(bob))
    with CaptureQueriesContext(connection) as twenty:
        response = client.get(url)

    assert len(five) == len(twenty) == AUDIT_PAGE + NAV_COUNT
    assert [len(row["steps"]) for row in response.context["rows"]] == [3] * 20


def test_the_audit_page_is_kept_until_the_next_event_is_recorded(client: Client, bob: User) -> None:
    _runs(1, 6)
    client.force_login(bob)
    url = reverse("provisioning:audit")

    first, again, kept = _viewed_twice(client, url)
    audit_record(actor="bob", action="budget.set", object_type="teambudget", object_id=99)
    after = client.get(url).content.decode()

    assert kept == AUDIT_KEPT
    assert _without_tokens(again) == _without_tokens(first)
    assert "budget.set" in after and "budget.set" not in first.content.decode()
