"""The parts of a request page: the workspace details, one cluster row, one member row, the revocations."""

from __future__ import annotations

from typing import Any, cast

from django import forms

from provisioning import naming
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    Environment,
    Membership,
    Persona,
    Priority,
    ResourceState,
    Workspace,
)
from provisioning.spec import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_MIN_NODES,
    POOL_TEAMS_MAX,
    ClusterSpec,
    MemberSpec,
    WorkspaceSpec,
)
from provisioning.workflow.forms.widgets import (
    CLUSTER_NAME_INPUT_MAX,
    CUSTOM_NAME_INPUT_MAX,
    DEPARTMENT_INPUT_MAX,
    MAX_NUMBER,
    MAX_ROWS,
    REGION_ABBV_INPUT_MAX,
    TEAM_INPUT_MAX,
    WORKSPACE_NAME_MAX,
    PrioritySelect,
    RegionSelect,
    SizeChoices,
    SizeSelect,
    bootstrap_style,
    model_choices,
    row_typed,
)
from provisioning.workflow.validation import MAX_MEMBER_DAYS


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
    purpose = forms.ChoiceField(
        label="What is the workspace for?",
        choices=[
            ("team", "A team (its own workspace)"),
            ("project", "A project of the team (its own names and budget; members from any team)"),
            ("pool", "A shared pool (clusters several teams use; the team above is the pool's name)"),
        ],
        initial="team",
        required=False,  # a team workspace when not said (older forms and clients)
        widget=forms.RadioSelect,
    )
    project = forms.CharField(
        label="Project short name",
        required=False,
        max_length=32,
        help_text=f"For a project: {naming.PROJECT_MIN} to {naming.PROJECT_MAX} lowercase letters and digits, "
        "a letter first; it joins every resource name after the team.",
    )
    pool_teams = forms.CharField(
        label="Teams that may use the pool",
        required=False,
        max_length=POOL_TEAMS_MAX * 66,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="For a shared pool: department/team, one per line or separated by commas "
        "(teams the portal knows: with a workspace or a budget).",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choices(self, "subscription_id").queryset = AllowedSubscription.objects.filter(is_active=True)
        model_choices(self, "region").queryset = AllowedRegion.objects.filter(is_active=True)
        self.fields["region_abbv"].widget.attrs["autocomplete"] = "off"
        bootstrap_style(self)

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
        """The workspace part of the request, as typed (the naming rules normalize it); the fields of the
        purposes not chosen are left out (without JavaScript every field shows)."""
        data = self.cleaned_data
        purpose = data.get("purpose") or "team"
        return WorkspaceSpec(
            purpose=purpose,
            project=data["project"] if purpose == "project" else "",
            pool_teams=split_teams(data["pool_teams"]) if purpose == "pool" else (),
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


def split_teams(text: str) -> tuple[str, ...]:
    """A pool's teams as typed: one per line or separated by commas, blanks dropped."""
    return tuple(t.strip() for t in text.replace(",", "\n").splitlines() if t.strip())


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
    priority = forms.ChoiceField(
        label="Priority", choices=Priority.choices, initial=Priority.LOW_PRIORITY, widget=PrioritySelect
    )
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
        field = model_choices(self, "vm_size")
        field.queryset = sizes.queryset
        widget = cast(SizeSelect, field.widget)
        widget.catalog, widget.refused_in = sizes.catalog, sizes.refused_in
        self._offer_priorities(workspace, sizes.dedicated_refused_in)
        for name in ("max_nodes", "min_nodes", "idle_seconds"):
            self.fields[name].widget.attrs["min"] = 0
        bootstrap_style(self)

    def _offer_priorities(self, workspace: Workspace | None, dedicated_refused_in: list[str]) -> None:
        """Low priority only where the environment's policy refuses dedicated nodes."""
        field = cast(forms.ChoiceField, self.fields["priority"])
        if workspace is not None and workspace.environment in dedicated_refused_in:
            field.choices = [(Priority.LOW_PRIORITY, Priority.LOW_PRIORITY.label)]
        cast(PrioritySelect, field.widget).refused_in = dedicated_refused_in

    def has_changed(self) -> bool:
        return row_typed(self, ("name", "vm_size"))

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


class MemberForm(forms.Form):
    """One member row: a user's email or UPN and their persona. A row without a principal is ignored."""

    principal = forms.CharField(label="Email or user principal name", max_length=256)
    persona = forms.ChoiceField(label="Role", choices=Persona.choices, initial=Persona.DATA_SCIENTIST)
    days = forms.IntegerField(
        label="Days of access",
        required=False,
        min_value=1,
        max_value=MAX_MEMBER_DAYS,
        help_text="Empty: the policy's default",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["principal"].widget.attrs.update({"autocomplete": "off", "inputmode": "email"})
        bootstrap_style(self)

    def has_changed(self) -> bool:
        return row_typed(self, ("principal",))

    def to_spec(self) -> MemberSpec:
        return MemberSpec(
            principal=self.cleaned_data["principal"],
            persona=self.cleaned_data["persona"],
            days=self.cleaned_data.get("days"),
        )


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
        model_choices(self, "memberships").queryset = workspace.memberships.filter(state=ResourceState.ACTIVE)
        bootstrap_style(self)


# One row to start with: "Add a cluster" / "Add a member" copy the empty row in the browser (request_form.js).
ClusterFormSet = forms.formset_factory(ClusterForm, extra=1, max_num=MAX_ROWS, absolute_max=MAX_ROWS)
MemberFormSet = forms.formset_factory(MemberForm, extra=1, max_num=MAX_ROWS, absolute_max=MAX_ROWS)
