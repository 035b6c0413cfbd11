"""Forms of the team lead's pages: a request's workspace details, clusters, members and revocations.

The forms only check what a browser can get wrong (required fields, numbers, known choices). The
portal's own rules (naming, policy, uniqueness) are in ``provisioning.workflow.validation``; their problems
are attached to these forms by field path (``workspace.team``, ``clusters.1.name``) so each one
appears next to the field the team lead typed in, with everything they typed kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from provisioning import naming
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    ChangeRequest,
    Environment,
    EnvironmentPolicy,
    Membership,
    Persona,
    Priority,
    ResourceState,
    VmSize,
    Workspace,
)
from provisioning.spec import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_MIN_NODES,
    ClusterSpec,
    MemberSpec,
    RequestSpec,
    WorkspaceSpec,
)
from provisioning.workflow.validation import Problem

Kind = ChangeRequest.Kind

# Inputs accept more than the naming convention allows, so that the naming rules, which say what to
# change and why, report a name that is too long instead of a generic "at most N characters".
DEPARTMENT_INPUT_MAX = 12
TEAM_INPUT_MAX = 24
REGION_ABBV_INPUT_MAX = 4
CUSTOM_NAME_INPUT_MAX = 30
CLUSTER_NAME_INPUT_MAX = 30
# A draft stores its workspace name in this column: a longer name cannot be saved at all.
WORKSPACE_NAME_MAX = ChangeRequest._meta.get_field("workspace_name").max_length or 33
MAX_ROWS = 50
BLANK_ROWS = 2
MAX_NUMBER = 1_000_000

CLUSTER_KINDS = frozenset({Kind.NEW_WORKSPACE, Kind.ADD_CLUSTERS})
MEMBER_KINDS = frozenset({Kind.NEW_WORKSPACE, Kind.GRANT_ACCESS})


def _style(form: forms.Form) -> None:
    """Bootstrap classes on every widget (errors are styled through Django's aria-invalid)."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple):
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = "form-select"
        else:
            css = "form-control"
        widget.attrs.setdefault("class", css)


def _choices(form: forms.Form, name: str) -> forms.ModelChoiceField:
    """A model choice field of ``form``; its choices are set per form so they are always current."""
    return cast(forms.ModelChoiceField, form.fields[name])


class RegionSelect(forms.Select):
    """A region list whose options carry the region's abbreviation, for prefilling it in the browser."""

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        region = getattr(value, "instance", None)
        if region is not None:
            option["attrs"]["data-abbreviation"] = region.abbreviation
        return option


class SizeSelect(forms.Select):
    """VM sizes labelled with vCPUs, GPUs and memory; each option says where policy and Azure allow it.

    ``data-regions`` lists the regions whose catalog offers the size (absent: no catalog read yet) and
    ``data-refused-environments`` the environments whose policy does not allow it, so the browser can
    hide what cannot be chosen. An environment without a policy row allows every size.
    """

    catalog: dict[str, list[VmSize]]
    refused_in: dict[str, list[str]]

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        size = getattr(value, "instance", None)
        if size is None:
            return option
        offered = self.catalog.get(size.name.upper(), [])
        if offered:
            option["label"] = f"{size.name} · {_size_words(offered[0])}"
        if self.catalog:
            option["attrs"]["data-regions"] = " ".join(sorted(s.region for s in offered))
        refused = self.refused_in.get(size.name.upper(), [])
        if refused:
            option["attrs"]["data-refused-environments"] = " ".join(refused)
        return option


def _size_words(size: VmSize) -> str:
    words = [f"{size.vcpus} vCPU{'s' if size.vcpus != 1 else ''}"]
    if size.gpus:
        words.append(f"{size.gpus} GPU{'s' if size.gpus != 1 else ''}")
    words.append(f"{size.memory_gb:g} GB")
    return ", ".join(words)


def _refused_environments() -> dict[str, list[str]]:
    """For each size some environment's policy leaves out, the environments that refuse it."""
    refused: dict[str, list[str]] = {}
    allowed = {s.upper() for s in AllowedVmSize.objects.filter(is_active=True).values_list("name", flat=True)}
    for policy in EnvironmentPolicy.objects.prefetch_related("allowed_sizes"):
        own = {s.name.upper() for s in policy.allowed_sizes.all()}
        for name in sorted(allowed - own) if own else []:
            refused.setdefault(name, []).append(policy.environment)
    return refused


class WorkspaceForm(forms.Form):
    """The new workspace: where it lives and the inputs of the naming convention."""

    subscription_id = forms.ModelChoiceField(
        label="Subscription",
        queryset=AllowedSubscription.objects.none(),
        to_field_name="subscription_id",
        empty_label="Choose a subscription",
    )
    region = forms.ModelChoiceField(
        label="Region",
        queryset=AllowedRegion.objects.none(),
        to_field_name="name",
        widget=RegionSelect,
        empty_label="Choose a region",
    )
    department = forms.CharField(
        label="Department",
        max_length=DEPARTMENT_INPUT_MAX,
        help_text=f"Up to {naming.DEPARTMENT_MAX} lowercase letters or digits, e.g. bgmr.",
    )
    team = forms.CharField(
        label="Team",
        max_length=TEAM_INPUT_MAX,
        help_text=f"Up to {naming.TEAM_MAX} lowercase letters or digits, e.g. bluegranit.",
    )
    region_abbv = forms.CharField(
        label="Region abbreviation",
        max_length=REGION_ABBV_INPUT_MAX,
        help_text="2 characters used in resource names, e.g. e2 for eastus2 (filled in from the region).",
    )
    environment = forms.ChoiceField(
        label="Environment", choices=[("", "Choose an environment"), *Environment.choices]
    )
    custom_name = forms.CharField(
        label="Custom name (optional)",
        required=False,
        max_length=CUSTOM_NAME_INPUT_MAX,
        help_text=f"Replaces department, team, region and environment in every resource name: "
        f"at most {naming.BASE_MAX} lowercase letters and digits.",
    )
    security_group = forms.CharField(
        label="Security group (optional)",
        required=False,
        max_length=256,
        help_text="An Entra ID group whose members all get the Data Scientist roles.",
    )
    data_lake = forms.BooleanField(
        label="Create a data lake (ADLS Gen2 storage account)",
        required=False,
        help_text="A third storage account with hierarchical namespace, for big data.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "subscription_id").queryset = AllowedSubscription.objects.filter(is_active=True)
        _choices(self, "region").queryset = AllowedRegion.objects.filter(is_active=True)
        self.fields["region_abbv"].widget.attrs["autocomplete"] = "off"
        _style(self)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        spec = self.to_spec()
        if len(spec.names().workspace) > WORKSPACE_NAME_MAX:
            # Too long to store even as a draft: say which input to shorten, in the naming rules' words.
            problems = naming.naming_problems(spec.naming_input(), data_lake=spec.data_lake)
            for problem in problems:
                self.add_error(problem.field, problem.message)
            if not problems:
                self.add_error("team", "the names are too long: use a shorter team name or a custom name")
        return cleaned

    def to_spec(self) -> WorkspaceSpec:
        """The workspace part of the request, as typed (the naming rules normalize it)."""
        data = self.cleaned_data
        return WorkspaceSpec(
            subscription_id=data["subscription_id"].subscription_id,
            region=data["region"].name,
            department=data["department"],
            team=data["team"],
            region_abbv=data["region_abbv"],
            environment=data["environment"],
            custom_name=data["custom_name"],
            security_group=data["security_group"],
            data_lake=data["data_lake"],
        )


class ClusterForm(forms.Form):
    """One compute cluster row. A row without a name and a VM size is blank and ignored."""

    name = forms.CharField(label="Name", max_length=CLUSTER_NAME_INPUT_MAX)
    vm_size = forms.ModelChoiceField(
        label="VM size",
        queryset=AllowedVmSize.objects.none(),
        to_field_name="name",
        empty_label="Choose a VM size",
        widget=SizeSelect,
    )
    priority = forms.ChoiceField(label="Priority", choices=Priority.choices, initial=Priority.LOW_PRIORITY)
    max_nodes = forms.IntegerField(label="Max nodes", initial=1, max_value=MAX_NUMBER)
    min_nodes = forms.IntegerField(label="Min nodes", initial=DEFAULT_MIN_NODES, max_value=MAX_NUMBER)
    idle_seconds = forms.IntegerField(
        label="Idle seconds before scale-down", initial=DEFAULT_IDLE_SECONDS, max_value=MAX_NUMBER
    )
    justification = forms.CharField(
        label="Why keep nodes up (min nodes above 0)",
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Required when min nodes is above 0: idle nodes are paid for.",
    )

    def __init__(
        self, *args: Any, workspace: Workspace | None = None, sizes: SizeChoices | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        sizes = sizes or SizeChoices.build(workspace)
        field = _choices(self, "vm_size")
        field.queryset = sizes.queryset
        widget = cast(SizeSelect, field.widget)
        widget.catalog, widget.refused_in = sizes.catalog, sizes.refused_in
        for name in ("max_nodes", "min_nodes", "idle_seconds"):
            self.fields[name].widget.attrs["min"] = 0
        _style(self)

    def has_changed(self) -> bool:
        return _typed(self, ("name", "vm_size"))

    def to_spec(self) -> ClusterSpec:
        data = self.cleaned_data
        return ClusterSpec(
            name=data["name"],
            vm_size=data["vm_size"].name,
            priority=data["priority"],
            max_nodes=data["max_nodes"],
            min_nodes=data["min_nodes"],
            idle_seconds=data["idle_seconds"],
            justification=data["justification"].strip(),
        )


class SizeChoices:
    """The sizes a cluster row offers: those the portal allows, narrowed to the workspace's region and
    environment when the workspace exists; with the catalog and policies that label and filter them."""

    def __init__(
        self,
        queryset: QuerySet[AllowedVmSize],
        catalog: dict[str, list[VmSize]],
        refused_in: dict[str, list[str]],
    ) -> None:
        self.queryset, self.catalog, self.refused_in = queryset, catalog, refused_in

    @classmethod
    def build(cls, workspace: Workspace | None = None) -> SizeChoices:
        queryset = AllowedVmSize.objects.filter(is_active=True)
        catalog: dict[str, list[VmSize]] = {}
        for size in VmSize.objects.filter(
            name__in=[n.upper() for n in queryset.values_list("name", flat=True)]
        ):
            catalog.setdefault(size.name, []).append(size)
        refused_in = _refused_environments()
        if workspace is not None:
            names = [
                name
                for name in (n.upper() for n in queryset.values_list("name", flat=True))
                if workspace.environment not in refused_in.get(name, [])
                and (
                    not _catalog_of(catalog, workspace.region) or workspace.region in _regions(catalog, name)
                )
            ]
            queryset = queryset.filter(name__in=names)
        return cls(queryset, catalog, refused_in)


def _catalog_of(catalog: dict[str, list[VmSize]], region: str) -> bool:
    return any(s.region == region for sizes in catalog.values() for s in sizes)


def _regions(catalog: dict[str, list[VmSize]], name: str) -> set[str]:
    return {s.region for s in catalog.get(name.upper(), [])}


class MemberForm(forms.Form):
    """One member row: a user's email or UPN and their persona. A row without a principal is ignored."""

    principal = forms.CharField(label="Email or user principal name", max_length=256)
    persona = forms.ChoiceField(label="Role", choices=Persona.choices, initial=Persona.DATA_SCIENTIST)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["principal"].widget.attrs.update({"autocomplete": "off", "inputmode": "email"})
        _style(self)

    def has_changed(self) -> bool:
        return _typed(self, ("principal",))

    def to_spec(self) -> MemberSpec:
        return MemberSpec(principal=self.cleaned_data["principal"], persona=self.cleaned_data["persona"])


def _typed(form: forms.Form, names: Iterable[str]) -> bool:
    """Whether the team lead typed anything in these fields of a row (blank rows are ignored)."""
    return any(str(form.data.get(form.add_prefix(name), "")).strip() for name in names)


class MembershipChoice(forms.ModelMultipleChoiceField):
    """Memberships labelled by principal and persona."""

    def label_from_instance(self, obj: Membership) -> str:
        return f"{obj.principal_name} ({obj.get_persona_display()})"


class RevokeForm(forms.Form):
    """The active memberships of a workspace to revoke."""

    memberships = MembershipChoice(
        label="Members to revoke",
        queryset=Membership.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one member to revoke."},
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices(self, "memberships").queryset = workspace.memberships.filter(state=ResourceState.ACTIVE)
        _style(self)


ClusterFormSet = forms.formset_factory(ClusterForm, extra=3, max_num=MAX_ROWS, absolute_max=MAX_ROWS)
MemberFormSet = forms.formset_factory(MemberForm, extra=3, max_num=MAX_ROWS, absolute_max=MAX_ROWS)


def filled_forms(formset: forms.BaseFormSet) -> list[Any]:
    """The rows the team lead filled in, in order: row ``i`` here is ``clusters.i`` in the spec."""
    return [form for form in formset.forms if form.has_changed()]


def _add_form_error(form: forms.Form, field: str, message: str) -> None:
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
            assert workspace is not None, "revoking access needs the workspace"
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
    """What a browser would post for these rows, followed by a few blank rows to add more."""
    rows = [*rows, *([blank] * BLANK_ROWS)]
    data: dict[str, Any] = {f"{prefix}-TOTAL_FORMS": len(rows), f"{prefix}-INITIAL_FORMS": 0}
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-{name}": value for name, value in row.items()})
    return data


def request_data(spec: RequestSpec, *, kind: str) -> dict[str, Any]:
    """A saved spec as form data, so a draft opens in the same forms, errors and all."""
    data: dict[str, Any] = {}
    if kind == Kind.NEW_WORKSPACE and spec.workspace is not None:
        data.update({k: v for k, v in dataclasses.asdict(spec.workspace).items() if k != "data_lake"})
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
        rows = [{"principal": m.principal, "persona": m.persona} for m in spec.members]
        data.update(_formset_data("members", rows, {"principal": "", "persona": Persona.DATA_SCIENTIST}))
    if kind == Kind.REVOKE_ACCESS:
        data["memberships"] = [str(pk) for pk in spec.revoke]
    return data
