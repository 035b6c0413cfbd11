"""Finding things (#16 item 3): the lists' filters, sorts and pages, scoped as the lists are."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.models import ChangeRequest, DriftItem, Membership, Workspace
from tests.factories import (
    ChangeRequestFactory,
    MembershipFactory,
    UserFactory,
    WorkspaceFactory,
    tutorial_spec,
)

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, tzinfo=UTC)
REQUESTS = reverse("provisioning:my_requests")
APPROVALS = reverse("provisioning:approval_queue")
WORKSPACES = reverse("provisioning:workspace_list")
ACCESS = reverse("provisioning:my_access")


def shown(response) -> list[int]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    return [cr.pk for cr in response.context["change_requests"]]


@pytest.fixture
def dana(db: None):  # type: ignore[no-untyped-def]
    """A team lead with a display name (as Entra ID gives it), asking for team ``orca``."""
    from accounts import personas

    return UserFactory(username="dana", first_name="Dana Whitfield", persona=personas.TEAM_LEAD)


def _orca_and_bluegranit(alice, dana):  # type: ignore[no-untyped-def]
    """Dana's new workspace for team orca (waiting), and a cluster request on alice's bluegranit workspace."""
    orca = ChangeRequestFactory(requester=dana, submitted=True, spec=tutorial_spec(team="orca"))
    ws = WorkspaceFactory(owner=alice, team="bluegranit")
    blue = ChangeRequestFactory(workspace=ws, submitted=True)
    return orca, blue


def test_admins_find_requests_by_team_whether_the_workspace_exists_or_not(
    client, policy, alice, bob, dana
) -> None:
    orca, blue = _orca_and_bluegranit(alice, dana)
    client.force_login(bob)

    assert shown(client.get(REQUESTS, {"team": "orca"})) == [orca.pk]
    assert shown(client.get(REQUESTS, {"team": "BlueGranit"})) == [blue.pk]
    assert shown(client.get(REQUESTS, {"team": "bgmr/orca"})) == [orca.pk]
    assert shown(client.get(REQUESTS, {"team": "xyz/orca"})) == []
    assert shown(client.get(REQUESTS, {"team": "orc"})) == []  # a team is named whole


def test_admins_find_requests_by_the_requesters_name_upn_or_display_name(
    client, policy, alice, bob, dana
) -> None:
    orca, blue = _orca_and_bluegranit(alice, dana)
    client.force_login(bob)

    assert shown(client.get(REQUESTS, {"requester": "whitfield"})) == [orca.pk]
    assert shown(client.get(REQUESTS, {"requester": "Dana Whit"})) == [orca.pk]
    assert shown(client.get(REQUESTS, {"requester": "alice@contoso"})) == [blue.pk]
    assert shown(client.get(REQUESTS, {"requester": "dana alice"})) == []


def test_requests_filter_by_dates_and_combine_filters(client, policy, alice, bob, dana) -> None:
    orca, blue = _orca_and_bluegranit(alice, dana)
    ChangeRequest.objects.filter(pk=orca.pk).update(created_at=datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    ChangeRequest.objects.filter(pk=blue.pk).update(created_at=datetime(2026, 3, 2, 0, 10, tzinfo=UTC))
    client.force_login(bob)

    assert shown(client.get(REQUESTS, {"date_from": "2026-03-02"})) == [blue.pk]
    assert shown(client.get(REQUESTS, {"date_to": "2026-03-01"})) == [orca.pk]
    assert shown(client.get(REQUESTS, {"date_from": "2026-03-01", "date_to": "2026-03-02"})) == [
        blue.pk,
        orca.pk,
    ]
    assert shown(client.get(REQUESTS, {"date_to": "2026-03-02", "team": "orca", "status": "submitted"})) == [
        orca.pk
    ]


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"date_from": "2026-02-30"}, "date_from", "Enter a date as YYYY-MM-DD."),
        ({"date_to": "9999-12-31"}, "date_to", "Enter a date up to 2999-12-31."),
        (
            {"date_from": "2026-03-02", "date_to": "2026-03-01"},
            "date_to",
            "The end date is before the start date.",
        ),
        ({"sort": "spec"}, "sort", "Unknown sort “spec”"),
        ({"sort": "-password"}, "sort", "Unknown sort “-password”"),
        ({"team": "t" * 31}, "team", "at most 30 characters"),
    ],
)
def test_a_bad_filter_or_sort_says_why_and_shows_nothing(
    client, policy, alice, bob, params, field, message
) -> None:
    ChangeRequestFactory(requester=alice, submitted=True)
    client.force_login(bob)

    for url in (REQUESTS, APPROVALS):
        response = client.get(url, params)

        assert response.status_code == 200
        assert message in " ".join(response.context["form"].errors[field])
        assert message.split("“")[0] in response.content.decode()
        key = "change_requests" if url == REQUESTS else "waiting"
        assert list(response.context[key]) == []


def test_requests_sort_by_whitelisted_columns_with_the_id_breaking_ties(client, policy, alice, bob) -> None:
    made = [
        ChangeRequestFactory(requester=alice, submitted=True, spec=tutorial_spec(team=f"t{n}"))
        for n in range(3)
    ]
    ChangeRequest.objects.update(workspace_name="same-name")
    client.force_login(bob)

    ascending = client.get(REQUESTS, {"sort": "workspace"})
    descending = client.get(REQUESTS, {"sort": "-workspace"})
    by_id = client.get(REQUESTS, {"sort": "id"})

    pks = [cr.pk for cr in made]
    assert shown(ascending) == pks
    assert shown(descending) == pks[::-1]
    assert shown(by_id) == pks
    page = ascending.content.decode()
    assert 'aria-sort="ascending"' in page
    assert "?sort=-workspace" in page  # the active column's link reverses it


def test_pages_keep_the_filters_and_the_sort(client, policy, alice, bob) -> None:
    for n in range(30):
        ChangeRequestFactory(requester=alice, submitted=True, spec=tutorial_spec(team=f"pg{n}"))
    ChangeRequestFactory(requester=alice, submitted=True, spec=tutorial_spec(team="other"))
    ChangeRequest.objects.filter(workspace_name__startswith="bgmrpg").update(workspace_name="mlw-paged")
    client.force_login(bob)

    first = client.get(REQUESTS, {"workspace": "paged", "sort": "id"})
    html = first.content.decode()
    assert "workspace=paged&amp;sort=id&amp;page=2" in html
    second = client.get(REQUESTS, {"workspace": "paged", "sort": "id", "page": 2})

    assert len(shown(first)) == 25 and len(shown(second)) == 5
    assert shown(first) + shown(second) == sorted(shown(first) + shown(second))
    # The filter form keeps the sort; a header link keeps the filters and starts at page 1.
    assert '<input type="hidden" name="sort" value="id">' in html
    assert "?workspace=paged&amp;sort=-id" in html


def test_a_team_lead_never_finds_other_teams_requests(client, policy, alice, charlie, dana) -> None:
    _orca, blue = _orca_and_bluegranit(alice, dana)
    client.force_login(charlie)

    for params in ({"team": "orca"}, {"team": "bluegranit"}, {"workspace": "bgmr"}, {"requester": "dana"}):
        assert shown(client.get(REQUESTS, params)) == []
    assert "requester" not in client.get(REQUESTS).context["form"].fields
    client.force_login(alice)
    assert shown(client.get(REQUESTS, {"team": "bluegranit"})) == [blue.pk]
    assert shown(client.get(REQUESTS, {"team": "orca"})) == []


def test_the_queue_filters_and_orders_what_waits(client, policy, alice, bob, dana) -> None:
    orca, blue = _orca_and_bluegranit(alice, dana)
    client.force_login(bob)

    def waiting(**params: str) -> list[int]:
        response = client.get(APPROVALS, params)
        assert response.status_code == 200
        return [row.cr.pk for row in response.context["waiting"]]

    assert waiting() == [orca.pk, blue.pk]
    assert waiting(sort="-submitted") == [blue.pk, orca.pk]
    assert waiting(team="bluegranit") == [blue.pk]
    assert waiting(requester="Whitfield") == [orca.pk]
    assert waiting(kind="add_clusters") == [blue.pk]
    filtered = client.get(APPROVALS, {"team": "nobody"}).content.decode()
    assert "No waiting request matches these filters" in filtered
    assert "Nothing waiting for approval" not in filtered


def test_workspaces_filter_by_team_region_environment_state_management_and_drift(client, policy, bob) -> None:
    blue = WorkspaceFactory(team="bluegranit")
    west = WorkspaceFactory(team="orca", region="westeurope", region_abbv="we", environment="pro")
    observed = WorkspaceFactory(team="seal", management=Workspace.Management.OBSERVED)
    gone = WorkspaceFactory(team="walrus", state="decommissioned")
    DriftItem.objects.create(
        workspace=blue, kind="changed", key="k", resource_id="/x", first_seen=NOW, last_seen=NOW
    )
    DriftItem.objects.create(
        workspace=west,
        kind="changed",
        key="k",
        resource_id="/y",
        status="accepted",
        first_seen=NOW,
        last_seen=NOW,
    )
    client.force_login(bob)

    def found(**params: str) -> set[int]:
        response = client.get(WORKSPACES, params)
        assert response.status_code == 200
        return {row["workspace"].pk for row in response.context["rows"]}

    assert found(team="orca") == {west.pk}
    assert found(team="bgmr/bluegranit") == {blue.pk}
    assert found(region="WestEurope") == {west.pk}
    assert found(environment="pro") == {west.pk}
    assert found(state="decommissioned") == {gone.pk}
    assert found(management="observed") == {observed.pk}
    assert found(drift="open") == {blue.pk}
    assert found(q=observed.workspace_name[-8:]) == {observed.pk}
    assert found(environment="xxx") == set()
    by_team = client.get(WORKSPACES, {"sort": "-team"}).context["rows"]
    assert [row["workspace"].team for row in by_team] == ["walrus", "seal", "orca", "bluegranit"]


def test_a_team_lead_finds_only_the_workspaces_she_may_see(client, policy, alice, charlie) -> None:
    hers = WorkspaceFactory(owner=alice, team="bluegranit")
    WorkspaceFactory(owner=charlie, team="orca")
    client.force_login(alice)

    rows = client.get(WORKSPACES, {"team": "orca"}).context["rows"]
    assert rows == []
    assert [r["workspace"] for r in client.get(WORKSPACES, {"team": "bluegranit"}).context["rows"]] == [hers]


def test_my_access_finds_a_workspace_by_name_or_team(client, policy, alice) -> None:
    mine = [WorkspaceFactory(team=team) for team in ("bluegranit", "orca")]
    for ws in mine:
        MembershipFactory(
            workspace=ws,
            principal_name=alice.upn,
            principal_type=Membership.PrincipalType.USER,
            state="active",
        )
    WorkspaceFactory(team="seal")  # not hers: never found
    client.force_login(alice)

    def cards(**params: str) -> list[int]:
        response = client.get(ACCESS, params)
        assert response.status_code == 200
        return [card.workspace.pk for card in response.context["cards"]]

    assert cards(q="orca") == [mine[1].pk]
    assert cards(q=mine[0].workspace_name) == [mine[0].pk]
    assert cards(q="seal") == []
    assert "No workspace you can use matches" in client.get(ACCESS, {"q": "seal"}).content.decode()
    assert client.get(ACCESS, {"q": "x" * 40}).context["form"].errors


def test_the_nav_counts_the_approvals_an_admin_may_decide(client, policy, alice) -> None:
    from accounts import personas

    erin = UserFactory(username="erin", persona=[personas.ADMIN, personas.TEAM_LEAD])
    for n in range(3):
        ChangeRequestFactory(requester=alice, submitted=True, spec=tutorial_spec(team=f"n{n}"))
    ChangeRequestFactory(requester=erin, submitted=True, spec=tutorial_spec(team="own"))  # not hers to decide
    client.force_login(erin)

    with CaptureQueriesContext(connection) as cold:
        page = client.get(WORKSPACES).content.decode()
    with CaptureQueriesContext(connection) as kept:
        client.get(WORKSPACES)

    assert 'data-approvals-waiting>3<span class="visually-hidden"> waiting</span>' in page
    assert len(cold) == len(kept) + 1  # one COUNT, then kept for 30 s
    client.force_login(alice)
    assert "data-approvals-waiting" not in client.get(REQUESTS).content.decode()


def _queries(client, url: str, params: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    cache.clear()
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured)


FILTERED = [
    (
        REQUESTS,
        {"team": "bluegranit", "requester": "alice lead", "date_from": "2026-01-01", "sort": "requester"},
    ),
    (REQUESTS, {"status": "submitted", "kind": "add_clusters", "sort": "-submitted"}),
    (
        APPROVALS,
        {"team": "bgmr/bluegranit", "requester": "alice", "date_to": "2999-01-01", "sort": "workspace"},
    ),
    (
        WORKSPACES,
        {"team": "bluegranit", "region": "eastus2", "drift": "open", "state": "active", "sort": "-team"},
    ),
    (ACCESS, {"q": "bluegranit"}),
]


@pytest.mark.parametrize(
    ("url", "params"), FILTERED, ids=["requests-team", "requests-status", "queue", "ws", "access"]
)
def test_a_filtered_pages_queries_do_not_grow_with_its_rows(client, policy, alice, bob, url, params) -> None:
    """Pinned with 3 and with 25 matching rows (the nav's count included, as the lists' pins are)."""
    alice.first_name, alice.last_name = "Alice", "Lead"
    alice.save()
    numbers = itertools.count()

    def grow(count: int) -> None:
        for _ in range(count):
            ws = WorkspaceFactory(owner=alice, team="bluegranit", custom_name=f"w{next(numbers)}")
            ChangeRequestFactory(workspace=ws, submitted=True)
            ChangeRequestFactory(
                requester=alice,
                submitted=True,
                spec=tutorial_spec(team="bluegranit", custom_name=f"c{ws.pk}"),
            )
            MembershipFactory(workspace=ws, principal_name=alice.upn, principal_type="user", state="active")
            DriftItem.objects.create(
                workspace=ws, kind="changed", key="k", resource_id="/x", first_seen=NOW, last_seen=NOW
            )

    grow(3)
    client.force_login(alice if url == ACCESS else bob)
    few = _queries(client, url, params)
    grow(22)

    assert _queries(client, url, params) == few
    # my access: its reminders and each workspace's team leads (whom to ask for more) prefetched
    # the queue: +1 when its rows are rendered (not kept): what they are kept under is read first
    assert few <= {REQUESTS: 6, APPROVALS: 15, WORKSPACES: 7, ACCESS: 8}[url]
    context = client.get(url, params).context
    assert max(len(context.get(key) or []) for key in ("change_requests", "rows", "cards", "waiting")) >= 20
