"""What the API reads and writes. Input serializers check types and sizes; the rules stay in the services."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from provisioning.models import ChangeRequest, Cluster, DriftItem, Membership, Run, Step, Workspace
from provisioning.models.policy import Priority
from provisioning.spec import POOL_TEAMS_MAX, PURPOSES, ClusterSpec, MemberSpec, RequestSpec, WorkspaceSpec
from provisioning.workflow.recovery import Amendment, ClusterChange
from provisioning.workflow.validation import (
    MAX_CLUSTERS_PER_REQUEST,
    MAX_COUNT,
    MAX_JUSTIFICATION,
    MAX_MEMBER_DAYS,
    MAX_MEMBERS_PER_REQUEST,
    MAX_PRINCIPAL,
)

MAX_CONFIG_BYTES = 64 * 1024
MAX_REASON = 2000
TEXT = 256  # the longest name or code any spec field holds is shorter


# --- a request's spec, as the services take it ----------------------------------------------------------------


class WorkspaceSpecSerializer(serializers.Serializer):
    subscription_id = serializers.CharField(max_length=64)
    region = serializers.CharField(max_length=64)
    department = serializers.CharField(max_length=64)
    team = serializers.CharField(max_length=64)
    region_abbv = serializers.CharField(max_length=16)
    environment = serializers.CharField(max_length=16)
    custom_name = serializers.CharField(max_length=64, required=False, allow_blank=True, default="")
    security_group = serializers.CharField(max_length=TEXT, required=False, allow_blank=True, default="")
    data_lake = serializers.BooleanField(required=False, default=False)
    purpose = serializers.ChoiceField(choices=list(PURPOSES), required=False, default="team")
    project = serializers.CharField(
        max_length=32, required=False, allow_blank=True, default="", help_text="A project's short name"
    )
    pool_teams = serializers.ListField(
        child=serializers.CharField(max_length=64),
        required=False,
        default=list,
        max_length=POOL_TEAMS_MAX,
        help_text='A pool\'s teams that may use it, "department/team"',
    )


class ClusterSpecSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    vm_size = serializers.CharField(max_length=64)
    priority = serializers.ChoiceField(choices=Priority.choices, default="low_priority")
    max_nodes = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=1)
    min_nodes = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=0)
    idle_seconds = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, default=120)
    justification = serializers.CharField(
        max_length=MAX_JUSTIFICATION, required=False, allow_blank=True, default=""
    )


class MemberSpecSerializer(serializers.Serializer):
    principal = serializers.CharField(max_length=MAX_PRINCIPAL, help_text="UPN or email; a group's name")
    persona = serializers.ChoiceField(choices=["team_lead", "data_scientist"])
    principal_type = serializers.ChoiceField(choices=["user", "group"], default="user")
    days = serializers.IntegerField(min_value=1, max_value=MAX_MEMBER_DAYS, required=False, allow_null=True)


class RequestSpecSerializer(serializers.Serializer):
    """A request's spec: a new workspace, clusters, members to add and memberships to revoke."""

    workspace = WorkspaceSpecSerializer(required=False, allow_null=True)
    clusters = ClusterSpecSerializer(many=True, required=False, max_length=MAX_CLUSTERS_PER_REQUEST)
    members = MemberSpecSerializer(many=True, required=False, max_length=MAX_MEMBERS_PER_REQUEST)
    revoke = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=MAX_MEMBERS_PER_REQUEST
    )
    cluster_updates = ClusterSpecSerializer(many=True, required=False, max_length=MAX_CLUSTERS_PER_REQUEST)
    cluster_deletes = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False, max_length=MAX_CLUSTERS_PER_REQUEST
    )
    persona_changes = MemberSpecSerializer(many=True, required=False, max_length=MAX_MEMBERS_PER_REQUEST)

    @staticmethod
    def spec_of(data: dict[str, Any]) -> RequestSpec:
        """Valid data as the services' ``RequestSpec``."""
        ws = data.get("workspace")
        return RequestSpec(
            workspace=WorkspaceSpec(**ws) if ws else None,
            clusters=tuple(ClusterSpec(**c) for c in data.get("clusters", [])),
            members=tuple(MemberSpec(**m) for m in data.get("members", [])),
            revoke=tuple(data.get("revoke", [])),
            cluster_updates=tuple(ClusterSpec(**c) for c in data.get("cluster_updates", [])),
            cluster_deletes=tuple(data.get("cluster_deletes", [])),
            persona_changes=tuple(MemberSpec(**m) for m in data.get("persona_changes", [])),
        )


class RequestCreateSerializer(serializers.Serializer):
    """A new draft: a spec with its kind (and the workspace it changes), or a tutorial ``config.yml``."""

    kind = serializers.ChoiceField(
        choices=[
            ChangeRequest.Kind.NEW_WORKSPACE,
            ChangeRequest.Kind.ADD_CLUSTERS,
            ChangeRequest.Kind.GRANT_ACCESS,
            ChangeRequest.Kind.REVOKE_ACCESS,
            ChangeRequest.Kind.CHANGE_WORKSPACE,
        ],
        required=False,
    )
    workspace = serializers.IntegerField(
        min_value=1, required=False, help_text="The workspace a change is for (not for a new workspace)"
    )
    spec = RequestSpecSerializer(required=False)
    lead_joins = serializers.BooleanField(
        default=True, help_text="A new workspace's requesting team lead becomes its first team lead"
    )
    config_yml = serializers.CharField(
        max_length=MAX_CONFIG_BYTES,
        required=False,
        trim_whitespace=False,
        help_text="A tutorial config.yml: a new workspace, or the changes that make an existing one match it",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "config_yml" in attrs:
            if "spec" in attrs or "kind" in attrs:
                raise serializers.ValidationError("send a config_yml, or a kind and a spec, not both")
            return attrs
        if "spec" not in attrs or "kind" not in attrs:
            raise serializers.ValidationError("send a kind and a spec, or a config_yml")
        return attrs


class RequestUpdateSerializer(serializers.Serializer):
    spec = RequestSpecSerializer()


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=MAX_REASON)


class ReplaceMemberSerializer(serializers.Serializer):
    principal = serializers.CharField(max_length=MAX_PRINCIPAL, help_text="The member as requested")
    new_principal = serializers.CharField(max_length=MAX_PRINCIPAL)


class ClusterChangeSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=64)
    drop = serializers.BooleanField(default=False)
    vm_size = serializers.CharField(max_length=64, required=False)
    priority = serializers.ChoiceField(choices=Priority.choices, required=False)
    min_nodes = serializers.IntegerField(min_value=0, max_value=MAX_COUNT, required=False)
    max_nodes = serializers.IntegerField(min_value=1, max_value=MAX_COUNT, required=False)


class AmendSerializer(serializers.Serializer):
    """What changes in a failed request: members dropped or replaced, clusters Azure did not create lowered
    or dropped; and why."""

    reason = serializers.CharField(max_length=MAX_REASON)
    drop_members = serializers.ListField(
        child=serializers.CharField(max_length=MAX_PRINCIPAL), required=False, max_length=100
    )
    replace_members = ReplaceMemberSerializer(many=True, required=False, max_length=100)
    clusters = ClusterChangeSerializer(many=True, required=False, max_length=100)

    def amendment(self) -> Amendment:
        data: dict[str, Any] = self.validated_data
        return Amendment(
            reason=data["reason"],
            drop_members=tuple(data.get("drop_members", [])),
            replace_members=tuple(
                (r["principal"], r["new_principal"]) for r in data.get("replace_members", [])
            ),
            clusters=tuple(
                ClusterChange(
                    name=c["name"],
                    drop=c["drop"],
                    vm_size=c.get("vm_size", "").upper() or None,
                    priority=c.get("priority"),
                    min_nodes=c.get("min_nodes"),
                    max_nodes=c.get("max_nodes"),
                )
                for c in data.get("clusters", [])
            ),
        )


# --- what the API shows -------------------------------------------------------------------------------------


def _person(user: Any) -> str | None:
    return user.principal_name if user is not None else None


class ChangeRequestSerializer(serializers.ModelSerializer):
    requester = serializers.SerializerMethodField()
    approver = serializers.SerializerMethodField()
    spec = serializers.JSONField()

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "kind",
            "status",
            "workspace",
            "workspace_name",
            "requester",
            "approver",
            "reason",
            "copied_from",
            "spec",
            "created_at",
            "updated_at",
            "submitted_at",
            "decided_at",
        ]
        read_only_fields = fields

    def get_requester(self, cr: ChangeRequest) -> str | None:
        return _person(cr.requester)

    def get_approver(self, cr: ChangeRequest) -> str | None:
        return _person(cr.approver)


class StepSerializer(serializers.ModelSerializer):
    class Meta:
        model = Step
        fields = [
            "key",
            "kind",
            "target",
            "status",
            "attempts",
            "started_at",
            "finished_at",
            "azure_id",
            "outcome",
            "error_code",
            "error_message",
            "correlation_id",
            "hint",
        ]
        read_only_fields = fields


class RunSerializer(serializers.ModelSerializer):
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = Run
        fields = ["number", "purpose", "status", "created_at", "started_at", "finished_at", "steps"]
        read_only_fields = fields


class WorkspaceSerializer(serializers.ModelSerializer):
    owner = serializers.SerializerMethodField()

    class Meta:
        model = Workspace
        fields = [
            "id",
            "workspace_name",
            "state",
            "management",
            "subscription_id",
            "region",
            "department",
            "team",
            "purpose",
            "project",
            "pool_teams",
            "environment",
            "resource_group",
            "storage_work",
            "storage_data",
            "key_vault",
            "registry",
            "app_insights",
            "azure_id",
            "owner",
            "created_at",
        ]
        read_only_fields = fields

    def get_owner(self, ws: Workspace) -> str | None:
        return _person(ws.owner)


class MembershipSerializer(serializers.ModelSerializer):
    class Meta:
        model = Membership
        fields = ["id", "principal_name", "principal_type", "persona", "state", "expires_at", "created_at"]
        read_only_fields = fields


class ClusterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Cluster
        fields = ["id", "name", "vm_size", "priority", "min_nodes", "max_nodes", "idle_seconds", "state"]
        read_only_fields = fields


class DriftItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = DriftItem
        fields = [
            "id",
            "kind",
            "resource_id",
            "field",
            "expected",
            "actual",
            "status",
            "first_seen",
            "last_seen",
            "closed_at",
            "reason",
        ]
        read_only_fields = fields
