"""Every form of one request page together, the spec they add up to, and a saved spec as form data."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from django import forms

from provisioning.models import (
    Persona,
    Priority,
    Workspace,
)
from provisioning.problems import Problem
from provisioning.spec import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_MIN_NODES,
    RequestSpec,
)
from provisioning.workflow.forms.parts import ClusterFormSet, MemberFormSet, RevokeForm, WorkspaceForm
from provisioning.workflow.forms.widgets import CLUSTER_KINDS, MEMBER_KINDS, Kind, SizeChoices


def filled_forms(formset: forms.BaseFormSet) -> list[Any]:
    """The rows the team lead filled in, in order: row ``i`` here is ``clusters.i`` in the spec."""
    return [form for form in formset.forms if form.has_changed()]


def _add_form_error(form: forms.Form, field: str, message: str) -> None:
    field = field if field in form.fields else field.partition(".")[0]  # pool_teams.2: the list's field
    form.add_error(field if field in form.fields else None, message)


class RequestForms:
    """Every form of one request page, chosen by the request's kind, and the spec they add up to."""

    def __init__(
        self, *, kind: str, data: Mapping[str, Any] | None = None, workspace: Workspace | None = None
    ) -> None:
        self.kind = kind
        self.workspace = workspace
        self.workspace_form = WorkspaceForm(data) if kind == Kind.NEW_WORKSPACE else None
        self.clusters = (
            ClusterFormSet(
                data,
                prefix="clusters",
                form_kwargs={"workspace": workspace, "sizes": SizeChoices.build(workspace)},
            )
            if kind in CLUSTER_KINDS
            else None
        )
        self.members = MemberFormSet(data, prefix="members") if kind in MEMBER_KINDS else None
        self.revoke = None
        if kind == Kind.REVOKE_ACCESS:
            assert workspace is not None, "revoking access needs the workspace"  # nosec B101 # revoke forms are built only with their workspace (mypy narrowing)
            self.revoke = RevokeForm(data, workspace=workspace)
        self.general_errors: list[str] = []

    def parts(self) -> list[forms.Form | forms.BaseFormSet]:
        """The forms and formsets this kind of request uses."""
        candidates = (self.workspace_form, self.clusters, self.members, self.revoke)
        return [part for part in candidates if part is not None]

    def is_valid(self) -> bool:
        """Whether every part is valid enough to build the request's spec (all parts are checked)."""
        return all([part.is_valid() for part in self.parts()]) and not self.general_errors

    @property
    def has_errors(self) -> bool:
        """Whether the page shows any error (a blank new form shows none)."""
        if not any(part.is_bound for part in self.parts()):
            return False
        return not self.is_valid()

    def spec(self) -> RequestSpec:
        """The request the forms describe (call only once ``is_valid()``)."""
        return RequestSpec(
            workspace=self.workspace_form.to_spec() if self.workspace_form is not None else None,
            clusters=tuple(f.to_spec() for f in filled_forms(self.clusters))
            if self.clusters is not None
            else (),
            members=tuple(f.to_spec() for f in filled_forms(self.members))
            if self.members is not None
            else (),
            revoke=tuple(m.pk for m in self.revoke.cleaned_data["memberships"])
            if self.revoke is not None
            else (),
        )

    def add_problems(self, problems: Iterable[Problem]) -> None:
        """Show each problem next to its field; problems with no field of their own go on top."""
        for problem in problems:
            self.add_problem(problem)

    def add_problem(self, problem: Problem) -> None:
        """Attach one problem by its field path (``workspace.team``, ``clusters.1.name``, ``revoke.0``)."""
        section, _, rest = problem.field.partition(".")
        if section == "workspace" and self.workspace_form is not None:
            _add_form_error(self.workspace_form, rest, problem.message)
        elif section == "clusters" and self.clusters is not None:
            _add_row_error(self.clusters, rest, problem.message)
        elif section == "members" and self.members is not None:
            _add_row_error(self.members, rest, problem.message)
        elif section == "revoke" and self.revoke is not None:
            self.revoke.add_error("memberships", problem.message)
        else:
            self.general_errors.append(problem.message)


def _add_row_error(formset: forms.BaseFormSet, path: str, message: str) -> None:
    """``path`` is ``"<row>.<field>"`` counted over filled rows, or empty for the whole list."""
    index, _, field = path.partition(".")
    rows = filled_forms(formset)
    if index.isdigit() and int(index) < len(rows):
        _add_form_error(rows[int(index)], field, message)
    else:
        formset.non_form_errors().append(message)


def _formset_data(prefix: str, rows: list[dict[str, Any]], blank: dict[str, Any]) -> dict[str, Any]:
    """What a browser would post for these rows; one blank row when there are none (the page adds more)."""
    rows = rows or [blank]
    data: dict[str, Any] = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": 0}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def request_data(spec: RequestSpec, *, kind: str) -> dict[str, Any]:
    """A saved spec as form data, so a draft opens in the same forms, errors and all."""
    data: dict[str, Any] = {}
    if kind == Kind.NEW_WORKSPACE and spec.workspace is not None:
        data.update({k: v for k, v in dataclasses.asdict(spec.workspace).items() if k != "data_lake"})
        data["pool_teams"] = "\n".join(spec.workspace.pool_teams)
        if spec.workspace.data_lake:
            data["data_lake"] = "on"
    if kind in CLUSTER_KINDS:
        blank = {
            "name": "",
            "vm_size": "",
            "priority": Priority.LOW_PRIORITY,
            "max_nodes": 1,
            "min_nodes": DEFAULT_MIN_NODES,
            "idle_seconds": DEFAULT_IDLE_SECONDS,
            "justification": "",
        }
        data.update(_formset_data("clusters", [dataclasses.asdict(c) for c in spec.clusters], blank))
    if kind in MEMBER_KINDS:
        rows = [{"principal": m.principal, "persona": m.persona, "days": m.days or ""} for m in spec.members]
        blank = {"principal": "", "persona": Persona.DATA_SCIENTIST, "days": ""}
        data.update(_formset_data("members", rows, blank))
    if kind == Kind.REVOKE_ACCESS:
        data["memberships"] = [str(pk) for pk in spec.revoke]
    return data
