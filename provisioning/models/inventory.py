"""The desired state an approved request stands for: workspaces, their clusters and memberships."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower

from provisioning import naming
from provisioning.models.policy import Environment, Persona, Priority
from provisioning.spec import ClusterSpec, pool_team_pairs, purpose_text


class Purpose(models.TextChoices):
    """What a workspace is for (the tutorial: a team, a project, or a pool of capacity)."""

    TEAM = "team", "Team"
    PROJECT = "project", "Project"
    POOL = "pool", "Shared pool"


class ResourceState(models.TextChoices):
    """Lifecycle of desired-state rows (workspaces, clusters, memberships)."""

    PENDING = "pending", "Pending provisioning"
    PROVISIONING = "provisioning", "Provisioning"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    REVOKING = "revoking", "Revoking"
    REVOKED = "revoked", "Revoked"
    # A workspace given back: its managed resources and access removed, its history kept.
    DECOMMISSIONED = "decommissioned", "Decommissioned"


# The lifecycle of a desired-state row; ``provisioning.workflow.transitions.resource_transition`` is
# the one way to move along it.
RESOURCE_TRANSITIONS: dict[str, frozenset[str]] = {
    ResourceState.PENDING: frozenset({ResourceState.PROVISIONING}),
    ResourceState.PROVISIONING: frozenset({ResourceState.ACTIVE, ResourceState.FAILED}),
    # A failed row is retried, kept as Azure holds it (ACTIVE), dropped by an amendment or rolled back
    # (REVOKED, or REVOKING while a run removes what Azure holds of it).
    ResourceState.FAILED: frozenset(
        {ResourceState.PROVISIONING, ResourceState.ACTIVE, ResourceState.REVOKING, ResourceState.REVOKED}
    ),
    ResourceState.ACTIVE: frozenset({ResourceState.REVOKING}),
    # A workspace being decommissioned is revoking, and decommissioned once its run removed what goes.
    ResourceState.REVOKING: frozenset(
        {ResourceState.REVOKED, ResourceState.FAILED, ResourceState.DECOMMISSIONED}
    ),
    ResourceState.REVOKED: frozenset(),
    ResourceState.DECOMMISSIONED: frozenset(),
}


class StateMachine:
    """What a desired-state row (workspace, cluster, membership) may become from its current state."""

    state: str

    def can_become(self, target: str) -> bool:
        """Whether the lifecycle allows moving from the current state to ``target``."""
        return target in RESOURCE_TRANSITIONS[self.state]


class Workspace(StateMachine, models.Model):
    """An AzureML workspace and its dependent resources, as the portal wants them to exist.

    ``management``: ``managed`` workspaces are made and changed by the portal; ``observed`` ones were
    adopted from Azure (made by the tutorial's scripts, say) and are shown and reconciled, never modified.
    """

    class Management(models.TextChoices):
        MANAGED = "managed", "Managed by the portal"
        OBSERVED = "observed", "Observed (adopted, never modified)"

    subscription_id = models.CharField(max_length=36)
    region = models.CharField(max_length=40)
    department = models.CharField(max_length=4)
    team = models.CharField(max_length=24)
    region_abbv = models.CharField(max_length=2)
    environment = models.CharField(max_length=3, choices=Environment.choices)
    custom_name = models.CharField(max_length=24, blank=True)
    security_group = models.CharField(max_length=256, blank=True)
    data_lake = models.BooleanField(default=False)
    # What the workspace is for: a team (its own), a project of the team (``project`` joins the names and
    # holds its own budget) or a pool (``team`` is the pool's name; ``pool_teams`` may use it).
    purpose = models.CharField(max_length=10, choices=Purpose.choices, default=Purpose.TEAM)
    project = models.CharField(max_length=8, blank=True)
    pool_teams = models.JSONField(default=list, blank=True, help_text='A pool\'s teams, "department/team"')

    resource_group = models.CharField(max_length=90)
    workspace_name = models.CharField(max_length=33, db_index=True)
    storage_work = models.CharField(max_length=24, db_index=True)
    # Blank for an adopted workspace that has no such resource (unique when set).
    storage_data = models.CharField(max_length=24, blank=True, db_index=True)
    data_lake_name = models.CharField(max_length=24, blank=True)
    key_vault = models.CharField(max_length=24, db_index=True)
    registry = models.CharField(max_length=50, blank=True, db_index=True)
    app_insights = models.CharField(max_length=255)

    azure_id = models.CharField(max_length=400, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_workspaces"
    )
    state = models.CharField(max_length=20, choices=ResourceState.choices, default=ResourceState.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    management = models.CharField(
        max_length=10, choices=Management.choices, default=Management.MANAGED, db_index=True
    )
    adopted_at = models.DateTimeField(null=True, blank=True, help_text="When an admin adopted it from Azure")
    adopted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adopted_workspaces",
    )
    decommissioned_at = models.DateTimeField(null=True, blank=True)
    scientist_role = models.CharField(
        max_length=40,
        default="Data Scientist",
        help_text="The data scientists' role on the workspace, from its environment's policy at approval",
    )

    class Meta:
        ordering = ["workspace_name"]
        # A decommissioned workspace keeps its row (history, audit) but gives its names back; an adopted one
        # may lack a data storage account or a registry (blank, so not unique).
        constraints = [
            models.UniqueConstraint(
                field,
                condition=~models.Q(state="decommissioned") & ~models.Q(**{field: ""}),
                name=f"workspace_unique_live_{field}",
            )
            for field in ("workspace_name", "storage_work", "storage_data", "key_vault", "registry")
        ]

    def __str__(self) -> str:
        return self.workspace_name

    @property
    def is_observed(self) -> bool:
        """Adopted from Azure and not taken over: the portal never writes to it."""
        return self.management == self.Management.OBSERVED

    def naming_input(self) -> naming.NamingInput:
        return naming.NamingInput(
            department=self.department,
            team=self.team,
            region=self.region,
            region_abbv=self.region_abbv,
            environment=self.environment,
            custom_name=self.custom_name,
            project=self.project,
        )

    @property
    def purpose_text(self) -> str:
        """What the workspace is for, in words (team, project X of team Y, pool for teams A, B)."""
        return purpose_text(
            self.purpose,
            department=self.department,
            team=self.team,
            project=self.project,
            pool_teams=self.pool_teams,
        )

    def pool_team_pairs(self) -> tuple[tuple[str, str], ...]:
        """A pool's teams as (department, team); empty for other workspaces."""
        return pool_team_pairs(self.pool_teams) if self.purpose == Purpose.POOL else ()

    def plan_names(self) -> dict[str, str]:
        """The workspace's names, keyed as a plan's ``names``."""
        return {
            "resource_group": self.resource_group,
            "base": self.workspace_name.removesuffix("ws"),
            "workspace": self.workspace_name,
            "storage_work": self.storage_work,
            "storage_data": self.storage_data,
            "data_lake": self.data_lake_name,
            "key_vault": self.key_vault,
            "registry": self.registry,
            "app_insights": self.app_insights,
        }

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


class Cluster(StateMachine, models.Model):
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
    change_request = models.ForeignKey(
        "ChangeRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="clusters",
        help_text="The request that made it; empty for a cluster adopted with its workspace",
    )

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

    def as_spec(self) -> ClusterSpec:
        """The cluster's approved settings, as a request spec holds a cluster."""
        return ClusterSpec(
            name=self.name,
            vm_size=self.vm_size,
            priority=self.priority,
            max_nodes=self.max_nodes,
            min_nodes=self.min_nodes,
            idle_seconds=self.idle_seconds,
            justification=self.justification,
        )


class Membership(StateMachine, models.Model):
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
    expires_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="When the access ends (set when its request succeeds, moved by a renewal); the expiry job "
        "removes it from Azure then",
    )
    change_request = models.ForeignKey(
        "ChangeRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="memberships",
        help_text="The request that granted it; empty for access made outside the portal and accepted as drift",
    )
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


class MembershipReminder(models.Model):
    """A reminder that a membership ends soon, sent once per membership, end date and days before it.

    The reminder job makes one row per (membership, end date, days before) and mails after it commits, so a
    second run sends nothing; a renewal moves the end date, so the new end date is reminded again. The
    member sees theirs on My access.
    """

    membership = models.ForeignKey(Membership, on_delete=models.CASCADE, related_name="reminders")
    expires_at = models.DateTimeField(help_text="The end date this reminder is about")
    days_before = models.PositiveSmallIntegerField()
    recipients = models.JSONField(
        default=list, help_text="The addresses mailed: the member and the team leads"
    )
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["membership", "expires_at", "days_before"], name="membership_reminder_once"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.membership}: ends in {self.days_before} days"
