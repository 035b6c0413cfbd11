from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import User


@admin.register(User)
class PortalUserAdmin(UserAdmin):
    """Users with their Entra identity shown."""

    fieldsets = (
        *UserAdmin.fieldsets,
        ("Entra ID", {"fields": ("upn", "entra_tenant_id", "entra_object_id")}),
    )  # type: ignore[misc]
    list_display = ("username", "upn", "email", "is_staff")
