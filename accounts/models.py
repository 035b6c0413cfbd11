"""Portal users.

A user is a person who signs in. With Entra ID sign-in a user is identified by the pair
(tenant id, object id); email and UPN are kept for display, and the UPN of a member (not a guest) binds
memberships named by it before they were bound to an object id.
"""

from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """A person who signs in to the portal; personas are Django groups (see ``accounts.personas``)."""

    entra_tenant_id = models.CharField(max_length=36, blank=True, default="")
    entra_object_id = models.CharField(max_length=36, blank=True, default="")
    upn = models.CharField("user principal name", max_length=254, blank=True, default="")
    entra_guest = models.BooleanField(
        default=False,
        help_text="Entra ID signs this user in as a guest: its address never binds memberships named by address",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entra_tenant_id", "entra_object_id"],
                condition=~models.Q(entra_object_id=""),
                name="user_unique_entra_identity",
            ),
        ]

    @property
    def principal_name(self) -> str:
        """The name Azure knows this person by: the UPN, else the email, else the username."""
        return (self.upn or self.email or self.username).lower()

    def __str__(self) -> str:
        return self.get_full_name() or self.principal_name


class PersonalAccessToken(models.Model):
    """A named token a person makes for their scripts to call the API as them, until it expires or is revoked.

    The token is shown once, when it is made; only its SHA-256 is stored (a token is 256 random bits, so a
    plain hash is enough: there is nothing to guess). ``prefix`` (its first characters) names it in lists.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="access_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The token's first characters, to recognise it")
    token_hash = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the token, hex")
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
