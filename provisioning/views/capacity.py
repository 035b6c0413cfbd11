"""The admins' capacity page: cores per region and VM family, team budgets, and flagged clusters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.functional import SimpleLazyObject
from django.views.decorators.http import require_GET, require_POST

from accounts import personas
from provisioning.arm import family_label
from provisioning.capacity import budgets
from provisioning.capacity import report as capacity_report
from provisioning.capacity.report import Figures
from provisioning.capacity.spend import team_spend
from provisioning.models import TeamBudget
from provisioning.views import fragments
from provisioning.workflow import quota_requests

MAX_CORES = 100_000

# (figure, words, colour): colours reach at least 5:1 against white, and every bar is named in text.
# Budget rows per page: 200 teams with 3 families each would be a 600-row table; find a team by name.
BUDGET_ROWS = 25
SPEND_TEAMS = 25  # the teams with the most spend this month (flagged ones first)
QUOTA_ROWS = 10  # the latest quota requests; the rest on their own page
MEASURES = (
    ("used", "Used now (Azure)", "#0b3d91"),
    ("allocated", "Allocated to teams", "#6941c6"),
    ("held", "Held by portal clusters", "#027a48"),
    ("pending", "Requested, pending", "#b54708"),
    ("limit", "Limit (Azure)", "#475467"),
)
PORTAL_MEASURES = ("allocated", "held", "pending")
# The chart's geometry, in viewBox units (the SVG scales to its column).
VIEW_WIDTH = 560
BAR_X = 180
BAR_SPAN = 280
ROW = 24
BAR_HEIGHT = 16
TOP = 6

REFRESH_MESSAGES = {
    "queued": (messages.SUCCESS, "Refresh from Azure queued: the figures update in a minute or two."),
    "already queued": (messages.INFO, "A refresh from Azure is already queued: the figures update shortly."),
    "unavailable": (
        messages.ERROR,
        "The refresh could not be queued (the queue is unreachable): try again later.",
    ),
}


@dataclass(frozen=True)
class Bar:
    """One bar of a chart, placed."""

    words: str
    colour: str
    value: int | None
    y: int
    width: float
    text_x: float

    @property
    def text(self) -> str:
        return "not read yet" if self.value is None else f"{self.value} cores"

    @property
    def label_y(self) -> int:
        return self.y + BAR_HEIGHT - 4


@dataclass(frozen=True)
class Chart:
    """A horizontal bar chart of one line of figures: a bar per measure, the limit drawn across them."""

    id: str
    title: str
    figures: Figures
    bars: list[Bar]
    limit_x: float | None

    view_width = VIEW_WIDTH
    bar_x = BAR_X
    label_x = BAR_X - 8
    bar_height = BAR_HEIGHT

    @property
    def height(self) -> int:
        return TOP * 2 + ROW * len(self.bars)

    @property
    def summary(self) -> str:
        return "; ".join(f"{bar.words}: {bar.text}" for bar in self.bars) + "."


def _title(figures: Figures, region: str) -> str:
    if figures.key.endswith("_total"):
        return f"{figures.label} in {region}"
    words = "dedicated" if figures.priority == capacity_report.DEDICATED else "low-priority"
    return f"{figures.label}, {words} cores in {region}"


def chart(figures: Figures, *, region: str) -> Chart:
    """Lay out the bars of one line of figures, scaled to its largest figure."""
    values = [getattr(figures, name) for name, _, _ in MEASURES]
    scale = BAR_SPAN / max([v for v in values if v] or [1])
    bars = []
    for i, ((_, words, colour), value) in enumerate(zip(MEASURES, values, strict=True)):
        width = round((value or 0) * scale, 1)
        bars.append(Bar(words, colour, value, TOP + i * ROW, width, BAR_X + width + 6))
    return Chart(
        id=f"chart-{region}-{figures.priority}-{figures.key}",
        title=_title(figures, region),
        figures=figures,
        bars=bars,
        limit_x=BAR_X + round(figures.limit * scale, 1) if figures.limit else None,
    )


@dataclass(frozen=True)
class RegionView:
    """A region as the page draws it."""

    capacity: capacity_report.RegionCapacity
    totals: list[Chart]
    families: list[Chart]
    idle_families: list[capacity_report.Figures]


def region_view(region: capacity_report.RegionCapacity) -> RegionView:
    """Families with something in use, budgeted, held or pending are charted; the rest only listed."""
    name = region.region.name
    return RegionView(
        capacity=region,
        totals=[chart(region.dedicated_total, region=name), chart(region.low_priority_total, region=name)],
        families=[chart(f, region=name) for f in region.families if not f.idle],
        idle_families=[f for f in region.families if f.idle],
    )


def _offer(field: forms.Field, blank: str, choices: list[tuple[str, str]]) -> None:
    assert isinstance(field, forms.ChoiceField)  # nosec B101 # the form declares this field a ChoiceField (mypy narrowing)
    field.choices = [("", blank), *choices]


class TeamBudgetForm(forms.Form):
    """A team's cores in a region and VM family; the service checks them against Azure's figures."""

    # Typed with suggestions (a <datalist> of the known teams), not a <select>: an enterprise has hundreds
    # of teams, and a select renders each one through the form widget templates.
    team = forms.ChoiceField(
        label="Team, project or pool (department/team, department/team.project)",
        widget=forms.TextInput(attrs={"list": "budget-teams", "autocomplete": "off", "spellcheck": "false"}),
        error_messages={
            "required": "Choose the team the budget is for.",
            "invalid_choice": "%(value)s is not a team of the portal: type department/team as the list suggests.",
        },
    )
    region = forms.ChoiceField(label="Region", error_messages={"required": "Choose the region."})
    family = forms.ChoiceField(label="VM family", error_messages={"required": "Choose the VM family."})
    dedicated_cores = forms.IntegerField(
        label="Dedicated cores",
        min_value=0,
        max_value=MAX_CORES,
        help_text="Also applied as the AzureML workspace quota of the team's workspaces in the region.",
        error_messages={
            "min_value": "A budget cannot be negative: give 0 or more cores.",
            "required": "Give the dedicated cores (0 for none).",
            "invalid": "Give a whole number of cores, e.g. 16.",
        },
    )
    low_priority_cores = forms.IntegerField(
        label="Low-priority cores",
        min_value=0,
        max_value=MAX_CORES,
        error_messages={
            "min_value": "A budget cannot be negative: give 0 or more cores.",
            "required": "Give the low-priority cores (0 for none).",
            "invalid": "Give a whole number of cores, e.g. 32.",
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The version of the page's figures, read once for the choices and the page's kept sections.
        self.version = capacity_report.page_version()
        choices = capacity_report.budget_choices_kept(self.version)
        _offer(self.fields["team"], "Choose a team", choices["teams"])
        _offer(self.fields["region"], "Choose a region", choices["regions"])
        if choices["families"]:
            _offer(self.fields["family"], "Choose a VM family", choices["families"])
        else:  # no catalog read yet: the family is typed as Azure names it
            self.fields["family"] = forms.CharField(
                label="VM family",
                max_length=60,
                error_messages={"required": "Give the VM family."},
                help_text="As Azure names it, e.g. standardDSv2Family (no size catalog has been read yet).",
            )
        for name, field in self.fields.items():
            css = "form-select" if isinstance(field.widget, forms.Select) else "form-control"
            field.widget.attrs.update({"class": css})
            if name.endswith("_cores"):
                field.widget.attrs.update({"inputmode": "numeric"})

    def team_parts(self) -> tuple[str, str, str]:
        """(department, team, project) from ``department/team`` or ``department/team.project``."""
        department, _, team = self.cleaned_data["team"].partition("/")
        team, _, project = team.partition(".")
        return department, team, project


def _require_admin(user: Any) -> None:
    if not personas.is_admin(user):
        raise PermissionDenied("only portal administrators can see and change capacity")


def _initial(request: HttpRequest) -> dict[str, Any]:
    """The form filled from a budget row's "change" link (``?team=&region=&family=``)."""
    wanted: dict[str, Any] = {name: request.GET.get(name, "") for name in ("team", "region", "family")}
    department, _, team = wanted["team"].partition("/")
    team, _, project = team.partition(".")
    budget = TeamBudget.objects.filter(
        department=department, team=team, project=project, region=wanted["region"], family=wanted["family"]
    ).first()
    if budget is not None:
        wanted.update(dedicated_cores=budget.dedicated_cores, low_priority_cores=budget.low_priority_cores)
    return {k: v for k, v in wanted.items() if v != ""}


def _page(request: HttpRequest, form: TeamBudgetForm) -> HttpResponse:
    """The page; its sections are kept rendered per version of their figures (``views.fragments``), so the
    overview is computed only when a section is rendered."""
    team_filter = request.GET.get("budget_team", "").strip()[:40]
    budget_page = Paginator(capacity_report.budgets_matching(team_filter), BUDGET_ROWS).get_page(
        request.GET.get("page")
    )
    overview = SimpleLazyObject(lambda: capacity_report.capacity_overview(budgets=budget_page.object_list))
    context = {
        "nav": "capacity",
        "overview": overview,
        "budget_page": budget_page,
        "budget_rows": SimpleLazyObject(lambda: overview.budgets),
        "budget_team": team_filter,
        "regions": SimpleLazyObject(lambda: [region_view(r) for r in overview.regions]),
        "measures": MEASURES,
        "portal_measures": [m for m in MEASURES if m[0] in PORTAL_MEASURES],
        "form": form,
        "quota_rows": list(quota_requests.quota_requests_visible_to(request.user)[:QUOTA_ROWS]),  # type: ignore[arg-type]
        "is_admin": True,
        "kept_for": fragments.FRAGMENT_SECONDS,
        "version": form.version,
        "viewer": fragments.viewer_key(request),
    }
    return render(request, "provisioning/capacity.html", context)


@login_required
@require_GET
def capacity_spend(request: HttpRequest) -> HttpResponse:
    """Each team's spend this month against its estimate and budget, flagged teams first (admins). The
    capacity page loads it into its own section, so its figures cost the capacity page nothing."""
    _require_admin(request.user)
    spend_teams = team_spend()
    context = {
        "nav": "capacity",
        "spend_teams": spend_teams[:SPEND_TEAMS],
        "spend_more": max(0, len(spend_teams) - SPEND_TEAMS),
    }
    return render(request, "provisioning/capacity_spend.html", context)


@login_required
@require_GET
def capacity_page(request: HttpRequest) -> HttpResponse:
    """Cores per region and family (used, allocated, held, pending, limit), budgets and flagged clusters."""
    _require_admin(request.user)
    return _page(request, TeamBudgetForm(initial=_initial(request)))


@login_required
@require_POST
def capacity_refresh(request: HttpRequest) -> HttpResponse:
    """Queue reading sizes and usages from Azure (and the cluster guard) now, not at the next tick."""
    _require_admin(request.user)
    level, text = REFRESH_MESSAGES[budgets.capacity_refresh_enqueue(actor=request.user)]
    messages.add_message(request, level, text)
    return redirect("provisioning:capacity")


@login_required
@require_POST
def budget_set(request: HttpRequest) -> HttpResponse:
    """Set or change a team's budget; bad input comes back on the page with what was typed."""
    _require_admin(request.user)
    form = TeamBudgetForm(request.POST)
    if form.is_valid():
        department, team, project = form.team_parts()
        try:
            budget = budgets.team_budget_set(
                actor=request.user,
                department=department,
                team=team,
                project=project,
                region=form.cleaned_data["region"],
                family=form.cleaned_data["family"],
                dedicated_cores=form.cleaned_data["dedicated_cores"],
                low_priority_cores=form.cleaned_data["low_priority_cores"],
            )
        except budgets.BudgetError as exc:
            for problem in exc.problems:
                form.add_error(problem.field if problem.field in form.fields else None, problem.message)
        else:
            messages.success(
                request,
                f"Budget of {budget.holder} for {family_label(budget.family)} in "
                f"{budget.region} set: {budget.dedicated_cores} dedicated, {budget.low_priority_cores} "
                "low-priority cores. Applying it as workspace quota is queued.",
            )
            return redirect("provisioning:capacity")
    return _page(request, form)
