"""Spend as pages draw it: a workspace's month by day (a server-drawn SVG of vertical bars) and by kind.

The chart follows the capacity chart (``views.capacity.chart``): geometry computed here, drawn by a template
with presentation attributes only (no inline style or script: the CSP forbids them), named in text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from provisioning.capacity import spend
from provisioning.models import Workspace
from provisioning.workflow import selectors

# The chart's geometry, in viewBox units (the SVG scales to its column).
VIEW_WIDTH = 620
LEFT = 56
RIGHT = 8
TOP = 10
PLOT_HEIGHT = 140
BOTTOM = 24
BAR_COLOUR = "#0b3d91"
PACE_COLOUR = "#b42318"


@dataclass(frozen=True)
class DayBar:
    """One day's bar, placed."""

    day: date
    amount: Decimal
    x: float
    y: float
    width: float
    height: float
    label: bool

    @property
    def words(self) -> str:
        return f"{self.day:%d %b}: {self.amount:.2f}"


@dataclass(frozen=True)
class DayChart:
    """A month's cost by day: a bar per day, the estimate's daily pace drawn across them."""

    id: str
    title: str
    currency: str
    bars: list[DayBar]
    top_amount: Decimal
    pace_y: float | None

    view_width = VIEW_WIDTH
    left = LEFT
    right_x = VIEW_WIDTH - RIGHT
    top = TOP
    base_y = TOP + PLOT_HEIGHT
    label_y = TOP + PLOT_HEIGHT + 16
    height = TOP + PLOT_HEIGHT + BOTTOM
    colour = BAR_COLOUR
    pace_colour = PACE_COLOUR

    @property
    def axis_label_x(self) -> int:
        return LEFT - 6

    @property
    def top_label_y(self) -> int:
        return TOP + 10

    @property
    def summary(self) -> str:
        days = "; ".join(bar.words for bar in self.bars)
        return f"Cost per day in {self.currency}: {days}." if days else "No cost read yet this month."


def day_chart(month: spend.MonthCosts, figures: spend.SpendFigures) -> DayChart:
    """Lay out a bar per day of the month so far, scaled to the largest day or the estimate's daily pace."""
    days_in_month = (spend.next_month(figures.month) - figures.month).days
    pace = figures.estimate / days_in_month if figures.estimate else None
    top = max([amount for _, amount in month.by_day] + [pace or Decimal(0)] + [Decimal("0.01")])
    slot = (VIEW_WIDTH - LEFT - RIGHT) / days_in_month
    scale = PLOT_HEIGHT / float(top)
    bars = []
    for day, amount in month.by_day:
        height = round(float(amount) * scale, 1)
        x = round(LEFT + (day.day - 1) * slot + slot * 0.15, 1)
        label = day.day == 1 or day.day % 5 == 0
        bars.append(
            DayBar(day, amount, x, round(TOP + PLOT_HEIGHT - height, 1), round(slot * 0.7, 1), height, label)
        )
    return DayChart(
        id=f"spend-{figures.workspace.pk}",
        title=f"Cost per day in {figures.month:%B %Y}",
        currency=figures.currency,
        bars=bars,
        top_amount=top.quantize(Decimal("0.01")),
        pace_y=round(TOP + PLOT_HEIGHT - float(pace) * scale, 1) if pace else None,
    )


def workspace_spend_context(workspace: Workspace, *, estimate: Decimal | None = None) -> dict[str, Any]:
    """A workspace's spend: the figures, the chart by day, the table by kind (``estimate``: the clusters'
    monthly cost, when already computed)."""
    figures = spend.workspace_figures(workspace, estimate=estimate)
    month = spend.month_costs(workspace, month=figures.month)
    return {"spend": figures, "spend_chart": day_chart(month, figures), "spend_kinds": month.by_kind}


@login_required
@require_GET
def workspace_spend(request: HttpRequest, pk: int) -> HttpResponse:
    """A workspace's spend this month, to whoever may see the workspace. The workspace page loads it into its
    own section once shown, so its figures cost the workspace page nothing."""
    workspace = get_object_or_404(selectors.workspaces_visible_to(request.user), pk=pk)
    context = {"nav": "workspaces", "workspace": workspace, **workspace_spend_context(workspace)}
    return render(request, "provisioning/workspace_spend.html", context)
