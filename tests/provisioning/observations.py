"""What a reconcile could read from Azure, as plain values, for tests that need no Azure.

Built from a workspace's approved state, then changed as somebody would change Azure by hand; handed
to the real recording service (``provisioning.workflow.reconcile.observation_record``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.utils import timezone

from provisioning.arm import OWNERSHIP_TAG, OWNERSHIP_VALUE
from provisioning.drift import Observation, SeenAssignment, SeenCluster, SeenResource, expected_assignments
from provisioning.models import Workspace
from provisioning.workflow import reconcile

TAGS = {OWNERSHIP_TAG: OWNERSHIP_VALUE}
DS_ROLE = "/providers/Microsoft.Authorization/roleDefinitions/ds"


def in_step(ws: Workspace) -> Observation:
    """What Azure holds when it matches the workspace's approved state."""
    approved = reconcile.approved_state(ws)
    group = SeenResource(
        approved.group_id, ws.resource_group, "Microsoft.Resources/resourceGroups", tags=TAGS
    )
    resources = tuple(
        SeenResource(approved.resource_id(p, n), n, p, tags=TAGS) for _k, p, n in approved.resources()
    )
    clusters = tuple(
        SeenCluster(
            approved.cluster_id(c.name),
            c.name,
            c.vm_size,
            c.priority,
            c.min_nodes,
            c.max_nodes,
            c.idle_seconds,
            TAGS,
        )
        for c in approved.clusters
    )
    assignments = tuple(
        SeenAssignment(f"{e.scope}/ra/{n}", e.scope, f"/d/{n}", e.role, e.member.object_id, "User")
        for n, e in enumerate(expected_assignments(approved))
    )
    return Observation(group, resources, clusters, assignments, reads=4)


def record(ws: Workspace, seen: Observation) -> dict[str, Any]:
    return reconcile.observation_record(workspace_id=ws.pk, seen=seen, observed_at=timezone.now())


def resized(ws: Workspace, **settings: Any) -> Observation:
    seen = in_step(ws)
    return replace(seen, clusters=tuple(replace(c, **settings) for c in seen.clusters))


def added(
    ws: Workspace, role: str, principal_id: str, scope: str = "", principal_type: str = "User"
) -> Observation:
    seen = in_step(ws)
    approved = reconcile.approved_state(ws)
    scope = scope or approved.group_id
    extra = SeenAssignment(
        f"{scope}/ra/by-hand", scope, DS_ROLE, role, principal_id, principal_type, "new@contoso.com"
    )
    return replace(seen, assignments=(*seen.assignments, extra))
