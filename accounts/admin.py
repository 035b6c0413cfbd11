from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User
from provisioning.admin_audit import AuditedAdmin


@admin.register(User)
class PortalUserAdmin(AuditedAdmin, UserAdmin):
    """Users with their Entra identity shown; changes (their groups: the personas) are audited."""

    fieldsets = (
        *UserAdmin.fieldsets,
        ("Entra ID", {"fields": ("upn", "entra_tenant_id", "entra_object_id")}),
    )  # type: ignore[misc]
    list_display = ("username", "upn", "email", "is_staff")
