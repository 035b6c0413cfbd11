"""Django admin for policy settings (allowed subscriptions, regions, VM sizes, limits).

Requests, workspaces and the audit are read-only here: their changes go through the services.
"""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from provisioning.models import AllowedRegion, AllowedSubscription, AllowedVmSize, AuditEvent, Policy


@admin.register(AllowedSubscription)
class AllowedSubscriptionAdmin(admin.ModelAdmin):
    list_display = ("display_name", "subscription_id", "is_active")
    list_filter = ("is_active",)


@admin.register(AllowedRegion)
class AllowedRegionAdmin(admin.ModelAdmin):
    list_display = ("display_name", "name", "abbreviation", "is_active")
    list_filter = ("is_active",)


@admin.register(AllowedVmSize)
class AllowedVmSizeAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "is_active")
    list_filter = ("is_active",)


@admin.register(Policy)
class PolicyAdmin(admin.ModelAdmin):
    list_display = ("__str__", "max_nodes_per_cluster", "max_clusters_per_request")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not Policy.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
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

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
