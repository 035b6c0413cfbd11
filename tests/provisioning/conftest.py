"""Fixtures shared by the provisioning tests: a draft request and an approved workspace."""

from __future__ import annotations

import pytest

from provisioning.models import ChangeRequest, Cluster, Membership, ResourceState, Workspace
from tests.factories import ChangeRequestFactory


@pytest.fixture
def draft(policy, alice) -> ChangeRequest:
    """Alice's tutorial request, saved as a draft."""
    return ChangeRequestFactory(requester=alice)


@pytest.fixture
def workspace(policy, alice, bob) -> Workspace:
    """The tutorial's workspace, approved by bob, with its memberships provisioned (active)."""
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    Membership.objects.update(state=ResourceState.ACTIVE)
    return cr.workspace


@pytest.fixture
def active_workspace(policy, alice, bob) -> Workspace:
    """The tutorial's workspace, approved by bob, as if provisioned: its clusters and memberships active."""
    cr = ChangeRequestFactory(requester=alice, approver=bob, approved=True)
    Cluster.objects.update(state=ResourceState.ACTIVE)
    Membership.objects.update(state=ResourceState.ACTIVE)
    return Workspace.objects.get(pk=cr.workspace_id)
