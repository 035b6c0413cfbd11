"""The stand-in's directory knobs (``StandIn.add_user`` and friends): users, groups, service principals.

Users have ``accountEnabled`` and ``userType``: a guest is made as Entra ID makes an invited user, its
UPN ``name_domain#EXT#@<tenant domain>`` and its mail the address it was invited with. Groups are
security groups, or (``security=False``) Microsoft 365 groups: ``groupTypes ["Unified"]``, mail-enabled,
not security-enabled, with a mail address in the tenant's domain.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence

from provisioning.standin.state import Principal, State


def guest_upn(address: str, tenant_domain: str) -> str:
    """The UPN Entra ID gives a guest invited with this address: ``name_domain#EXT#@tenant domain``."""
    if "#EXT#" in address.upper():
        return address
    return f"{address.replace('@', '_')}#EXT#@{tenant_domain}"


def mail_nickname(display_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "", display_name).lower() or "group"


class DirectoryKnobs:
    """Adds and changes directory objects (a mixin of ``StandIn``)."""

    state: State
    tenant_domain: str

    def add_user(
        self,
        upn: str,
        mail: str | None = None,
        display_name: str | None = None,
        *,
        roles: Sequence[str] = (),
        enabled: bool = True,
        guest: bool = False,
    ) -> str:
        """A user in the directory, holding these app roles; returns its object id.

        ``enabled=False`` makes ``accountEnabled`` false (sign-in is refused, AADSTS50057). With
        ``guest=True``, ``upn`` is the address the guest was invited with (``alice@fabrikam.com``):
        the user's UPN becomes ``alice_fabrikam.com#EXT#@<tenant domain>`` (see ``guest_upn``), its
        mail that address, its ``userType`` "Guest".
        """
        address = upn
        if guest:
            upn = guest_upn(address, self.tenant_domain)
            if "#EXT#" in address.upper():  # given the guest's UPN: its mail is the invited address
                local, _, domain = address.split("#")[0].rpartition("_")
                address = f"{local}@{domain}"
        name = display_name or address.split("@")[0].replace(".", " ").title()
        user = Principal(
            str(uuid.uuid4()),
            "user",
            name,
            upn=upn,
            mail=mail or address,
            roles=list(roles),
            enabled=enabled,
            guest=guest,
        )
        return self._add(user)

    def set_roles(self, object_id: str, roles: Sequence[str]) -> None:
        """Replace a user's app roles (they show in the id tokens issued from now on)."""
        with self.state.lock:
            user = self.state.principals[object_id.lower()]
            user.roles = list(roles)

    def set_account_enabled(self, object_id: str, enabled: bool) -> None:
        """Enable or disable a user (``accountEnabled``), as an administrator would in Entra ID."""
        with self.state.lock:
            self.state.principals[object_id.lower()].enabled = enabled

    def add_group(self, display_name: str, mail: str | None = None, *, security: bool = True) -> str:
        """A group (display names need not be unique, as in Entra ID); returns its object id.

        ``security=True``: a security group (mail-enabled only when ``mail`` is given). ``security=False``:
        a Microsoft 365 group (``groupTypes ["Unified"]``, mail-enabled, not security-enabled), its mail
        ``mail`` or ``<nickname>@<tenant domain>``.
        """
        if not security and not mail:
            mail = f"{mail_nickname(display_name)}@{self.tenant_domain}"
        group = Principal(str(uuid.uuid4()), "group", display_name, mail=mail or "", security=security)
        return self._add(group)

    def add_service_principal(self, display_name: str, app_id: str | None = None) -> str:
        return self._add(
            Principal(str(uuid.uuid4()), "servicePrincipal", display_name, app_id=app_id or str(uuid.uuid4()))
        )

    def _add(self, principal: Principal) -> str:
        with self.state.lock:
            self.state.principals[principal.object_id] = principal
        return principal.object_id
