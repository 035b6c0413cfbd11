"""One handler per step kind: what each step of a plan asks of Azure (called on the run's thread pool).

``HANDLERS`` maps every kind ``provisioning.steps`` produces to its handler; a kind without one is a
bug and fails the step loudly instead of falling through to some other operation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from provisioning import arm
from provisioning.azure import authz, ml, quotas, removals, resources
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, Outcome
from provisioning.models import Run
from provisioning.steps import StepSpec, principal_key, scope_id


@dataclass
class RunContext:
    """What every step of one run needs besides its own parameters."""

    clients: AzureClients
    plan: dict[str, Any]
    region: str
    tags: dict[str, str]
    tenant_id: str
    results: dict[str, str]
    roles: authz.RoleCatalog
    # Azure's answer per family of a workspace_quota step, stored by the calling thread (step key -> results).
    quota_results: dict[str, list[quotas.QuotaResult]] = field(default_factory=dict)
    # What this run created (Azure ids, lower case), and the steps no attempt has started yet: what a step
    # would look for first inside something the run created, on its first attempt, cannot be there.
    created: set[str] = field(default_factory=set)
    untried: set[str] = field(default_factory=set)

    @property
    def subscription(self) -> str:
        return str(self.plan["subscription_id"])

    @property
    def resource_group(self) -> str:
        return str(self.plan["names"]["resource_group"])

    def look_first(self, spec: StepSpec, azure_id: str) -> bool:
        """Whether the step must look for what it makes before making it.

        Not on its first attempt inside something this run created (a new resource group holds nothing
        else): the answer is known to be 404, and a burst of runs spends ARM's read limit on it. A retry
        looks, since its earlier attempt may have got as far as Azure.
        """
        target = azure_id.lower()
        inside = any(target == c or target.startswith(c + "/") for c in self.created)
        return not (inside and spec.key in self.untried)

    def group_id(self) -> str:
        return scope_id(self.plan, "resource_group", self.resource_group)

    def placed(self) -> dict[str, Any]:
        """The arguments of every operation on a resource inside the run's resource group."""
        return {
            "subscription": self.subscription,
            "resource_group": self.resource_group,
            "location": self.region,
            "tags": self.tags,
        }


def run_context(run: Run, clients: AzureClients, results: dict[str, str]) -> RunContext:
    """The context of a run: the request's approved plan, or what its rollback removes."""
    plan = run.plan
    workspace = run.change_request.workspace
    group = next((r for r in plan.get("resources", []) if r["type"] == "resource_group"), None)
    tags = group["tags"] if group else arm.ownership_tags()
    region = group["location"] if group else (workspace.region if workspace else "")
    return RunContext(
        clients=clients,
        plan=plan,
        region=region,
        tags=tags,
        tenant_id=settings.AZURE_TENANT_ID,
        results=results,
        roles=authz.RoleCatalog(clients, str(plan.get("subscription_id", ""))),
    )


def _resource_id(ctx: RunContext, kind: str, name: str) -> str:
    return ctx.results.get(f"{kind}:{name}") or arm.arm_id(
        ctx.subscription, ctx.resource_group, arm.KIND_PROVIDER[kind], name
    )


def _resource_group(ctx: RunContext, spec: StepSpec) -> Outcome:
    return resources.ensure_resource_group(
        ctx.clients,
        subscription=ctx.subscription,
        name=spec.params["name"],
        location=ctx.region,
        tags=ctx.tags,
    )


def _storage_account(ctx: RunContext, spec: StepSpec) -> Outcome:
    return resources.ensure_storage_account(
        ctx.clients,
        **ctx.placed(),
        name=spec.params["name"],
        hierarchical_namespace=spec.params["settings"].get("hierarchical_namespace", False),
        look_first=ctx.look_first(spec, ctx.group_id()),
    )


def _key_vault(ctx: RunContext, spec: StepSpec) -> Outcome:
    return resources.ensure_key_vault(
        ctx.clients,
        **ctx.placed(),
        name=spec.params["name"],
        tenant_id=ctx.tenant_id,
        look_first=ctx.look_first(spec, ctx.group_id()),
    )


def _container_registry(ctx: RunContext, spec: StepSpec) -> Outcome:
    return resources.ensure_container_registry(
        ctx.clients, **ctx.placed(), name=spec.params["name"], look_first=ctx.look_first(spec, ctx.group_id())
    )


def _app_insights(ctx: RunContext, spec: StepSpec) -> Outcome:
    return resources.ensure_app_insights(
        ctx.clients, **ctx.placed(), name=spec.params["name"], look_first=ctx.look_first(spec, ctx.group_id())
    )


def _workspace(ctx: RunContext, spec: StepSpec) -> Outcome:
    names = ctx.plan["names"]
    return ml.ensure_workspace(
        ctx.clients,
        **ctx.placed(),
        name=spec.params["name"],
        storage_id=_resource_id(ctx, "storage_account", names["storage_work"]),
        key_vault_id=_resource_id(ctx, "key_vault", names["key_vault"]),
        registry_id=_resource_id(ctx, "container_registry", names["registry"]),
        app_insights_id=_resource_id(ctx, "app_insights", names["app_insights"]),
        look_first=ctx.look_first(spec, ctx.group_id()),
    )


def _cluster(ctx: RunContext, spec: StepSpec) -> Outcome:
    p = spec.params
    return ml.ensure_cluster(
        ctx.clients,
        **ctx.placed(),
        workspace=ctx.plan["names"]["workspace"],
        name=p["name"],
        vm_size=p["vm_size"],
        priority=p["priority"],
        min_nodes=p["min_nodes"],
        max_nodes=p["max_nodes"],
        idle_seconds=p["idle_seconds"],
    )


def _cluster_update(ctx: RunContext, spec: StepSpec) -> Outcome:
    """Scale settings changed in place (min, max nodes, idle time): one Compute_Update."""
    p = spec.params
    return ml.update_cluster(
        ctx.clients,
        subscription=ctx.subscription,
        resource_group=ctx.resource_group,
        workspace=ctx.plan["names"]["workspace"],
        name=p["name"],
        min_nodes=p["min_nodes"],
        max_nodes=p["max_nodes"],
        idle_seconds=p["idle_seconds"],
    )


def _cluster_delete(ctx: RunContext, spec: StepSpec) -> Outcome:
    """A cluster deleted (or the first half of a replace), refused while it runs jobs."""
    return ml.delete_cluster(
        ctx.clients,
        subscription=ctx.subscription,
        resource_group=ctx.resource_group,
        workspace=ctx.plan["names"]["workspace"],
        name=spec.params["name"],
        replaced=bool(spec.params.get("replaced")),
    )


def _workspace_quota(ctx: RunContext, spec: StepSpec) -> Outcome:
    """The team's dedicated budgets as the workspace's AzureML quota; any refusal fails the step."""
    workspace_id = arm.arm_id(
        ctx.subscription, ctx.resource_group, arm.WORKSPACE_PROVIDER, ctx.plan["names"]["workspace"]
    )
    results = quotas.apply_workspace_quotas(
        ctx.clients,
        subscription=ctx.subscription,
        location=ctx.region,
        workspace_id=workspace_id,
        limits={str(q["family"]): int(q["limit"]) for q in spec.params["quotas"]},
    )
    ctx.quota_results[spec.key] = results
    refused = [r for r in results if not r.ok]
    if refused:
        raise AzureStepError(refused[0].status, " ".join(r.message for r in refused))
    return Outcome("updated" if any(r.sent for r in results) else "unchanged", workspace_id)


def _custom_role(ctx: RunContext, spec: StepSpec) -> Outcome:
    return authz.ensure_custom_role(ctx.clients, subscription=ctx.subscription, role_name=spec.params["role"])


def _principal(ctx: RunContext, spec: StepSpec) -> Outcome:
    p = spec.params
    return authz.resolve_principal(ctx.clients, principal=p["principal"], principal_type=p["principal_type"])


def _grant_parts(ctx: RunContext, spec: StepSpec) -> tuple[str, str]:
    """The principal's object id and the role's definition id of a grant or revoke step."""
    p = spec.params
    principal_id = ctx.results[principal_key(p["principal"], p["principal_type"])]
    role_id = ctx.results.get(f"custom_role:{p['role']}") or ctx.roles.role_id(p["role"])
    return principal_id, role_id


def _role_grant(ctx: RunContext, spec: StepSpec) -> Outcome:
    principal_id, role_id = _grant_parts(ctx, spec)
    return authz.ensure_role_assignment(
        ctx.clients,
        subscription=ctx.subscription,
        scope=spec.params["scope"],
        role_definition_id=role_id,
        principal_id=principal_id,
        principal_type=spec.params["principal_type"],
        look_first=ctx.look_first(spec, spec.params["scope"]),
    )


def _role_revoke(ctx: RunContext, spec: StepSpec) -> Outcome:
    principal_id, role_id = _grant_parts(ctx, spec)
    return authz.remove_role_assignment(
        ctx.clients,
        subscription=ctx.subscription,
        scope=spec.params["scope"],
        role_definition_id=role_id,
        principal_id=principal_id,
    )


def _remove(ctx: RunContext, spec: StepSpec) -> Outcome:
    """A deletion by Azure id (a rollback, or access an admin chose to remove)."""
    return removals.remove_resource(ctx.clients, kind=spec.params["kind"], azure_id=spec.params["azure_id"])


def _retain(ctx: RunContext, spec: StepSpec) -> Outcome:
    """A storage account kept at a decommission: tagged as retained (its access is removed by other steps)."""
    return removals.retain_storage_account(
        ctx.clients, azure_id=spec.params["azure_id"], tags=spec.params["tags"]
    )


Handler = Callable[[RunContext, StepSpec], Outcome]

HANDLERS: dict[str, Handler] = {
    "resource_group": _resource_group,
    "storage_account": _storage_account,
    "key_vault": _key_vault,
    "container_registry": _container_registry,
    "app_insights": _app_insights,
    "workspace": _workspace,
    "cluster": _cluster,
    "cluster_update": _cluster_update,
    "cluster_delete": _cluster_delete,
    "workspace_quota": _workspace_quota,
    "custom_role": _custom_role,
    "principal": _principal,
    "role_grant": _role_grant,
    "role_revoke": _role_revoke,
    "remove": _remove,
    "retain": _retain,
}


class UnknownStepKind(LookupError):
    """A plan holds a step kind no handler knows: a bug, never retried."""


def step_do(ctx: RunContext, spec: StepSpec) -> Outcome:
    """Carry out one step through the handler of its kind."""
    try:
        handler = HANDLERS[spec.kind]
    except KeyError:
        raise UnknownStepKind(f"no handler for step kind {spec.kind!r} ({spec.key})") from None
    return handler(ctx, spec)
