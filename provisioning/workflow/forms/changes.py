"""The day-2 change page: every active cluster and member of a workspace, as they are, to change or remove.

One row per object the workspace holds, filled with its approved settings (or a draft's changes). What
the team lead leaves as it is asks nothing; the request is the difference (``spec``). Rows are keyed by
the object's name, read again from the approved state on every post: a row naming something the
workspace no longer holds is ignored, never trusted.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django import forms

from provisioning.models import Cluster, Membership, Persona, ResourceState, Workspace
from provisioning.plan import cluster_diff, cluster_settings
from provisioning.problems import Problem
from provisioning.spec import MemberSpec, RequestSpec
from provisioning.workflow.forms.parts import ClusterForm
from provisioning.workflow.forms.widgets import SizeChoices, bootstrap_style


class ClusterChangeForm(ClusterForm):
    """An existing cluster: new settings (size and priority replace it), or deleted."""

    delete = forms.BooleanField(label="Delete this cluster", required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"].widget = forms.HiddenInput()
        self.fields["delete"].widget.attrs["class"] = "form-check-input"

    def has_changed(self) -> bool:
        return True  # every row stands for a cluster the workspace holds


class MemberChangeForm(forms.Form):
    """An existing member: another persona, or removed."""

    persona = forms.ChoiceField(label="Role", choices=Persona.choices)
    remove = forms.BooleanField(label="Remove this member", required=False)

    def __init__(self, *args: Any, membership: Membership, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.membership = membership
        if membership.principal_type == Membership.PrincipalType.GROUP:
            persona = self.fields["persona"]
            assert isinstance(persona, forms.ChoiceField)  # nosec B101 # the form declares this field a ChoiceField (mypy narrowing)
            persona.choices = [(Persona.DATA_SCIENTIST, Persona.DATA_SCIENTIST.label)]
        bootstrap_style(self)
        self.fields["remove"].widget.attrs["class"] = "form-check-input"


class WorkspaceChangeForms:
    """The change page's rows; ``spec()`` is what they change."""

    def __init__(self, workspace: Workspace, *, data: Any = None, draft: RequestSpec | None = None) -> None:
        self.workspace = workspace
        self.clusters = list(workspace.clusters.filter(state=ResourceState.ACTIVE).order_by("name"))
        self.memberships = list(
            workspace.memberships.filter(state=ResourceState.ACTIVE).order_by("persona", "principal_name")
        )
        sizes = SizeChoices.build(workspace)
        bind = draft is not None and data is None  # a saved draft opens bound, so its problems can be shown
        draft = draft or RequestSpec()
        updates = {c.name.lower(): c for c in draft.cluster_updates}
        deletes = {n.lower() for n in draft.cluster_deletes}
        personas = {m.principal.lower(): m.persona for m in draft.persona_changes}
        cluster_initial = [
            {**_initial(updates.get(c.name.lower()) or c.as_spec()), "delete": c.name.lower() in deletes}
            for c in self.clusters
        ]
        member_initial = [
            {"persona": personas.get(m.principal_name.lower(), m.persona), "remove": m.pk in draft.revoke}
            for m in self.memberships
        ]
        if bind:
            data = {}
            for prefix, rows in (("cluster", cluster_initial), ("member", member_initial)):
                for i, row in enumerate(rows):
                    data.update({f"{prefix}-{i}-{k}": v for k, v in row.items() if v not in (False, None)})
        self.cluster_forms = [
            ClusterChangeForm(data, prefix=f"cluster-{i}", workspace=workspace, sizes=sizes, initial=initial)
            for i, initial in enumerate(cluster_initial)
        ]
        self.member_forms = [
            MemberChangeForm(data, prefix=f"member-{i}", membership=m, initial=initial)
            for i, (m, initial) in enumerate(zip(self.memberships, member_initial, strict=True))
        ]
        self.problems: list[Problem] = []

    def rows(self) -> list[tuple[Cluster, ClusterChangeForm]]:
        return list(zip(self.clusters, self.cluster_forms, strict=True))

    def member_rows(self) -> list[tuple[Membership, MemberChangeForm]]:
        return list(zip(self.memberships, self.member_forms, strict=True))

    def is_valid(self) -> bool:
        valid = [f.is_valid() for f in [*self.cluster_forms, *self.member_forms]]
        return all(valid)

    def spec(self) -> RequestSpec:
        """The edits: clusters whose settings changed or are deleted, members whose role changed or leave."""
        updates, deletes, persona_changes, revoke = [], [], [], []
        for cluster, form in self.rows():
            data = form.cleaned_data
            if data.get("delete"):
                deletes.append(cluster.name)
                continue
            wanted = replace(form.to_spec(), name=cluster.name)
            current = cluster.as_spec()
            if (
                cluster_diff(cluster_settings(current), wanted)
                or wanted.justification != current.justification
            ):
                updates.append(wanted)
        for membership, member_form in self.member_rows():
            data = member_form.cleaned_data
            if data.get("remove"):
                revoke.append(membership.pk)
            elif data["persona"] != membership.persona:
                persona_changes.append(
                    MemberSpec(membership.principal_name, data["persona"], membership.principal_type)
                )
        return RequestSpec(
            cluster_updates=tuple(updates),
            cluster_deletes=tuple(deletes),
            persona_changes=tuple(persona_changes),
            revoke=tuple(revoke),
        )

    def add_problems(self, problems: list[Problem], spec: RequestSpec) -> None:
        """Each problem next to the row it is about (``cluster_updates.0.max_nodes`` -> that cluster's row);
        the rest above the form."""
        by_cluster = {c.name.lower(): form for c, form in self.rows()}
        by_member = {m.principal_name.lower(): form for m, form in self.member_rows()}
        by_membership = {m.pk: form for m, form in self.member_rows()}
        for problem in problems:
            parts = problem.field.split(".")
            form: forms.Form | None = None
            field = None
            if parts[0] == "cluster_updates" and len(parts) >= 2 and parts[1].isdigit():
                name = spec.cluster_updates[int(parts[1])].name.lower()
                form, field = by_cluster.get(name), parts[2] if len(parts) > 2 else None
            elif parts[0] == "cluster_deletes" and len(parts) == 2 and parts[1].isdigit():
                form, field = by_cluster.get(spec.cluster_deletes[int(parts[1])].lower()), "delete"
            elif parts[0] == "persona_changes" and len(parts) >= 2 and parts[1].isdigit():
                form, field = by_member.get(spec.persona_changes[int(parts[1])].principal.lower()), "persona"
            elif parts[0] == "revoke" and len(parts) == 2 and parts[1].isdigit():
                form, field = by_membership.get(spec.revoke[int(parts[1])]), "remove"
            if form is not None and field in form.fields:
                form.add_error(field, problem.message)
            else:
                self.problems.append(problem)


def _initial(cluster: Any) -> dict[str, Any]:
    """A cluster's settings as the form's initial values (its justification too)."""
    return {**cluster_settings(cluster), "justification": cluster.justification}
