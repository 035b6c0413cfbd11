"""The lists' search forms: bounded, validated filters in the query string, and whitelisted sorts.

Every field is optional and they combine with AND. A bad value (a date that is not one, a sort the list does
not offer) makes the form invalid: the list then shows its message and no rows, never a 500. A sort always
ends with the id in the same direction, so rows that tie keep one order from page to page.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any, ClassVar

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db.models import Q, QuerySet, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast

from provisioning.models import ChangeRequest, Environment, ResourceState, Workspace

# A team is written as the naming convention has it (``bluegranit``), or with its department (``bgmr/bluegranit``).
TEAM_HELP = "A team, or department/team"
MAX_WORDS = 5  # a requester's search: each word must match the name, UPN or display name
# Dates beyond these are typing mistakes (and the end of year 9999 has no next day to compare with).
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)


class ListFilterForm(forms.Form):
    """Shared by the lists: Bootstrap's small controls, the ``sort`` whitelist, and whether anything is set."""

    # key -> the fields it orders by, ascending (``-key`` reverses them); the id breaks ties.
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {}
    DEFAULT_SORT: ClassVar[str] = ""

    sort: forms.Field = forms.CharField(required=False, max_length=30, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if isinstance(field.widget, forms.HiddenInput):
                continue
            css = (
                "form-select form-select-sm"
                if isinstance(field, forms.ChoiceField)
                else "form-control form-control-sm"
            )
            field.widget.attrs["class"] = css

    def clean_sort(self) -> str:
        sort = self.cleaned_data.get("sort") or self.DEFAULT_SORT
        if sort.removeprefix("-") not in self.SORTS:
            offered = ", ".join(sorted(self.SORTS))
            raise forms.ValidationError(f"Unknown sort “{sort[:30]}”: sort by one of {offered}.")
        return sort

    @property
    def current_sort(self) -> str:
        """The sort shown (the default while the form is invalid)."""
        if self.is_valid():
            return str(self.cleaned_data["sort"])
        return self.DEFAULT_SORT

    def ordering(self) -> list[str]:
        """``order_by`` arguments for the current sort, the id last in the same direction."""
        sort = self.current_sort
        descending = sort.startswith("-")
        fields = [*self.SORTS[sort.removeprefix("-")], "id"]
        return [f"-{name}" if descending else name for name in fields]

    def is_filtered(self) -> bool:
        """Whether any filter (not the sort) is set."""
        return any(self.data.get(name) for name in self.fields if name != "sort")

    def full_clean(self) -> None:
        super().full_clean()
        for name in self.errors:  # the message is read out with the control it is about
            if name in self.fields:
                self.fields[name].widget.attrs.update(
                    {"aria-invalid": "true", "aria-describedby": f"{self[name].id_for_label}-error"}
                )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return data


def _team_parts(text: str) -> tuple[str, str]:
    """``(department, team)`` from ``team`` or ``department/team``, lower case (the convention's)."""
    department, _, team = text.strip().lower().rpartition("/")
    return department, team


def requester_q(text: str, prefix: str = "requester__") -> Q:
    """People whose name, UPN, email or display name holds every word of ``text``."""
    q = Q()
    for word in text.split()[:MAX_WORDS]:
        q &= (
            Q(**{f"{prefix}username__icontains": word})
            | Q(**{f"{prefix}upn__icontains": word})
            | Q(**{f"{prefix}email__icontains": word})
            | Q(**{f"{prefix}first_name__icontains": word})
            | Q(**{f"{prefix}last_name__icontains": word})
        )
    return q


def _midnight(day: date, days: int = 0) -> datetime:
    return datetime.combine(day + timedelta(days=days), time.min, tzinfo=UTC)


def _date_fields() -> tuple[forms.DateField, forms.DateField]:
    bounds = [
        MinValueValidator(FIRST_DAY, f"Enter a date from {FIRST_DAY.isoformat()} on."),
        MaxValueValidator(LAST_DAY, f"Enter a date up to {LAST_DAY.isoformat()}."),
    ]

    def field(label: str) -> forms.DateField:
        return forms.DateField(
            label=label,
            required=False,
            validators=bounds,
            widget=forms.DateInput(attrs={"type": "date"}),
            error_messages={"invalid": "Enter a date as YYYY-MM-DD."},
        )

    return field("From"), field("To")


class RequestSearchForm(ListFilterForm):
    """Filters of the request lists and the approvals queue: team, requester, workspace, kind and dates."""

    DATE_FIELD: ClassVar[str] = "created_at"

    team = forms.CharField(label="Team", required=False, max_length=30, help_text=TEAM_HELP)
    workspace = forms.CharField(label="Workspace", required=False, max_length=33)
    requester = forms.CharField(label="Requested by", required=False, max_length=254)
    kind = forms.ChoiceField(
        label="Kind", required=False, choices=[("", "Any kind"), *ChangeRequest.Kind.choices]
    )
    date_from, date_to = _date_fields()

    def filter_requests(self, requests: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
        """``requests`` narrowed to the valid filters (none while the form is invalid), in the chosen order."""
        if not self.is_valid():
            return requests.none()
        data = self.cleaned_data
        if data.get("status"):
            requests = requests.filter(status=data["status"])
        if data.get("kind"):
            requests = requests.filter(kind=data["kind"])
        if data.get("workspace"):
            requests = requests.filter(workspace_name__icontains=data["workspace"])
        if data.get("requester"):
            requests = requests.filter(requester_q(data["requester"]))
        if data.get("team"):
            requests = requests.filter(self._team_q(data["team"]))
        # Whole days in UTC (the lists show UTC), as a range the column's index can serve.
        if data.get("date_from"):
            requests = requests.filter(**{f"{self.DATE_FIELD}__gte": _midnight(data["date_from"])})
        if data.get("date_to"):
            requests = requests.filter(**{f"{self.DATE_FIELD}__lt": _midnight(data["date_to"], days=1)})
        return requests.order_by(*self.ordering())

    @staticmethod
    def _team_q(text: str) -> Q:
        # A request for a new workspace names its team in the spec until the workspace row exists; every
        # other request belongs to a workspace, whose team the row holds.
        department, team = _team_parts(text)
        teams = Workspace.objects.filter(team=team)
        in_spec = Q(spec_team=team)
        if department:
            teams = teams.filter(department=department)
            in_spec &= Q(spec_department=department)
        return Q(workspace__in=teams.values("pk")) | (Q(workspace__isnull=True) & in_spec)


def with_spec_team(requests: QuerySet[ChangeRequest]) -> QuerySet[ChangeRequest]:
    """``requests`` with the new workspace's department and team of their spec, for the team filter.

    Cast to text: on SQLite an exact lookup on ``KT`` compares with ``JSON_EXTRACT(<value>, '$')``, which
    fails on a plain name ("malformed JSON"); PostgreSQL's ``->>`` is text already."""
    return requests.alias(
        spec_team=Cast(KT("spec__workspace__team"), TextField()),
        spec_department=Cast(KT("spec__workspace__department"), TextField()),
    )


class RequestFilterForm(RequestSearchForm):
    """The requests list: status too, and the requester only in an admin's list (a lead's holds her own)."""

    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "id": ("id",),
        "created": ("created_at",),
        "submitted": ("submitted_at",),
        "workspace": ("workspace_name",),
        "status": ("status",),
        "kind": ("kind",),
        "requester": ("requester__username",),
    }
    DEFAULT_SORT = "-created"

    status = forms.ChoiceField(
        label="Status", required=False, choices=[("", "Any status"), *ChangeRequest.Status.choices]
    )
    field_order = ["status", "kind", "team", "workspace", "requester", "date_from", "date_to"]

    def __init__(self, *args: Any, admin: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not admin:  # a team lead's list holds only their own requests
            del self.fields["requester"]


class QueueFilterForm(RequestSearchForm):
    """The approvals queue: the waiting requests by team, requester, workspace, kind and submission date."""

    DATE_FIELD = "submitted_at"
    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "id": ("id",),
        "submitted": ("submitted_at",),
        "workspace": ("workspace_name",),
        "kind": ("kind",),
        "requester": ("requester__username",),
    }
    DEFAULT_SORT = "submitted"
    # The queue's table belongs to the decisions made in it: its order is chosen here, not by its headers.
    sort: forms.Field = forms.ChoiceField(
        label="Order",
        required=False,
        choices=[
            ("submitted", "Oldest first"),
            ("-submitted", "Newest first"),
            ("workspace", "Workspace"),
            ("requester", "Requester"),
            ("kind", "Kind"),
        ],
        error_messages={"invalid_choice": "Unknown sort “%(value)s”: choose one of the orders offered."},
    )
    field_order = ["team", "requester", "workspace", "kind", "date_from", "date_to", "sort"]


WORKSPACE_STATES = [("", "Any state"), *ResourceState.choices]


class WorkspaceFilterForm(ListFilterForm):
    """The workspace list: name, team, region, environment, state, management and open drift."""

    SORTS: ClassVar[dict[str, tuple[str, ...]]] = {
        "workspace": ("workspace_name",),
        "team": ("department", "team"),
        "region": ("region",),
        "environment": ("environment",),
        "state": ("state",),
        "owner": ("owner__username",),
        "created": ("created_at",),
    }
    DEFAULT_SORT = "workspace"

    q = forms.CharField(label="Workspace", required=False, max_length=33)
    team = forms.CharField(label="Team", required=False, max_length=30, help_text=TEAM_HELP)
    region = forms.CharField(label="Region", required=False, max_length=40)
    environment = forms.ChoiceField(
        label="Environment", required=False, choices=[("", "Any environment"), *Environment.choices]
    )
    state = forms.ChoiceField(label="State", required=False, choices=WORKSPACE_STATES)
    management = forms.ChoiceField(
        label="Managed", required=False, choices=[("", "Managed or observed"), *Workspace.Management.choices]
    )
    drift = forms.ChoiceField(
        label="Drift", required=False, choices=[("", "With or without"), ("open", "Has open drift")]
    )

    def filter_workspaces(self, workspaces: QuerySet[Workspace]) -> QuerySet[Workspace]:
        """``workspaces`` (annotated with ``open_drift``) narrowed and ordered; none while invalid."""
        if not self.is_valid():
            return workspaces.none()
        data = self.cleaned_data
        if data.get("q"):
            workspaces = workspaces.filter(workspace_name__icontains=data["q"])
        if data.get("team"):
            department, team = _team_parts(data["team"])
            workspaces = workspaces.filter(team=team, **({"department": department} if department else {}))
        if data.get("region"):
            workspaces = workspaces.filter(region__iexact=data["region"].strip())
        for name in ("environment", "state", "management"):
            if data.get(name):
                workspaces = workspaces.filter(**{name: data[name]})
        if data.get("drift"):
            workspaces = workspaces.filter(Q(open_drift__gt=0))
        return workspaces.order_by(*self.ordering())


class AccessSearchForm(forms.Form):
    """*My access*: the workspaces by name or team."""

    q = forms.CharField(label="Workspace or team", required=False, max_length=33)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["q"].widget.attrs["class"] = "form-control form-control-sm"

    def filter_memberships(self, memberships: QuerySet[Any]) -> QuerySet[Any]:
        """Memberships whose workspace's name or team holds the text; none while the form is invalid."""
        if not self.is_valid():
            return memberships.none()
        text = self.cleaned_data.get("q", "").strip()
        if not text:
            return memberships
        return memberships.filter(
            Q(workspace__workspace_name__icontains=text) | Q(workspace__team__icontains=text)
        )
