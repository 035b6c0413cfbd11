"""The discover page, adopting from it, the observed workspace's pages and the take-over confirmation."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.engine import adoption as engine
from provisioning.models import AuditEvent, DiscoveryScan, Workspace
from provisioning.workflow import adoption
from tests.provisioning.scripted import CHURN, by_hand, by_the_scripts

pytestmark = pytest.mark.django_db
DISCOVER = reverse("provisioning:workspace_discover")
# Queries of the discover page (session, user, personas, latest and running scans, team leads): pinned.
DISCOVER_PAGE = 7  # the nav counts the approvals waiting (not yet kept in the cache)


@pytest.fixture
def scan(standin, azure_clients, policy) -> DiscoveryScan:  # type: ignore[no-untyped-def]
    by_the_scripts(standin)
    by_hand(standin)
    return engine.discovery_run(clients=azure_clients)


def test_only_admins_see_the_discover_page_and_adopt(client: Client, scan, alice, dana) -> None:
    ws_id = scan.workspaces[0]["azure_id"]
    for who in (alice, dana):
        client.force_login(who)
        assert client.get(DISCOVER).status_code == 403
        assert client.post(reverse("provisioning:workspace_discover_refresh")).status_code == 403
        adopt = client.post(
            reverse("provisioning:workspace_adopt"), {"azure_id": ws_id, "team_lead": "alice"}
        )
        assert adopt.status_code == 403
    assert not Workspace.objects.exists()


def test_the_discover_page_shows_each_workspace_with_its_convention(client: Client, scan, bob, alice) -> None:
    client.force_login(bob)
    with CaptureQueriesContext(connection) as queries:
        page = client.get(DISCOVER)

    html = page.content.decode()
    assert page.status_code == 200
    assert 'data-discovered="mktgchurne2devws"' in html and 'data-discovered="sandbox-ml"' in html
    assert "department <strong>mktg</strong>, team <strong>churn</strong>" in html
    assert "does not follow the convention" in html
    assert "cpu-cluster" in html and "ds1@contoso.com" in html
    assert alice.principal_name in html  # a team lead to choose
    assert len(queries) == DISCOVER_PAGE


def test_the_discover_pages_queries_do_not_grow_with_the_workspaces(client: Client, scan, bob) -> None:
    client.force_login(bob)
    result = dict(scan.result)
    result["workspaces"] = result["workspaces"] * 20
    DiscoveryScan.objects.filter(pk=scan.pk).update(result=result)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(DISCOVER).status_code == 200
    assert len(queries) == DISCOVER_PAGE


def test_reading_azure_again_is_queued_once(client: Client, policy, bob, rq_queue) -> None:
    client.force_login(bob)
    client.post(reverse("provisioning:workspace_discover_refresh"))
    client.post(reverse("provisioning:workspace_discover_refresh"))

    pending = DiscoveryScan.objects.get()
    assert pending.finished_at is None
    assert "Reading Azure" in client.get(DISCOVER).content.decode()
    assert AuditEvent.objects.filter(action="discovery.requested").count() == 1


def test_adopting_from_the_page_shows_an_observed_workspace(client: Client, scan, bob, alice) -> None:
    churn = next(w for w in scan.workspaces if w["name"] == "mktgchurne2devws")
    client.force_login(bob)

    adopted = client.post(
        reverse("provisioning:workspace_adopt"),
        {"azure_id": churn["azure_id"], "team_lead": alice.principal_name},
    )
    again = client.post(
        reverse("provisioning:workspace_adopt"),
        {"azure_id": churn["azure_id"], "team_lead": alice.principal_name},
    )

    ws = Workspace.objects.get()
    assert adopted.url == reverse("provisioning:workspace_detail", args=[ws.pk])
    assert again.url == DISCOVER and Workspace.objects.count() == 1
    detail = client.get(adopted.url).content.decode()
    assert "data-observed-badge" in detail and "Take over management" in detail
    assert "data-observed-badge" in client.get(reverse("provisioning:workspace_list")).content.decode()
    client.force_login(alice)
    owner_view = client.get(adopted.url).content.decode()
    assert "data-observed-note" in owner_view
    assert "Request clusters" not in owner_view and "Take over management" not in owner_view
    assert client.get(reverse("provisioning:workspace_take_over", args=[ws.pk])).status_code == 403


def test_the_take_over_page_lists_what_is_tagged_then_queues_it(
    client: Client, scan, bob, alice, rq_queue
) -> None:
    churn = next(w for w in scan.workspaces if w["name"] == "mktgchurne2devws")
    ws = adoption.workspace_adopt(azure_id=churn["azure_id"], team_lead=alice, actor=bob)
    client.force_login(bob)
    url = reverse("provisioning:workspace_take_over", args=[ws.pk])

    confirm = client.get(url).content.decode()
    assert confirm.count("data-scope") == 8
    assert f"{CHURN.department}-{CHURN.team}-{CHURN.region}-{CHURN.environment}" in confirm
    done = client.post(url)

    assert done.url == reverse("provisioning:workspace_detail", args=[ws.pk])
    assert AuditEvent.objects.filter(
        action="workspace.take_over_requested", workspace_name=ws.workspace_name
    ).exists()
