"""The forms of a failed request: amend it (members, clusters Azure did not create), keep it, roll it back."""

from __future__ import annotations

from typing import Any

from django import forms

from provisioning.models import Priority
from provisioning.spec import RequestSpec
from provisioning.workflow.forms.widgets import MAX_NUMBER, bootstrap_style
from provisioning.workflow.recovery import MAX_REASON, Amendment, ClusterChange

PRINCIPAL_MAX = 256


class ReasonForm(forms.Form):
    """Why a failed request is kept as it is or rolled back."""

    reason = forms.CharField(max_length=MAX_REASON, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        bootstrap_style(self)


class AmendForm(forms.Form):
    """One row per member (drop, or replace by another principal) and per cluster Azure did not create."""

    reason = forms.CharField(
        max_length=MAX_REASON,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit with the amendment.",
    )

    def __init__(self, *args: Any, spec: RequestSpec, amendable_clusters: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = [m.principal for m in spec.all_members()]
        for i, principal in enumerate(self.members):
            self.fields[f"drop_member_{i}"] = forms.BooleanField(required=False, label=f"Drop {principal}")
            self.fields[f"replace_member_{i}"] = forms.CharField(
                required=False, max_length=PRINCIPAL_MAX, label=f"Replace {principal} with"
            )
        self.clusters = [c for c in spec.clusters if c.name in amendable_clusters]
        for j, c in enumerate(self.clusters):
            self.fields[f"drop_cluster_{j}"] = forms.BooleanField(required=False, label=f"Drop {c.name}")
            self.fields[f"min_nodes_{j}"] = forms.IntegerField(
                min_value=0, max_value=MAX_NUMBER, initial=c.min_nodes, label=f"{c.name}: min nodes"
            )
            self.fields[f"max_nodes_{j}"] = forms.IntegerField(
                min_value=1, max_value=MAX_NUMBER, initial=c.max_nodes, label=f"{c.name}: max nodes"
            )
            self.fields[f"priority_{j}"] = forms.ChoiceField(
                choices=Priority.choices, initial=c.priority, label=f"{c.name}: priority"
            )
            self.fields[f"vm_size_{j}"] = forms.CharField(
                max_length=60, initial=c.vm_size, label=f"{c.name}: VM size"
            )
        bootstrap_style(self)

    def member_rows(self) -> list[dict[str, Any]]:
        return [
            {"principal": p, "drop": self[f"drop_member_{i}"], "replace": self[f"replace_member_{i}"]}
            for i, p in enumerate(self.members)
        ]

    def cluster_rows(self) -> list[dict[str, Any]]:
        return [
            {
                "cluster": c,
                "drop": self[f"drop_cluster_{j}"],
                "fields": [self[f"{name}_{j}"] for name in ("vm_size", "priority", "min_nodes", "max_nodes")],
            }
            for j, c in enumerate(self.clusters)
        ]

    def amendment(self) -> Amendment:
        """What the filled form asks (call once it is valid)."""
        data = self.cleaned_data
        drops: list[str] = []
        replaces: list[tuple[str, str]] = []
        for i, principal in enumerate(self.members):
            if data.get(f"drop_member_{i}"):
                drops.append(principal)
            elif (
                new := (data.get(f"replace_member_{i}") or "").strip()
            ) and new.lower() != principal.lower():
                replaces.append((principal, new))
        changes: list[ClusterChange] = []
        for j, c in enumerate(self.clusters):
            if data.get(f"drop_cluster_{j}"):
                changes.append(ClusterChange(name=c.name, drop=True))
                continue
            new = {
                "vm_size": data[f"vm_size_{j}"].strip().upper(),
                "priority": data[f"priority_{j}"],
                "min_nodes": data[f"min_nodes_{j}"],
                "max_nodes": data[f"max_nodes_{j}"],
            }
            old = {
                "vm_size": c.vm_size.upper(),
                "priority": c.priority,
                "min_nodes": c.min_nodes,
                "max_nodes": c.max_nodes,
            }
            if new != old:
                changes.append(ClusterChange(name=c.name, **{k: v for k, v in new.items() if v != old[k]}))
        return Amendment(
            reason=data["reason"],
            drop_members=tuple(drops),
            replace_members=tuple(replaces),
            clusters=tuple(changes),
        )
