from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, personas and sign-in."""

    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from accounts import signin_audit

        signin_audit.connect()
