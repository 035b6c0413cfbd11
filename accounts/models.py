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
