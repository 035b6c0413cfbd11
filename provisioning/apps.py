from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    """Requests, approval, the desired state of workspaces, and the audit trail."""

    name = "provisioning"
    default_auto_field = "django.db.models.BigAutoField"
