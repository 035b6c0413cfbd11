"""Spend: the daily read from Cost Management through the real SDK and the stand-in, stored and flagged."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
import requests
from django.core.management import call_command

from provisioning.engine.spend import spend_refresh
from provisioning.models import (
    AuditEvent,
    EnvironmentPolicy,
    Notification,
    NotificationKind,
    VmPrice,
    WorkspaceCost,
    WorkspaceSpend,
)
from provisioning.standin import arm_cost
from tests.provisioning.provisioned import provisioned

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("loopback_only")]


def _standin_rows(standin: Any, azure_clients: Any, ws: Any) -> list[list[Any]]:
    """The stand-in's month-to-date rows of the workspace's resource group, by resource and day."""
    token = azure_clients.credential().get_token(f"{standin.base_url}/.default").token
    body = {
        "type": "ActualCost",
        "timeframe": "MonthToDate",
        "dataset": {
            "granularity": "Daily",
            "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}},
            "grouping": [{"type": "Dimension", "name": "ResourceId"}],
        },
    }
    answer = requests.post(
        f"{standin.base_url}/subscriptions/{ws.subscription_id}/resourceGroups/{ws.resource_group}"
        "/providers/Microsoft.CostManagement/query?api-version=2025-03-01",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 200
    return list(answer.json()["properties"]["rows"])


def _state() -> tuple[Any, ...]:
    return (
        sorted(WorkspaceCost.objects.values_list("day", "resource_id", "kind", "amount", "currency")),
        list(WorkspaceSpend.objects.values_list("month_to_date", "alerted_month", "over_threshold")),
        AuditEvent.objects.count(),
        Notification.objects.count(),
    )


def test_the_daily_read_stores_the_standins_rows_and_a_second_run_changes_nothing(
    standin, azure_clients, alice, bob, policy
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    # A cent per node-hour: the tutorial's four nodes make an estimate of 29.20 USD a month, whose 1 % the
    # stand-in's first day passes whatever the day of the month.
    for cluster in ws.clusters.all():
        VmPrice.objects.update_or_create(
            vm_size=cluster.vm_size.upper(),
            priority=cluster.priority,
            defaults={"hourly_usd": Decimal("0.01")},
        )
    EnvironmentPolicy.objects.update_or_create(environment="dev", defaults={"spend_alert_percent": 1})

    summary = spend_refresh(azure_clients)

    expected = _standin_rows(standin, azure_clients, ws)
    stored = WorkspaceCost.objects.filter(workspace=ws)
    assert stored.count() == len(expected) > 0
    assert sum(r.amount for r in stored) == sum(Decimal(str(r[0])) for r in expected)
    assert {(r.day.strftime("%Y%m%d"), r.resource_id) for r in stored} == {
        (str(r[2]), r[1]) for r in expected
    }
    assert set(stored.values_list("kind", flat=True)) == {
        "compute",
        "storage",
        "key_vault",
        "registry",
        "monitoring",
    }
    [row] = summary["workspaces"]
    assert summary["errors"] == []
    assert row["workspace"] == ws.workspace_name and row["estimate"] == 29.2
    assert Decimal(str(row["month_to_date"])) == sum(Decimal(str(r[0])) for r in expected).quantize(
        Decimal("0.01")
    )
    assert row["over_threshold"] is True
    assert list(AuditEvent.objects.filter(action="spend.read").values_list("workspace_name", flat=True)) == [
        ws.workspace_name
    ]
    assert AuditEvent.objects.filter(action="spend.over_threshold").count() == 1
    alerts = Notification.objects.filter(kind=NotificationKind.SPEND_OVER_THRESHOLD)
    addresses = {a for n in alerts for a in n.recipients}
    assert "bob@contoso.com" in {a.lower() for a in addresses}  # the admin
    assert {"admin1@contoso.com", "user1@contoso.com"} <= addresses  # the team leads
    before = _state()

    spend_refresh(azure_clients)

    assert _state() == before  # same answer: no row, audit event or notification more


def test_a_failed_read_is_recorded_then_every_page_is_read_and_the_command_prints_json(
    standin, azure_clients, alice, bob, policy, capsys, monkeypatch
) -> None:
    ws = provisioned(standin, azure_clients, alice, bob)
    standin.fail_next(
        "cost.query", status=403, retry_after=None, code="AuthorizationFailed", message="no role"
    )

    with pytest.raises(Exception, match="could not be read"):
        call_command("spend_refresh", "--json")

    failed = json.loads(capsys.readouterr().out)
    assert failed["workspaces"][0]["error"].startswith("AuthorizationFailed")
    assert WorkspaceCost.objects.count() == 0

    monkeypatch.setattr(arm_cost, "PAGE_SIZE", 7)  # the stand-in answers in pages of 7 rows
    standin.state.clear_requests()
    call_command("spend_refresh", "--json")

    assert standin.state.count("cost.query") > 1  # the pages were followed
    monkeypatch.undo()
    assert WorkspaceCost.objects.count() == len(_standin_rows(standin, azure_clients, ws))
    document = json.loads(capsys.readouterr().out)
    assert document["errors"] == []
    [row] = document["workspaces"]
    assert set(row) >= {"workspace", "month_to_date", "currency", "estimate", "budget", "over_threshold"}
    assert (row["workspace"], row["currency"], row["budget"], row["error"]) == (
        ws.workspace_name,
        "USD",
        None,
        "",
    )
    assert isinstance(row["month_to_date"], float) and row["month_to_date"] > 0
