"""The drift page, its actions, the drift badges and the workspace page's reconcile button and observed state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from provisioning.models import AuditEvent, DriftItem, Workspace
from tests.factories import ClusterFactory, WorkspaceFactory
from tests.provisioning.observations import record, resized
from tests.provisioning.test_lists import queries

pytestmark = pytest.mark.django_db
DRIFT = reverse("provisioning:drift")
Status = DriftItem.Status


@pytest.fixture
def ws(policy, alice) -> Workspace:
    workspace = WorkspaceFactory(owner=alice)
    ClusterFactory(workspace=workspace, name="cpu", max_nodes=2)
    return workspace


def drifted(count: int) -> list[Workspace]:
    """``count`` workspaces whose cluster Azure holds at 40 nodes (one open item each)."""
    found = []
    for _ in range(count):
        ws = WorkspaceFactory()
        ClusterFactory(workspace=ws, name="cpu", max_nodes=2)
        record(ws, resized(ws, max_nodes=40))
        found.append(ws)
    return found


def test_the_drift_page_is_for_admins(client: Client, ws, alice, dana) -> None:
    for who in (alice, dana):
        client.force_login(who)
        assert client.get(DRIFT).status_code == 403
        assert (
            client.post(reverse("provisioning:drift_accept"), {"item": 1, "reason": "x"}).status_code == 403
        )


def test_the_drift_page_shows_open_items_by_default_and_filters(client: Client, ws, bob) -> None:
    record(ws, resized(ws, max_nodes=40, idle_seconds=1800))
    old, new = ws.drift_items.order_by("field")
    DriftItem.objects.filter(pk=old.pk).update(first_seen=timezone.now() - timedelta(days=10))
    client.force_login(bob)

    default = client.get(DRIFT)
    by_age = client.get(DRIFT, {"older_than": 7})
    by_kind = client.get(DRIFT, {"kind": "missing"})
    bad = client.get(DRIFT, {"older_than": "soon", "kind": "odd"})

    assert [i.pk for i in default.context["items"]] == sorted([old.pk, new.pk], reverse=True)
    assert "40" in default.content.decode() and "max_nodes" in default.content.decode()
    assert [i.pk for i in by_age.context["items"]] == [old.pk]
    assert list(by_kind.context["items"]) == []
    assert list(bad.context["items"]) == [] and set(bad.context["form"].errors) == {"older_than", "kind"}


def test_the_drift_pages_queries_do_not_grow_with_its_items(
    client: Client, policy, bob, django_assert_max_num_queries
) -> None:
    drifted(3)
    client.force_login(bob)
    few = queries(client, DRIFT)
    drifted(22)
    with django_assert_max_num_queries(8):
        assert queries(client, DRIFT) == few
    assert len(client.get(DRIFT).context["items"]) == 25


def test_accepting_from_the_page_needs_a_reason_and_keeps_the_filters(client: Client, ws, bob) -> None:
    record(ws, resized(ws, max_nodes=40))
    item = ws.drift_items.get()
    client.force_login(bob)
    back = f"workspace={ws.workspace_name}&evil=1"

    refused = client.post(
        reverse("provisioning:drift_accept"), {"item": item.pk, "reason": " ", "back": back}
    )
    accepted = client.post(
        reverse("provisioning:drift_accept"), {"items": [item.pk], "reason": "ok", "back": back}
    )

    assert refused.url == f"{DRIFT}?workspace={ws.workspace_name}"
    assert accepted.status_code == 302
    item.refresh_from_db()
    assert item.status == Status.ACCEPTED and ws.clusters.get().max_nodes == 40
    page = client.get(accepted.url, {"status": ""})
    assert "a reason is required" in page.content.decode() or "Accepted 1 drift item" in page.content.decode()


def test_remediating_from_the_page_one_workspace_at_a_time(client: Client, policy, bob, rq_queue) -> None:
    first, second = drifted(2)
    items = [first.drift_items.get().pk, second.drift_items.get().pk]
    client.force_login(bob)

    mixed = client.post(reverse("provisioning:drift_remediate"), {"items": items}, follow=True)
    one = client.post(reverse("provisioning:drift_remediate"), {"workspace": first.pk}, follow=True)

    assert "one workspace" in mixed.content.decode()
    assert "queued: a worker restores the approved state of 1 drift item" in one.content.decode()
    assert first.drift_items.get().status == Status.REMEDIATING
    assert second.drift_items.get().status == Status.OPEN


def test_the_badges_count_open_drift_without_a_query_per_row(
    client: Client, policy, bob, django_assert_max_num_queries
) -> None:
    drifted(3)
    client.force_login(bob)
    url = reverse("provisioning:workspace_list")
    few = queries(client, url)
    drifted(22)

    with django_assert_max_num_queries(12):
        assert queries(client, url) == few
    rows = client.get(url).context["rows"]
    assert {row["workspace"].open_drift for row in rows} == {1}
    assert client.get(url).content.decode().count("data-drift-badge") == 25


def test_the_workspace_page_shows_what_azure_holds_and_its_drift(client: Client, ws, alice, dana) -> None:
    from tests.factories import MembershipFactory

    MembershipFactory(workspace=ws, principal_name=dana.upn, state="active")
    url = reverse("provisioning:workspace_detail", args=[ws.pk])
    client.force_login(alice)
    before = client.get(url).content.decode()
    record(ws, resized(ws, max_nodes=40))

    page = client.get(url)

    assert "Not observed yet" in before
    text = page.content.decode()
    assert "Last observed" in text and "1 open drift item" in text
    assert page.context["observed"]["cluster"][0].properties["max_nodes"] == 40
    assert "Reconcile with Azure now" in text  # alice leads it
    client.force_login(dana)
    assert "Reconcile with Azure now" not in client.get(url).content.decode()


def test_the_reconcile_button_queues_once_and_refuses_outsiders(
    client: Client, ws, alice, charlie, rq_queue
) -> None:
    url = reverse("provisioning:workspace_reconcile", args=[ws.pk])
    client.force_login(alice)

    first = client.post(url, follow=True)
    second = client.post(url, follow=True)

    assert "Reconcile with Azure queued" in first.content.decode()
    assert "already queued" in second.content.decode()
    assert (
        AuditEvent.objects.filter(action="workspace.reconcile_requested", actor=alice.username).count() == 1
    )
    client.force_login(charlie)
    assert client.post(url).status_code == 404  # not a workspace charlie can see
    assert client.get(url).status_code == 405


def test_the_actions_need_the_csrf_token(ws, bob) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(reverse("provisioning:workspace_reconcile", args=[ws.pk])).status_code == 403
    assert client.post(reverse("provisioning:drift_remediate"), {"workspace": ws.pk}).status_code == 403


def test_the_admins_menu_links_the_drift_page(client: Client, bob, alice) -> None:
    client.force_login(bob)
    assert f'href="{DRIFT}"' in client.get(reverse("provisioning:workspace_list")).content.decode()
    client.force_login(alice)
    assert f'href="{DRIFT}"' not in client.get(reverse("provisioning:workspace_list")).content.decode()
