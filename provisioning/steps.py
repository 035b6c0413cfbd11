"""The dependency graph of a plan: which Azure operations, in which order (pure, no I/O).

The graph is recomputed from the stored plan whenever a run executes, so it is the same for every
delivery of the same run; ``Step`` rows only carry each operation's status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioning.arm import CUSTOM_ROLES, KIND_PROVIDER


@dataclass(frozen=True)
class StepSpec:
    """One node of the graph: a stable key, its kind, a readable target, its dependencies and parameters."""

    key: str
    kind: str
    target: str
    depends_on: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


def principal_key(principal: str, principal_type: str) -> str:
    return f"principal:{principal_type}:{principal.lower()}"


def _resource_key(resource: dict[str, Any]) -> str:
    return f"{resource['type']}:{resource['name']}"


def _resource_steps(plan: dict[str, Any]) -> list[StepSpec]:
    specs: list[StepSpec] = []
    names = plan["names"]
    for resource in plan["resources"]:
        kind = resource["type"]
        if kind == "resource_group":
            specs.append(
                StepSpec(
                    "resource_group",
                    "resource_group",
                    f"resource group {resource['name']}",
                    (),
                    {"name": resource["name"]},
                )
            )
        elif kind == "workspace":
            deps = (
                "resource_group",
                f"storage_account:{names['storage_work']}",
                f"key_vault:{names['key_vault']}",
                f"container_registry:{names['registry']}",
                f"app_insights:{names['app_insights']}",
            )
            specs.append(
                StepSpec(
                    "workspace",
                    "workspace",
                    f"workspace {resource['name']}",
                    deps,
                    {"name": resource["name"]},
                )
            )
        else:
            specs.append(
                StepSpec(
                    _resource_key(resource),
                    kind,
                    f"{kind.replace('_', ' ')} {resource['name']}",
                    ("resource_group",),
                    {"name": resource["name"], "settings": resource.get("settings", {})},
                )
            )
    return specs


def scope_id(plan: dict[str, Any], scope_type: str, scope_name: str) -> str:
    """The ARM id of a grant's scope, derived from names (no lookup needed)."""
    base = f"/subscriptions/{plan['subscription_id']}/resourceGroups/{plan['names']['resource_group']}"
    if scope_type == "resource_group":
        return base
    provider = KIND_PROVIDER[scope_type]
    return f"{base}/providers/{provider}/{scope_name}"


def _scope_dependency(plan_keys: set[str], scope_type: str, scope_name: str) -> tuple[str, ...]:
    if scope_type == "resource_group":
        key = "resource_group"
    elif scope_type == "workspace":
        key = "workspace"
    elif scope_type == "registry":
        key = f"container_registry:{scope_name}"
    else:
        key = f"{scope_type}:{scope_name}"
    return (key,) if key in plan_keys else ()


def _grant_steps(
    plan: dict[str, Any], assignments: list[dict[str, Any]], plan_keys: set[str], *, revoke: bool
) -> list[StepSpec]:
    specs: list[StepSpec] = []
    verb = "revoke" if revoke else "grant"
    for ra in assignments:
        pkey = principal_key(ra["principal"], ra["principal_type"])
        deps = (pkey, *_scope_dependency(plan_keys, ra["scope_type"], ra["scope_name"]))
        if ra["role"] in CUSTOM_ROLES and not revoke:
            deps = (*deps, f"custom_role:{ra['role']}")
        key = f"{verb}:{ra['principal'].lower()}:{ra['scope_type']}:{ra['scope_name']}:{ra['role']}"
        target = (
            f"{ra['role']} for {ra['principal']} on {ra['scope_type'].replace('_', ' ')} {ra['scope_name']}"
        )
        specs.append(
            StepSpec(
                key,
                f"role_{verb}",
                target,
                deps,
                {**ra, "scope": scope_id(plan, ra["scope_type"], ra["scope_name"])},
            )
        )
    return specs


# Removals run in reverse dependency order: what is granted on or runs in a resource goes before it.
REMOVAL_TIERS = {
    "role_assignment": 0,
    "cluster": 1,
    "workspace": 2,
    "storage_account": 3,
    "key_vault": 3,
    "container_registry": 3,
    "app_insights": 3,
    "resource_group": 4,
}


def removal_key(kind: str, azure_id: str) -> str:
    return f"remove:{kind}:{azure_id.lower()}"


def _removal_steps(removals: list[dict[str, Any]]) -> list[StepSpec]:
    """Deletions by Azure id (a rollback, or access added outside the portal), each after every removal
    of a lower tier."""
    specs: list[StepSpec] = []
    for item in removals:
        tier = REMOVAL_TIERS[item["kind"]]
        deps = tuple(
            removal_key(other["kind"], other["azure_id"])
            for other in removals
            if REMOVAL_TIERS[other["kind"]] < tier
        )
        specs.append(
            StepSpec(
                removal_key(item["kind"], item["azure_id"]),
                "remove",
                f"remove {item['kind'].replace('_', ' ')} {item.get('name') or item['azure_id']}",
                deps,
                dict(item),
            )
        )
    return specs


def _retention_steps(plan: dict[str, Any]) -> list[StepSpec]:
    """Decommission with the data kept: each kept storage account is tagged as retained once the role
    assignments (its own among them) are removed."""
    removals = plan.get("removals") or []
    grants = tuple(removal_key(r["kind"], r["azure_id"]) for r in removals if r["kind"] == "role_assignment")
    return [
        StepSpec(
            f"retain:{item['kind']}:{item['azure_id'].lower()}",
            "retain",
            f"tag {item['kind'].replace('_', ' ')} {item['name']} as retained",
            grants,
            dict(item),
        )
        for item in plan.get("retentions") or []
    ]


def steps_for_plan(plan: dict[str, Any]) -> list[StepSpec]:
    """Every operation of a plan, in a stable order, with its dependencies."""
    if plan.get("removals") or plan.get("retentions"):
        return _removal_steps(plan.get("removals") or []) + _retention_steps(plan) + _build_steps(plan)
    return _build_steps(plan)


def _build_steps(plan: dict[str, Any]) -> list[StepSpec]:
    if "names" not in plan:  # a rollback plan holds removals only
        return []
    specs = _resource_steps(plan)
    keys = {s.key for s in specs}
    has_workspace = "workspace" in keys
    for cluster in plan["clusters"]:
        specs.append(
            StepSpec(
                f"cluster:{cluster['name']}",
                "cluster",
                f"cluster {cluster['name']}",
                ("workspace",) if has_workspace else (),
                dict(cluster),
            )
        )
    specs += _cluster_change_steps(plan)
    quotas = plan.get("workspace_quotas") or []
    if quotas:
        families = "VM family" if len(quotas) == 1 else "VM families"
        specs.append(
            StepSpec(
                "workspace_quota",
                "workspace_quota",
                f"workspace quota for {len(quotas)} {families}",
                ("workspace",) if has_workspace else (),
                {"quotas": [dict(q) for q in quotas]},
            )
        )
    for role in plan.get("custom_roles", []):
        specs.append(
            StepSpec(f"custom_role:{role}", "custom_role", f"custom role '{role}'", (), {"role": role})
        )
    principals: dict[str, StepSpec] = {}
    for ra in [*plan["role_assignments"], *plan.get("revocations", [])]:
        pkey = principal_key(ra["principal"], ra["principal_type"])
        principals.setdefault(
            pkey,
            StepSpec(
                pkey,
                "principal",
                f"{ra['principal_type']} {ra['principal']} in Entra ID",
                (),
                {"principal": ra["principal"], "principal_type": ra["principal_type"]},
            ),
        )
    specs += principals.values()
    keys = {s.key for s in specs}
    specs += _grant_steps(plan, plan["role_assignments"], keys, revoke=False)
    specs += _grant_steps(plan, plan.get("revocations", []), keys, revoke=True)
    return specs


def _cluster_change_steps(plan: dict[str, Any]) -> list[StepSpec]:
    """Day-2 cluster changes: an update in place is one step; a replace deletes the cluster, then creates
    it with the new settings; a delete is one step. Deletes refuse a cluster with running nodes."""
    specs: list[StepSpec] = []
    for c in plan.get("cluster_updates", []):
        settings = {k: v for k, v in c.items() if k not in ("mode", "azure_id")}
        if c["mode"] == "update":
            specs.append(
                StepSpec(
                    f"cluster_update:{c['name']}", "cluster_update", f"cluster {c['name']}", (), settings
                )
            )
            continue
        delete_key = f"cluster_delete:{c['name']}"
        specs.append(
            StepSpec(
                delete_key,
                "cluster_delete",
                f"cluster {c['name']} (replaced: deleted first)",
                (),
                {"name": c["name"], "azure_id": c["azure_id"], "replaced": True},
            )
        )
        specs.append(
            StepSpec(
                f"cluster:{c['name']}",
                "cluster",
                f"cluster {c['name']} (replaced: created again)",
                (delete_key,),
                settings,
            )
        )
    for c in plan.get("cluster_deletes", []):
        specs.append(
            StepSpec(
                f"cluster_delete:{c['name']}",
                "cluster_delete",
                f"cluster {c['name']}",
                (),
                {"name": c["name"], "azure_id": c["azure_id"], "replaced": False},
            )
        )
    return specs


def critical_path(specs: list[StepSpec], durations: dict[str, float]) -> tuple[float, list[str]]:
    """The longest chain of dependent steps, given each step's duration."""
    by_key = {s.key: s for s in specs}
    memo: dict[str, tuple[float, list[str]]] = {}

    def longest(key: str) -> tuple[float, list[str]]:
        if key not in memo:
            deps = [longest(d) for d in by_key[key].depends_on if d in by_key]
            best = max(deps, key=lambda t: t[0], default=(0.0, []))
            memo[key] = (best[0] + durations.get(key, 0.0), [*best[1], key])
        return memo[key]

    return max((longest(s.key) for s in specs), key=lambda t: t[0], default=(0.0, []))
