"""RQ jobs: thin entry points that take ids and call services (delivery is at least once)."""

from __future__ import annotations

import inspect
from typing import Any

from provisioning import audit, exports
from provisioning.engine import runs


def provision_request(request_id: int) -> str:
    """Provision an approved request, or resume its run; a duplicate delivery finds nothing to do."""
    from provisioning.engine.executor import request_execute

    return request_execute(request_id=request_id)


def sweep() -> list[int]:
    """Re-enqueue approved or running work that no live worker holds; expire old audit exports; queue the
    delivery of notifications that are due, the quota requests to file and the quota polls that are due."""
    from provisioning.engine.quota_requests import quota_requests_sweep
    from provisioning.workflow.delivery import notifications_sweep

    exports.audit_exports_sweep()
    notifications_sweep()
    quota_requests_sweep()
    return runs.runs_sweep()


def notifications_deliver() -> dict[str, int]:
    """Send the due mails and Teams cards of the outbox; a duplicate delivery finds them claimed or sent."""
    from provisioning.workflow.delivery import notifications_deliver

    return notifications_deliver()


def quota_request_file(quota_request_id: int) -> str:
    """File an approved quota increase request with Azure (once); returns its status."""
    from provisioning.engine.quota_requests import quota_request_file as file

    return file(quota_request_id=quota_request_id)


def quota_request_poll(quota_request_id: int) -> str:
    """Ask Azure whether it has decided a filed quota request; returns its status."""
    from provisioning.engine.quota_requests import quota_request_poll as poll

    return poll(quota_request_id=quota_request_id)


def audit_checkpoint() -> int | None:
    """Sign the audit chain's head into a checkpoint (and the log); returns its event id."""
    checkpoint = audit.audit_checkpoint()
    return checkpoint.event_id if checkpoint else None


def audit_export(export_id: int) -> str:
    """Write an admin's audit export to a file; a duplicate delivery finds nothing to do."""
    return exports.audit_export_run(export_id=export_id)


def check_names(request_id: int) -> int:
    """Ask Azure whether a submitted request's globally unique names are free; returns how many are taken."""
    from provisioning.engine.name_checks import request_check_names

    return sum(1 for answer in request_check_names(request_id=request_id) if not answer["available"])


def check_principals(request_id: int) -> int:
    """Look a submitted request's members and group up in Entra ID; returns how many are refused."""
    from provisioning.engine.principal_checks import request_check_principals

    return sum(1 for answer in request_check_principals(request_id=request_id) if answer["problem"])


def capacity_refresh() -> dict[str, Any]:
    """Read the size catalog and core usages of every allowed subscription and region from Azure."""
    from provisioning.engine import capacity_sync

    return capacity_sync.capacity_refresh()


def clusters_guard() -> dict[str, Any]:
    """Flag the clusters in Azure that break policy (made by the portal or not); resolve old flags."""
    from provisioning.engine import capacity_sync

    return capacity_sync.clusters_guard()


def capacity_check() -> dict[str, Any]:
    """The periodic capacity work: refresh the catalog and usages, then guard the clusters."""
    return {"refresh": capacity_refresh(), "guard": clusters_guard()}


def team_quota_apply(department: str, team: str, region: str, project: str = "") -> dict[str, Any]:
    """Apply a team's (or project's) budgets in a region as workspace quota to its active workspaces there."""
    from provisioning.engine import capacity_sync

    return capacity_sync.team_quota_apply(department, team, region, project)


def spend_refresh() -> dict[str, Any]:
    """Read every active workspace's month-to-date spend from Cost Management and record it (daily)."""
    from provisioning.engine.spend import spend_refresh

    return spend_refresh()


def reconcile_all() -> dict[str, Any]:
    """Compare every managed workspace with what Azure holds; record observed state and drift."""
    from provisioning.engine.reconcile import reconcile

    return reconcile()


def reconcile_workspace(workspace_id: int) -> dict[str, Any]:
    """Compare one workspace with what Azure holds now (the workspace page's button)."""
    from provisioning.engine.reconcile import reconcile

    return reconcile(workspace_ids=[workspace_id])


def deleted_key_vault_record(workspace_id: int) -> bool:
    """Read a decommissioned workspace's soft-deleted key vault from Azure and record it (shown, name held)."""
    from provisioning.engine.key_vaults import deleted_vault_refresh

    return deleted_vault_refresh(workspace_id=workspace_id) is not None


def purge_key_vault(vault_id: int, actor_id: int) -> bool:
    """Purge a deleted key vault an admin chose; True when Azure purged it (a refusal is recorded)."""
    from provisioning.engine.key_vaults import deleted_vault_purge

    return deleted_vault_purge(vault_id=vault_id, actor_id=actor_id).purged_at is not None


def discover_workspaces(scan_id: int) -> int | None:
    """Read Azure for workspaces the portal does not hold; returns how many were found (None: done elsewhere)."""
    from provisioning.engine.adoption import discovery_run

    scan = discovery_run(scan_id=scan_id)
    return None if scan is None else len(scan.workspaces)


def take_over_workspace(workspace_id: int, actor_id: int | None = None) -> dict[str, Any]:
    """Tag an adopted workspace's resources as the portal's, then manage it."""
    from provisioning.engine.adoption import take_over_run

    return take_over_run(workspace_id=workspace_id, actor_id=actor_id)


def memberships_expire() -> int:
    """Remove from Azure the memberships whose end date has passed (one system-approved revocation per
    workspace); returns how many. A second run finds them revoking and does nothing."""
    from provisioning.workflow.expiry import memberships_expire

    return len(memberships_expire())


def membership_reminders() -> int:
    """Mail the reminders due at the policy's days before memberships end; returns how many were made."""
    from provisioning.workflow.expiry import membership_reminders_send

    return len(membership_reminders_send())


def access_reviews() -> dict[str, list[int]]:
    """Start the access reviews due and close (or escalate) the overdue ones; a second run finds none."""
    from provisioning.workflow.reviews import reviews_due

    return reviews_due()


def admin_roles() -> list[dict[str, str]]:
    """Define the two administration roles in every allowed subscription and assign them to its admin groups."""
    from provisioning.engine.admin_roles import admin_roles_ensure

    return [change.as_dict() for change in admin_roles_ensure()]


# The dotted paths the portal's worker runs (provisioning.worker refuses every other): the functions
# defined in this module, by exact path. Names imported here (``exports``, ``runs``) are not jobs.
JOB_FUNCTIONS: frozenset[str] = frozenset(
    f"{__name__}.{name}"
    for name, value in list(globals().items())
    if inspect.isfunction(value) and value.__module__ == __name__ and not name.startswith("_")
)
