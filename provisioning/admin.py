"""Django admin for policy settings (allowed subscriptions, regions, VM sizes, limits, prices).

Every add, change and delete of policy here is audited with the fields' old and new values
(``provisioning.admin_audit.AuditedAdmin``).

Requests, workspaces and the audit are read-only here: their changes go through the services. So are
what workers read from Azure (size catalog, core usages, workspace quotas, cluster flags). A team
budget saved here goes through ``budgets.team_budget_set`` (checked, audited, applied as quota). The notifications
outbox is read-only; a team's Teams channel is edited here.
"""

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from provisioning.admin_audit import AuditedAdmin
from provisioning.capacity import budgets
from provisioning.models import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    AuditEvent,
    ClusterFlag,
    CoreUsage,
    EnvironmentPolicy,
    Notification,
    Policy,
    TeamBudget,
    TeamChannel,
    VmPrice,
    VmSize,
    WorkspaceQuota,
)


@admin.register(AllowedSubscription)
class AllowedSubscriptionAdmin(AuditedAdmin):
    list_display = (
        "display_name",
        "subscription_id",
        "is_active",
        "capacity_admin_group",
        "workspace_admin_group",
    )
    list_filter = ("is_active",)


@admin.register(AllowedRegion)
class AllowedRegionAdmin(AuditedAdmin):
    list_display = ("display_name", "name", "abbreviation", "is_active")
    list_filter = ("is_active",)


@admin.register(AllowedVmSize)
class AllowedVmSizeAdmin(AuditedAdmin):
    list_display = ("name", "description", "is_active")
    list_filter = ("is_active",)


@admin.register(Policy)
class PolicyAdmin(AuditedAdmin):
    list_display = ("__str__", "max_nodes_per_cluster", "max_clusters_per_request")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not Policy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows workers write from what Azure reports: admins read them here, nobody edits them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "request_id",
        "workspace_name",
    )
    list_filter = ("action",)


@admin.register(VmPrice)
class VmPriceAdmin(AuditedAdmin):
    list_display = ("vm_size", "priority", "hourly_usd", "is_estimate", "note")
    list_filter = ("priority", "is_estimate")
    search_fields = ("vm_size",)


@admin.register(EnvironmentPolicy)
class EnvironmentPolicyAdmin(AuditedAdmin):
    list_display = (
        "environment",
        "max_nodes",
        "dedicated_allowed",
        "max_idle_seconds",
        "over_budget",
        "spend_alert_percent",
    )
    filter_horizontal = ("allowed_sizes",)


@admin.register(VmSize)
class VmSizeAdmin(ReadOnlyAdmin):
    list_display = ("display_name", "region", "family", "vcpus", "gpus", "memory_gb", "low_priority_capable")
    list_filter = ("region", "family")
    search_fields = ("name", "family")


@admin.register(CoreUsage)
class CoreUsageAdmin(ReadOnlyAdmin):
    list_display = ("name", "subscription_id", "region", "scope", "current", "limit", "refreshed_at")
    list_filter = ("region", "scope")


@admin.register(WorkspaceQuota)
class WorkspaceQuotaAdmin(ReadOnlyAdmin):
    list_display = ("workspace", "family", "requested", "applied", "status", "applied_at")
    list_filter = ("status",)


@admin.register(TeamChannel)
class TeamChannelAdmin(AuditedAdmin):
    """A team's Teams channel: audited like policy, its webhook URL (a secret) never written to the audit."""

    list_display = ("department", "team")
    search_fields = ("department", "team")


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "kind", "channel", "status", "attempts", "next_attempt_at", "sent_at")
    list_filter = ("status", "channel", "kind")
    search_fields = ("key", "subject")


@admin.register(ClusterFlag)
class ClusterFlagAdmin(ReadOnlyAdmin):
    list_display = (
        "workspace_name",
        "cluster_name",
        "kind",
        "managed_by_portal",
        "first_seen",
        "last_seen",
        "resolved_at",
    )
    list_filter = ("kind", "managed_by_portal", ("resolved_at", admin.EmptyFieldListFilter))


BUDGET_KEY = ("department", "team", "region", "family")


class TeamBudgetAdminForm(forms.ModelForm):
    """Checks a budget as the capacity page does (Azure's catalog and limits), before it is saved."""

    class Meta:
        model = TeamBudget
        fields = (*BUDGET_KEY, "dedicated_cores", "low_priority_cores")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        values = {name: data.get(name, getattr(self.instance, name)) for name in self.Meta.fields}
        if any(values[name] in (None, "") for name in self.Meta.fields):
            return data  # the missing field already has its error
        values["department"] = str(values["department"]).strip().lower()
        values["team"] = str(values["team"]).strip().lower()
        for problem in budgets.team_budget_problems(**values):
            self.add_error(problem.field if problem.field in self.fields else None, problem.message)
        return data


@admin.register(TeamBudget)
class TeamBudgetAdmin(admin.ModelAdmin):
    form = TeamBudgetAdminForm
    list_display = (
        "department",
        "team",
        "region",
        "family",
        "dedicated_cores",
        "low_priority_cores",
        "updated_at",
    )
    list_filter = ("region", "family")
    search_fields = ("department", "team")

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # Changing the team, region or family would be another budget: add that one instead.
        return BUDGET_KEY if obj is not None else ()

    def save_model(self, request: HttpRequest, obj: TeamBudget, form: Any, change: bool) -> None:
        saved = budgets.team_budget_set(
            actor=request.user,
            department=obj.department,
            team=obj.team,
            region=obj.region,
            family=obj.family,
            dedicated_cores=obj.dedicated_cores,
            low_priority_cores=obj.low_priority_cores,
        )
        obj.pk, obj.department, obj.team, obj.updated_at = (
            saved.pk,
            saved.department,
            saved.team,
            saved.updated_at,
        )

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A deletion would be neither audited nor applied to the workspaces' quotas: not offered here.
        return False
