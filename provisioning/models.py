"""The portal's domain: what team leads ask for, what admins allow, and what exists.

``ChangeRequest`` is what a team lead asked for; its status only changes through
``provisioning.services``. ``Workspace``, ``Cluster`` and ``Membership`` are the desired state
created when a request is approved. ``AuditEvent`` is the append-only, hash-chained record of
every change.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Lower

from provisioning import naming


class AllowedSubscription(models.Model):
    """An Azure subscription team leads may request workspaces in (admin-maintained)."""

    subscription_id = models.CharField(max_length=36, unique=True)
    display_name = models.CharField(max_length=100)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.subscription_id})"


class AllowedRegion(models.Model):
    """An Azure region team leads may use, with the convention's 2-character abbreviation."""

    name = models.CharField(max_length=40, unique=True, help_text="Azure region name, e.g. eastus2")
    display_name = models.CharField(max_length=100)
    abbreviation = models.CharField(max_length=2, help_text="Used in resource names, e.g. e2")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["display_name"]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.name})"


class AllowedVmSize(models.Model):
    """A VM size team leads may choose for compute clusters."""

    name = models.CharField(max_length=60, unique=True, help_text="e.g. STANDARD_DS3_V2")
    description = models.CharField(max_length=200, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = "allowed VM size"

    def __str__(self) -> str:
        return self.name


class Policy(models.Model):
    """Portal-wide limits (a single row, edited by admins)."""

    max_nodes_per_cluster = models.PositiveIntegerField(default=10)
    max_clusters_per_request = models.PositiveIntegerField(default=10)

    class Meta:
        verbose_name_plural = "policy"

    def __str__(self) -> str:
        return "Portal policy"

    @classmethod
    def current(cls) -> Policy:
        """The one policy row, created with defaults on first use."""
        policy, _ = cls.objects.get_or_create(pk=1)
        return policy


class Environment(models.TextChoices):
    RESEARCH = "res", "Research (res)"
    DEVELOPMENT = "dev", "Development (dev)"
    PRODUCTION = "pro", "Production (pro)"


class Persona(models.TextChoices):
    TEAM_LEAD = "team_lead", "Team Lead"
    DATA_SCIENTIST = "data_scientist", "Data Scientist"


class Priority(models.TextChoices):
    LOW_PRIORITY = "low_priority", "Low priority"
    DEDICATED = "dedicated", "Dedicated"


class ResourceState(models.TextChoices):
    """Lifecycle of desired-state rows (workspaces, clusters, memberships)."""

    PENDING = "pending", "Pending provisioning"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    REVOKING = "revoking", "Revoking"
    REVOKED = "revoked", "Revoked"


class OverBudget(models.TextChoices):
    REFUSE = "refuse", "Refuse the cluster"
    SECOND_APPROVAL = "second_approval", "Allow with a second admin's approval"


class EnvironmentPolicy(models.Model):
    """Cluster rules for one environment (res, dev, pro), edited by admins."""

    environment = models.CharField(max_length=3, unique=True, choices=Environment.choices)
    allowed_sizes: models.ManyToManyField[AllowedVmSize, Any] = models.ManyToManyField(
        AllowedVmSize,
        blank=True,
        help_text="Sizes this environment may use; none chosen means every size the portal allows",
    )
    max_nodes = models.PositiveIntegerField(default=10, help_text="Most nodes one cluster may scale to")
    dedicated_allowed = models.BooleanField(
        default=True, help_text="Whether clusters may use dedicated (not low-priority) nodes"
    )
    max_idle_seconds = models.PositiveIntegerField(
        default=1800, help_text="Longest time an idle node may be kept before scale-down"
    )
    over_budget = models.CharField(
        max_length=20,
        choices=OverBudget.choices,
        default=OverBudget.REFUSE,
        help_text="What happens to a cluster that would pass the team's budget or the subscription's quota",
    )

    class Meta:
        ordering = ["environment"]
        verbose_name_plural = "environment policies"

    def __str__(self) -> str:
        return f"Policy for {self.get_environment_display()}"

    @classmethod
    def for_environment(cls, environment: str) -> EnvironmentPolicy:
        """The environment's policy, created with defaults on first use."""
        policy, _ = cls.objects.get_or_create(environment=environment)
        return policy


class VmSize(models.Model):
    """A VM size Azure offers for AzureML compute in a region (the size catalog, refreshed from Azure)."""

    region = models.CharField(max_length=40)
    name = models.CharField(max_length=60, help_text="Upper case, as policy names sizes: STANDARD_DS3_V2")
    display_name = models.CharField(max_length=60, help_text="As Azure spells it: Standard_DS3_v2")
    family = models.CharField(max_length=60, help_text="The quota family, e.g. standardDSv2Family")
    vcpus = models.PositiveIntegerField()
    gpus = models.PositiveIntegerField(default=0)
    memory_gb = models.FloatField(default=0)
    low_priority_capable = models.BooleanField(default=True)
    refreshed_at = models.DateTimeField()

    class Meta:
        ordering = ["region", "family", "vcpus", "name"]
        constraints = [models.UniqueConstraint(fields=["region", "name"], name="vmsize_unique_per_region")]
        verbose_name = "VM size (catalog)"

    def __str__(self) -> str:
        return f"{self.display_name} in {self.region}"


class CoreUsage(models.Model):
    """Azure's current usage and limit of cluster vCPUs in a subscription and region (refreshed)."""

    class Scope(models.TextChoices):
        FAMILY = "family", "VM family (dedicated)"
        DEDICATED_TOTAL = "dedicated_total", "All dedicated cores"
        LOW_PRIORITY_TOTAL = "low_priority_total", "All low-priority cores"

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    scope = models.CharField(max_length=20, choices=Scope.choices)
    family = models.CharField(max_length=60, blank=True, help_text="Blank for the regional totals")
    name = models.CharField(max_length=120, help_text="Azure's name for the quota")
    current = models.IntegerField()
    limit = models.IntegerField()
    refreshed_at = models.DateTimeField()

    class Meta:
        ordering = ["subscription_id", "region", "scope", "family"]
        constraints = [
            models.UniqueConstraint(
                fields=["subscription_id", "region", "scope", "family"], name="coreusage_unique_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} in {self.region}: {self.current}/{self.limit}"


class TeamBudget(models.Model):
    """The cluster cores an admin gives a team in a region and VM family, dedicated and low-priority apart.

    A team is a (department, team) pair as the naming convention has them. The portal enforces the
    budget over all the team's clusters in the region; each of the team's workspaces there also gets
    the dedicated figure as its AzureML workspace-level quota.
    """

    department = models.CharField(max_length=4)
    team = models.CharField(max_length=24)
    region = models.CharField(max_length=40)
    family = models.CharField(max_length=60, help_text="The quota family, e.g. standardDSv2Family")
    dedicated_cores = models.PositiveIntegerField(default=0)
    low_priority_cores = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["department", "team", "region", "family"]
        constraints = [
            models.UniqueConstraint(
                fields=["department", "team", "region", "family"], name="teambudget_unique_row"
            )
        ]

    def __str__(self) -> str:
        return f"{self.department}/{self.team} {self.family} in {self.region}"


class WorkspaceQuota(models.Model):
    """A workspace-level quota the portal asked Azure for (``updateQuotas``), and what Azure holds."""

    workspace = models.ForeignKey("Workspace", on_delete=models.CASCADE, related_name="quotas")
    family = models.CharField(max_length=60)
    requested = models.PositiveIntegerField(help_text="Dedicated vCPUs asked for")
    applied = models.IntegerField(null=True, blank=True, help_text="The limit Azure reports, read back")
    status = models.CharField(max_length=60, blank=True, help_text="Azure's status for the update")
    message = models.TextField(blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workspace", "family"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "family"], name="workspacequota_unique_family")
        ]

    def __str__(self) -> str:
        return f"{self.workspace} {self.family}: {self.applied}/{self.requested}"


class VmPrice(models.Model):
    """What one node of a size costs per hour, by priority (admin-maintained; seeded with estimates)."""

    vm_size = models.CharField(max_length=60, help_text="Upper case, e.g. STANDARD_DS3_V2")
    priority = models.CharField(max_length=20, choices=Priority.choices)
    hourly_usd = models.DecimalField(max_digits=10, decimal_places=4)
    is_estimate = models.BooleanField(default=True, help_text="Not a negotiated or invoiced price")
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["vm_size", "priority"]
        constraints = [
            models.UniqueConstraint(fields=["vm_size", "priority"], name="vmprice_unique_size_priority")
        ]
        verbose_name = "VM price"

    def __str__(self) -> str:
        return f"{self.vm_size} {self.priority}: ${self.hourly_usd}/h"


class ClusterFlag(models.Model):
    """A cluster in Azure that breaks policy, found by the periodic guard (made by the portal or not)."""

    class Kind(models.TextChoices):
        MIN_NODES = "min_nodes", "Min nodes above 0"
        IDLE_TIME = "idle_time", "Idle time longer than policy"
        SIZE = "size", "VM size not allowed"
        DEDICATED = "dedicated", "Dedicated nodes not allowed"

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    resource_group = models.CharField(max_length=90)
    workspace_name = models.CharField(max_length=33)
    cluster_name = models.CharField(max_length=64)
    azure_id = models.CharField(max_length=500)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.TextField()
    managed_by_portal = models.BooleanField(default=False)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen", "workspace_name", "cluster_name"]
        constraints = [
            models.UniqueConstraint(
                Lower("azure_id"),
                "kind",
                condition=models.Q(resolved_at__isnull=True),
                name="clusterflag_unique_open_per_kind",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workspace_name}/{self.cluster_name}: {self.get_kind_display()}"


class Workspace(models.Model):
    """An AzureML workspace and its dependent resources, as the portal wants them to exist."""

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    department = models.CharField(max_length=4)
    team = models.CharField(max_length=24)
    region_abbv = models.CharField(max_length=2)
    environment = models.CharField(max_length=3, choices=Environment.choices)
    custom_name = models.CharField(max_length=24, blank=True)
    security_group = models.CharField(max_length=256, blank=True)
    data_lake = models.BooleanField(default=False)

    resource_group = models.CharField(max_length=90)
    workspace_name = models.CharField(max_length=33, unique=True)
    storage_work = models.CharField(max_length=24, unique=True)
    storage_data = models.CharField(max_length=24, unique=True)
    data_lake_name = models.CharField(max_length=24, blank=True)
    key_vault = models.CharField(max_length=24, unique=True)
    registry = models.CharField(max_length=50, unique=True)
    app_insights = models.CharField(max_length=255)

    azure_id = models.CharField(max_length=400, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_workspaces"
    )
    state = models.CharField(max_length=20, choices=ResourceState.choices, default=ResourceState.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["workspace_name"]

    def __str__(self) -> str:
        return self.workspace_name

    def naming_input(self) -> naming.NamingInput:
        return naming.NamingInput(
            department=self.department,
            team=self.team,
            region=self.region,
            region_abbv=self.region_abbv,
            environment=self.environment,
            custom_name=self.custom_name,
        )

    def sdk_config(self) -> dict[str, str]:
        """The ``config.json`` the AzureML SDK reads (``MLClient.from_config``)."""
        return {
            "subscription_id": self.subscription_id,
            "resource_group": self.resource_group,
            "workspace_name": self.workspace_name,
        }

    def environment_variables(self) -> dict[str, str]:
        """The variables the tutorial printed at the end of its workspace script."""
        return {
            "SUBSCRIPTION_ID": self.subscription_id,
            "RESOURCE_GROUP": self.resource_group,
            "WORKSPACE_NAME": self.workspace_name,
            "WORKSPACE_STORAGE_ACCOUNT": self.storage_work,
        }


class Cluster(models.Model):
    """An AmlCompute cluster in a workspace (autoscaling; min 0 nodes and 120 s idle by default)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="clusters")
    name = models.CharField(max_length=16)
    vm_size = models.CharField(max_length=60)
    priority = models.CharField(max_length=20, choices=Priority.choices, default=Priority.LOW_PRIORITY)
    min_nodes = models.PositiveIntegerField(default=0)
    max_nodes = models.PositiveIntegerField(default=1)
    idle_seconds = models.PositiveIntegerField(default=120)
    justification = models.TextField(blank=True, help_text="Why min nodes is above 0 (policy asks for it)")
    state = models.CharField(max_length=20, choices=ResourceState.choices, default=ResourceState.PENDING)
    change_request = models.ForeignKey("ChangeRequest", on_delete=models.PROTECT, related_name="clusters")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(Lower("name"), "workspace", name="cluster_unique_name_per_workspace"),
            models.CheckConstraint(
                condition=models.Q(min_nodes__lte=models.F("max_nodes")),
                name="cluster_min_nodes_le_max_nodes",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.workspace}/{self.name}"


class Membership(models.Model):
    """A user or group's access to a workspace as a persona (team lead or data scientist)."""

    class PrincipalType(models.TextChoices):
        USER = "user", "User"
        GROUP = "group", "Group"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="memberships")
    principal_type = models.CharField(
        max_length=10, choices=PrincipalType.choices, default=PrincipalType.USER
    )
    principal_name = models.CharField(max_length=256, help_text="UPN or email (users), display name (groups)")
    object_id = models.CharField(max_length=36, blank=True, help_text="Entra object id, once resolved")
    persona = models.CharField(max_length=20, choices=Persona.choices)
    state = models.CharField(max_length=20, choices=ResourceState.choices, default=ResourceState.PENDING)
    expires_at = models.DateTimeField(null=True, blank=True)
    change_request = models.ForeignKey("ChangeRequest", on_delete=models.PROTECT, related_name="memberships")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["persona", "principal_name"]
        constraints = [
            models.UniqueConstraint(
                Lower("principal_name"),
                "workspace",
                condition=~models.Q(state="revoked"),
                name="membership_unique_live_principal_per_workspace",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.principal_name} ({self.get_persona_display()}) on {self.workspace}"


class ChangeRequest(models.Model):
    """What a team lead asked for, and where it is in the approval and provisioning workflow.

    The ``spec`` holds the request as submitted (see ``provisioning.spec``); ``plan`` is computed
    from it at approval and lists every resource and role assignment to be made.
    """

    class Kind(models.TextChoices):
        NEW_WORKSPACE = "new_workspace", "New workspace"
        ADD_CLUSTERS = "add_clusters", "Add clusters"
        GRANT_ACCESS = "grant_access", "Grant access"
        REVOKE_ACCESS = "revoke_access", "Revoke access"

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SUBMITTED = "submitted", "Submitted"
        APPROVED = "approved", "Approved"
        REJECTED = "rejected", "Rejected"
        PROVISIONING = "provisioning", "Provisioning"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.DRAFT: frozenset({Status.SUBMITTED, Status.CANCELLED}),
        Status.SUBMITTED: frozenset({Status.APPROVED, Status.REJECTED, Status.CANCELLED}),
        Status.APPROVED: frozenset({Status.PROVISIONING}),
        Status.PROVISIONING: frozenset({Status.SUCCEEDED, Status.FAILED}),
        Status.FAILED: frozenset({Status.PROVISIONING}),
        Status.REJECTED: frozenset(),
        Status.SUCCEEDED: frozenset(),
        Status.CANCELLED: frozenset(),
    }
    EDITABLE = frozenset({Status.DRAFT})
    OPEN = frozenset({Status.DRAFT, Status.SUBMITTED})
    PENDING_OR_LIVE = frozenset({Status.SUBMITTED, Status.APPROVED, Status.PROVISIONING})

    kind = models.CharField(max_length=20, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.DRAFT)
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="change_requests"
    )
    workspace = models.ForeignKey(
        Workspace, on_delete=models.PROTECT, null=True, blank=True, related_name="change_requests"
    )
    workspace_name = models.CharField(
        max_length=33, db_index=True, help_text="The workspace this request creates or changes"
    )
    spec = models.JSONField(encoder=DjangoJSONEncoder)
    plan = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="approved_requests",
    )
    reason = models.TextField(blank=True, help_text="Why it was rejected")
    copied_from = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="copies",
        help_text="The rejected or cancelled request this draft was copied from",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    name_check = models.JSONField(
        null=True, blank=True, help_text="Azure's answer on the globally unique names, checked by a worker"
    )
    name_checked_at = models.DateTimeField(null=True, blank=True)
    first_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="first_approved_requests",
        help_text="The first of two admins, when policy asks a second approval for going over budget",
    )
    first_approved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()} {self.workspace_name}"

    def can_transition(self, target: str) -> bool:
        """Whether the status machine allows moving from the current status to ``target``."""
        return target in self.TRANSITIONS[self.status]

    def can_approve(self, user: Any) -> bool:
        """Admins decide submitted requests, never their own; a second approval needs another admin."""
        from accounts.personas import is_admin

        return (
            self.status == self.Status.SUBMITTED
            and is_admin(user)
            and user.pk not in (self.requester_id, self.first_approver_id)
        )

    @property
    def is_editable(self) -> bool:
        return self.status in self.EDITABLE

    @property
    def names_taken(self) -> list[dict[str, str]]:
        """Globally unique names Azure said are taken (empty until checked, or when all are free)."""
        return [c for c in (self.name_check or []) if not c.get("available")]


class AuditEvent(models.Model):
    """One recorded change. Append-only: PostgreSQL refuses UPDATE and DELETE on this table.

    Each event's ``hash`` covers its content and the previous event's hash, so an edit made
    behind the database's back breaks the chain (``manage.py audit_verify`` finds it).
    Actors, requests and workspaces are stored as values, not foreign keys, so deleting a
    user never has to touch the audit.
    """

    created_at = models.DateTimeField()
    actor = models.CharField(max_length=254, help_text="Who did it (username or 'system')")
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=64)
    request_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    workspace_name = models.CharField(max_length=33, blank=True, db_index=True)
    before = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    after = models.JSONField(encoder=DjangoJSONEncoder, null=True, blank=True)
    message = models.TextField(blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        when = f"{self.created_at:%Y-%m-%d %H:%M:%S}"
        return f"{when} {self.actor} {self.action} {self.object_type}#{self.object_id}"

    def canonical(self) -> str:
        """The event's content in one stable text form, the input of its hash."""
        body = {
            "created_at": self.created_at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": str(self.object_id),
            "request_id": self.request_id,
            "workspace_name": self.workspace_name,
            "before": self.before,
            "after": self.after,
            "message": self.message,
        }
        return json.dumps(body, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder)

    def compute_hash(self) -> str:
        return hashlib.sha256((self.prev_hash + self.canonical()).encode()).hexdigest()


class Run(models.Model):
    """One execution of an approved request's plan by a provisioning worker.

    A run holds a lease: the worker executing it renews ``lease_expires_at`` with a heartbeat. When
    the lease expires (the worker died, Redis lost the job), the sweeper enqueues the run again; the
    next worker resumes it, skipping the steps already done.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="runs")
    number = models.PositiveIntegerField(
        help_text="1 for the first run of a request, then one more per retry"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=0, help_text="How many times a worker picked it up")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["change_request", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "number"], name="run_unique_number_per_request"
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.number} of request #{self.change_request_id}"

    @property
    def job_id(self) -> str:
        """The RQ job id: unique per run, so a re-enqueued run never collides with another run's job."""
        return f"provision-request-{self.change_request_id}-run-{self.number}"


class Step(models.Model):
    """One Azure operation of a run: its target, status, attempts, timings and Azure's error if it failed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Done before"
        FAILED = "failed", "Failed"
        BLOCKED = "blocked", "Not started (an earlier step failed)"

    DONE = frozenset({Status.SUCCEEDED, Status.SKIPPED})

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=300, help_text="Stable identity of the operation within the plan")
    kind = models.CharField(max_length=40)
    target = models.CharField(max_length=400, help_text="What the step acts on, in words")
    depends_on = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    azure_id = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=40, blank=True, help_text="created, updated, unchanged, removed...")
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=100, blank=True)
    hint = models.TextField(blank=True, help_text="What to do about the failure")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="step_unique_key_per_run")]

    def __str__(self) -> str:
        return f"{self.kind} {self.target} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
