"""Recording what Cost Management said a workspace cost this month, and the spend alert.

The daily job (``provisioning.engine.spend``) reads Azure and hands each workspace's rows here as plain
values. One transaction per workspace: the month's rows are replaced by what Azure says now (late charges
included), the month to date stored, ``spend.read`` audited when the figures changed, and, the first time in
a month the workspace is over its threshold, ``spend.over_threshold`` audited and the admins and the
workspace's team leads notified. A second run with the same answer changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Protocol

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from provisioning.arm import cost_kind
from provisioning.audit import audit_record
from provisioning.capacity.spend import SpendFigures, next_month, this_month, workspace_figures
from provisioning.models import NotificationKind, Workspace, WorkspaceCost, WorkspaceSpend
from provisioning.workflow import notifications, selectors

SYSTEM = "system"
MAX_ERROR = 500
STORED = Decimal("0.000001")  # WorkspaceCost.amount's places


class CostLine(Protocol):
    """A cost row as the adapter returns it (``provisioning.azure.costs.CostRow``)."""

    @property
    def resource_id(self) -> str: ...

    @property
    def resource_type(self) -> str: ...

    @property
    def day(self) -> date: ...

    @property
    def amount(self) -> Decimal: ...

    @property
    def currency(self) -> str: ...


def _sums(rows: Iterable[CostLine], month: date) -> dict[tuple[date, str], tuple[Decimal, str, str]]:
    """The month's rows by (day, resource): amount, kind, currency (repeated keys added up)."""
    found: dict[tuple[date, str], tuple[Decimal, str, str]] = {}
    end = next_month(month)
    for row in rows:
        if month <= row.day < end:
            key = (row.day, row.resource_id.lower())
            before = found.get(key, (Decimal(0), "", ""))[0]
            amount = (before + row.amount).quantize(STORED)
            found[key] = (amount, cost_kind(row.resource_type), row.currency)
    return found


def _replace_rows(
    workspace: Workspace, month: date, wanted: dict[tuple[date, str], tuple[Decimal, str, str]]
) -> bool:
    """Make the month's stored rows what ``wanted`` says; True when anything changed."""
    stored = list(
        WorkspaceCost.objects.filter(workspace=workspace, day__gte=month, day__lt=next_month(month))
    )
    have = {(r.day, r.resource_id): (r.amount, r.kind, r.currency) for r in stored}
    if have == wanted:
        return False
    # Rows Azure no longer reports (a charge moved or refunded) go.
    WorkspaceCost.objects.filter(
        pk__in=[r.pk for r in stored if (r.day, r.resource_id) not in wanted]
    ).delete()
    WorkspaceCost.objects.bulk_create(
        [
            WorkspaceCost(
                workspace=workspace, day=day, resource_id=rid, kind=kind, amount=amount, currency=currency
            )
            for (day, rid), (amount, kind, currency) in wanted.items()
            if have.get((day, rid)) != (amount, kind, currency)
        ],
        update_conflicts=True,
        unique_fields=["workspace", "day", "resource_id"],
        update_fields=["kind", "amount", "currency"],
    )
    return True


def spend_record(*, workspace_id: int, rows: Iterable[CostLine], month: date | None = None) -> SpendFigures:
    """Store a workspace's month to date as Azure reports it now; alert once a month over the threshold."""
    month = month or this_month()
    wanted = _sums(rows, month)
    with transaction.atomic():
        workspace = Workspace.objects.select_for_update().get(pk=workspace_id)
        spend, _ = WorkspaceSpend.objects.select_for_update().get_or_create(
            workspace=workspace, defaults={"month": month}
        )
        new_month = spend.month != month or spend.read_at is None
        changed = _replace_rows(workspace, month, wanted) or new_month
        before = {"month": f"{spend.month:%Y-%m}", "month_to_date": str(spend.month_to_date)}
        spend.month = month
        spend.month_to_date = sum((amount for amount, _, _ in wanted.values()), Decimal(0))
        spend.currency = next((c for _, _, c in wanted.values()), spend.currency or "USD")
        spend.read_at, spend.error, spend.failed_at = timezone.now(), "", None
        spend.save()
        figures = workspace_figures(workspace)
        if changed:
            after = {
                "month": f"{month:%Y-%m}",
                "month_to_date": str(spend.month_to_date),
                "rows": len(wanted),
            }
            audit_record(
                actor=SYSTEM,
                action="spend.read",
                obj=workspace,
                workspace_name=workspace.workspace_name,
                before=before,
                after=after,
                message=f"month to date {spend.month_to_date:.2f} {spend.currency} (Cost Management)",
            )
        _alert(spend, figures)
    return figures


def _alert(spend: WorkspaceSpend, figures: SpendFigures) -> None:
    """Flag the workspace; the first time this month it passes its threshold, audit and notify."""
    if spend.over_threshold != figures.over_threshold:
        spend.over_threshold = figures.over_threshold
        spend.save(update_fields=["over_threshold"])
    if not figures.over_threshold or spend.alerted_month == figures.month:
        return
    spend.alerted_month = figures.month
    spend.save(update_fields=["alerted_month"])
    event = audit_record(
        actor=SYSTEM,
        action="spend.over_threshold",
        obj=figures.workspace,
        workspace_name=figures.workspace.workspace_name,
        after=figures.as_dict(),
        message=_alert_text(figures),
    )
    spend_over_threshold_notify(figures, event_id=event.pk)


def _alert_text(figures: SpendFigures) -> str:
    against = "the team's monthly budget" if figures.budget else "the workspace's monthly estimate"
    spent = figures.team_month_to_date if figures.budget else figures.month_to_date
    return (
        f"{spent:.2f} {figures.currency} spent this month passes {figures.alert_percent}% of {against} "
        f"({figures.limit} {figures.currency})"
    )


def spend_over_threshold_notify(figures: SpendFigures, *, event_id: int) -> int:
    """Tell the admins and the workspace's team leads its spend passed the threshold (caller's transaction)."""
    ws = figures.workspace
    kind = NotificationKind.SPEND_OVER_THRESHOLD
    admins = notifications.admin_addresses(kind)
    leads = sorted(selectors.team_lead_addresses({ws.pk}).get(ws.pk, set()))
    message = notifications.Message(
        kind=kind,
        key=f"{kind}:workspace:{ws.pk}:{figures.month:%Y-%m}:{event_id}",
        subject=f"Spend of {ws.workspace_name} passed {figures.alert_percent}% this month",
        body=f"The AzureML workspace {ws.workspace_name} ({figures.team}): {_alert_text(figures)}.",
        link=notifications.absolute_url(reverse("provisioning:workspace_detail", args=[ws.pk])),
        to=tuple(dict.fromkeys([*admins, *leads])),
        channels=(*notifications.team_channels(ws.department, ws.team), *notifications.portal_channels()),
        facts={
            "Month to date": f"{figures.month_to_date:.2f} {figures.currency}",
            "Estimate": f"{figures.estimate} {figures.currency}",
            "Team budget": f"{figures.budget} {figures.currency}" if figures.budget else "none",
        },
    )
    return notifications.notify(message, checked=admins)


def spend_failed(*, workspace_id: int, error: str) -> None:
    """Record why a workspace's spend could not be read (its figures stay as last read)."""
    month = this_month()
    with transaction.atomic():
        spend, _ = WorkspaceSpend.objects.select_for_update().get_or_create(
            workspace_id=workspace_id, defaults={"month": month}
        )
        spend.error, spend.failed_at = error[:MAX_ERROR], timezone.now()
        spend.save(update_fields=["error", "failed_at"])
