"""A tutorial ``config.yml`` as a request: shared by ``manage.py import_config`` and the API."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied

from accounts.models import User
from provisioning.configfile import DesiredState
from provisioning.models import ChangeRequest
from provisioning.workflow import selectors, services


def request_from_config(*, requester: User, desired: DesiredState) -> ChangeRequest | None:
    """A draft making the file's desired state true: a new workspace, or the changes to one the requester
    manages; None when the workspace matches the file already (nothing is saved)."""
    ws = desired.workspace
    if ws is not None and not selectors.manages(requester, ws.pk):
        raise PermissionDenied(
            f"workspace {ws.workspace_name} exists and {requester.principal_name} does not manage it: "
            "you can only request changes to workspaces you manage"
        )
    if desired.changes_nothing:
        return None
    # The file is the desired state: its members are the workspace's, the requester included only when it
    # names them (else the next plan_config would remove them again).
    return services.request_create(
        requester=requester, kind=desired.kind, spec=desired.spec, workspace=ws, lead_joins=False
    )
