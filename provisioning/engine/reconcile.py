"""Reconcile: read what Azure holds for each managed workspace and record the drift from the approved state.

Workspaces are read concurrently (a bounded pool of threads, ``RECONCILE_PARALLEL``), each in four ARM
reads plus one role-definition list per subscription (``provisioning.azure.observe``); every database
write happens on the calling thread, one short transaction per workspace
(``provisioning.workflow.reconcile.observation_record``), so no transaction is open while Azure answers.
A workspace that cannot be read is reported and left as it was; the others are recorded all the same.
New drift is told to the admins once per reconcile (``notifications.drift_found_notify``).
"""

from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

from django.utils import timezone

from provisioning.azure import observe
from provisioning.azure.clients import AzureClients
from provisioning.drift import Observation
from provisioning.workflow import notifications
from provisioning.workflow.reconcile import ReconcileTarget, observation_record, reconcile_targets

logger = logging.getLogger(__name__)

# Workspaces read at once: enough to hide Azure's latency, far below ARM's read limits per subscription.
RECONCILE_PARALLEL = 6


def _observe(
    clients: AzureClients,
    target: ReconcileTarget,
    roles: observe.RoleNames,
    principals: observe.PrincipalNames,
) -> Observation:
    return observe.observe_workspace(
        clients,
        subscription=target.subscription_id,
        resource_group=target.resource_group,
        workspace=target.name,
        roles=roles,
        principals=principals,
        known_principals=target.known_principals,
    )


def reconcile(
    *,
    workspace_ids: list[int] | None = None,
    clients: AzureClients | None = None,
    parallel: int | None = None,
) -> dict[str, Any]:
    """Reconcile every managed workspace (or those named by id) with Azure.

    Returns a JSON-safe summary: per workspace its ARM reads, items found and resolved and its open drift
    (by name), and the workspaces that could not be read (``errors``).
    """
    targets = reconcile_targets(workspace_ids)
    summary: dict[str, Any] = {"workspaces": [], "errors": []}
    if not targets:
        return summary
    parallel = parallel or RECONCILE_PARALLEL
    started = timezone.now()
    with AzureClients.given_or_own(clients) as azure:
        roles, principals = observe.RoleNames(azure), observe.PrincipalNames(azure)
        with ThreadPoolExecutor(
            max_workers=min(parallel, len(targets)), thread_name_prefix="reconcile"
        ) as pool:
            futures: dict[Future[Observation], ReconcileTarget] = {
                pool.submit(_observe, azure, t, roles, principals): t for t in targets
            }
            for future in as_completed(futures):
                target = futures[future]
                try:
                    seen = future.result()
                except Exception as exc:  # one workspace's failure must not stop the others
                    logger.warning("reconcile of workspace %s failed: %s", target.name, exc)
                    summary["errors"].append(f"{target.name}: {exc}")
                    continue
                summary["workspaces"].append(
                    observation_record(
                        workspace_id=target.workspace_id, seen=seen, observed_at=timezone.now()
                    )
                )
    summary["workspaces"].sort(key=lambda w: w["name"])
    if any(w["found"] for w in summary["workspaces"]):
        notifications.drift_found_notify(since=started)
    return summary
