"""The portal's domain models, one module per concern; every model is importable from here.

``ChangeRequest`` is what a team lead asked for; its status changes only through
``provisioning.workflow.transitions``. ``Workspace``, ``Cluster`` and ``Membership`` are the desired
state created when a request is approved; their ``ResourceState`` changes only through
``provisioning.workflow.transitions`` too. ``AuditEvent`` is the append-only, hash-chained record of
every change.
"""

from provisioning.models.adoption import DiscoveryScan
from provisioning.models.audit import AuditCheckpoint, AuditEvent, AuditExport
from provisioning.models.capacity import ClusterFlag, CoreUsage, TeamBudget, VmPrice, VmSize, WorkspaceQuota
from provisioning.models.drift import DriftItem, ObservedResource
from provisioning.models.inventory import (
    RESOURCE_TRANSITIONS,
    Cluster,
    Membership,
    MembershipReminder,
    Purpose,
    ResourceState,
    Workspace,
)
from provisioning.models.key_vaults import DeletedKeyVault
from provisioning.models.notifications import (
    Notification,
    NotificationKind,
    NotificationPreference,
    TeamChannel,
)
from provisioning.models.policy import (
    AllowedRegion,
    AllowedSubscription,
    AllowedVmSize,
    Environment,
    EnvironmentPolicy,
    OverBudget,
    Persona,
    Policy,
    Priority,
    UnreviewedAccess,
)
from provisioning.models.quota_requests import QuotaIncreaseRequest
from provisioning.models.requests import ChangeRequest
from provisioning.models.reviews import AccessReview, AccessReviewDecision
from provisioning.models.runs import Run, Step
from provisioning.models.spend import CostKind, WorkspaceCost, WorkspaceSpend

__all__ = [
    "RESOURCE_TRANSITIONS",
    "AccessReview",
    "AccessReviewDecision",
    "AllowedRegion",
    "AllowedSubscription",
    "AllowedVmSize",
    "AuditCheckpoint",
    "AuditEvent",
    "AuditExport",
    "ChangeRequest",
    "Cluster",
    "ClusterFlag",
    "CoreUsage",
    "CostKind",
    "DeletedKeyVault",
    "DiscoveryScan",
    "DriftItem",
    "Environment",
    "EnvironmentPolicy",
    "Membership",
    "MembershipReminder",
    "Notification",
    "NotificationKind",
    "NotificationPreference",
    "ObservedResource",
    "OverBudget",
    "Persona",
    "Policy",
    "Priority",
    "Purpose",
    "QuotaIncreaseRequest",
    "ResourceState",
    "Run",
    "Step",
    "TeamBudget",
    "TeamChannel",
    "UnreviewedAccess",
    "VmPrice",
    "VmSize",
    "Workspace",
    "WorkspaceCost",
    "WorkspaceQuota",
    "WorkspaceSpend",
]
