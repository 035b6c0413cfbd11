"""Widgets, choices and helpers shared by the request forms: sizes labelled from the catalog, regions
with their abbreviation, Bootstrap styling."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django import forms
from django.db.models import QuerySet

from provisioning.models import (
    AllowedVmSize,
    ChangeRequest,
    EnvironmentPolicy,
    Priority,
    VmSize,
    Workspace,
)

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
MAX_NUMBER = 1_000_000

CLUSTER_KINDS = frozenset({Kind.NEW_WORKSPACE, Kind.ADD_CLUSTERS})
MEMBER_KINDS = frozenset({Kind.NEW_WORKSPACE, Kind.GRANT_ACCESS})


def bootstrap_style(form: forms.Form) -> None:
    """Bootstrap classes on every widget (errors are styled through Django's aria-invalid)."""
    for field in form.fields.values():
        widget = field.widget
        if isinstance(widget, forms.CheckboxInput | forms.CheckboxSelectMultiple | forms.RadioSelect):
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = "form-select"
        else:
            css = "form-control"
        widget.attrs.setdefault("class", css)


def model_choices(form: forms.Form, name: str) -> forms.ModelChoiceField:
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


class PrioritySelect(forms.Select):
    """The priority list; dedicated carries ``data-refused-environments`` (the environments whose policy
    does not allow dedicated nodes) so the browser can offer low priority only there."""

    refused_in: list[str]

    def create_option(self, name: str, value: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        option = super().create_option(name, value, *args, **kwargs)
        if value == Priority.DEDICATED and getattr(self, "refused_in", None):
            option["attrs"]["data-refused-environments"] = " ".join(self.refused_in)
        return option


def _size_words(size: VmSize) -> str:
    words = [f"{size.vcpus} vCPU{'s' if size.vcpus != 1 else ''}"]
    if size.gpus:
        words.append(f"{size.gpus} GPU{'s' if size.gpus != 1 else ''}")
    words.append(f"{size.memory_gb:g} GB")
    return ", ".join(words)


def _refused_environments(policies: Iterable[EnvironmentPolicy]) -> dict[str, list[str]]:
    """For each size some environment's policy leaves out, the environments that refuse it."""
    refused: dict[str, list[str]] = {}
    allowed = {s.upper() for s in AllowedVmSize.objects.filter(is_active=True).values_list("name", flat=True)}
    for policy in policies:
        own = {s.name.upper() for s in policy.allowed_sizes.all()}
        for name in sorted(allowed - own) if own else []:
            refused.setdefault(name, []).append(policy.environment)
    return refused


class SizeChoices:
    """The sizes a cluster row offers: those the portal allows, narrowed to the workspace's region and
    environment when the workspace exists; with the catalog and policies that label and filter them."""

    def __init__(
        self,
        queryset: QuerySet[AllowedVmSize],
        catalog: dict[str, list[VmSize]],
        refused_in: dict[str, list[str]],
        dedicated_refused_in: list[str] | None = None,
    ) -> None:
        self.queryset, self.catalog, self.refused_in = queryset, catalog, refused_in
        # The environments whose policy allows low-priority nodes only.
        self.dedicated_refused_in = dedicated_refused_in or []

    @classmethod
    def build(cls, workspace: Workspace | None = None) -> SizeChoices:
        queryset = AllowedVmSize.objects.filter(is_active=True)
        catalog: dict[str, list[VmSize]] = {}
        for size in VmSize.objects.filter(
            name__in=[n.upper() for n in queryset.values_list("name", flat=True)]
        ):
            catalog.setdefault(size.name, []).append(size)
        policies = list(EnvironmentPolicy.objects.prefetch_related("allowed_sizes"))
        refused_in = _refused_environments(policies)
        dedicated_refused_in = sorted(p.environment for p in policies if not p.dedicated_allowed)
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
        return cls(queryset, catalog, refused_in, dedicated_refused_in)


def _catalog_of(catalog: dict[str, list[VmSize]], region: str) -> bool:
    return any(s.region == region for sizes in catalog.values() for s in sizes)


def _regions(catalog: dict[str, list[VmSize]], name: str) -> set[str]:
    return {s.region for s in catalog.get(name.upper(), [])}


def row_typed(form: forms.Form, names: Iterable[str]) -> bool:
    """Whether the team lead typed anything in these fields of a row (blank rows are ignored)."""
    return any(str(form.data.get(form.add_prefix(name), "")).strip() for name in names)
