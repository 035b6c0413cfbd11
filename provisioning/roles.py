"""The portal's custom roles, and what a persona may and may not do, in plain words (pure: no Django, no SDK).

The permissions are what ``provisioning.azure.authz`` writes to Azure; the words are derived from them with
Azure's matching rule (an action is allowed when it matches an ``actions`` entry and no ``notActions`` entry,
``*`` matching any run of characters, case-insensitively), read cautiously where it is ambiguous: a ``/*/`` in a
``notActions`` entry also denies the action without that segment (``computes/*/write`` denies
``computes/write``), as Microsoft describes its built-in AzureML Data Scientist, which relies on it. So the
sentences never promise what a literal or a generous reading would not both allow. The data-plane roles the matrix grants (storage, key vault, registry) are
Azure's built-in roles, described by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from provisioning.arm import ADMIN_ROLES
from provisioning.plan import ROLE_MATRIX

ML = "Microsoft.MachineLearningServices"

# Written to Azure as the portal's custom roles (names in ``provisioning.arm.CUSTOM_ROLES``). The explicit
# ``computes/write`` and ``computes/delete`` lines matter: ``workspaces/*/write`` grants creating a compute,
# and whether ``computes/*/write`` takes it back depends on reading ``*`` as "at least one segment" or not;
# naming the operation itself leaves no doubt.
CUSTOM_ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    # Run experiments; cannot delete or reconfigure the workspace, manage computes, or write authorization.
    "Data Scientist": {
        "actions": [
            f"{ML}/workspaces/*/read",
            f"{ML}/workspaces/*/action",
            f"{ML}/workspaces/*/write",
            f"{ML}/workspaces/*/delete",
        ],
        "not_actions": [
            f"{ML}/workspaces/delete",
            f"{ML}/workspaces/write",
            f"{ML}/workspaces/computes/write",
            f"{ML}/workspaces/computes/delete",
            f"{ML}/workspaces/computes/*/write",
            f"{ML}/workspaces/computes/*/delete",
            f"{ML}/workspaces/computes/listKeys/action",
            f"{ML}/workspaces/listKeys/action",
            f"{ML}/workspaces/hubs/write",
            f"{ML}/workspaces/hubs/delete",
            f"{ML}/workspaces/featurestores/write",
            f"{ML}/workspaces/featurestores/delete",
            f"{ML}/quotas/write",
            "Microsoft.Authorization/*/write",
            "Microsoft.Support/*/write",
        ],
    },
    # A data scientist who also manages the workspace's clusters (within the quota admins give the team).
    "Team Lead": {
        "actions": [
            f"{ML}/workspaces/*/read",
            f"{ML}/workspaces/*/action",
            f"{ML}/workspaces/*/write",
            f"{ML}/workspaces/*/delete",
            f"{ML}/workspaces/computes/*/write",
            f"{ML}/workspaces/computes/*/delete",
        ],
        "not_actions": [
            f"{ML}/workspaces/delete",
            f"{ML}/workspaces/write",
            f"{ML}/quotas/write",
            "Microsoft.Authorization/*/write",
            "Microsoft.Support/*/write",
        ],
    },
}


# The two administration roles the tutorial announces (seed: "one at the subscription level and one at the
# resource group level"), each line with the reason it is there (docs/roles.md prints them). The portal creates
# them in every allowed subscription and assigns them to the groups the subscription names
# (``AllowedSubscription.capacity_admin_group`` / ``workspace_admin_group``).
CAPACITY_ADMIN, WORKSPACE_ADMIN = ADMIN_ROLES
ADMIN_ROLE_SCOPE = {CAPACITY_ADMIN: "subscription", WORKSPACE_ADMIN: "resource_group"}
ADMIN_ROLE_REASONS: dict[str, dict[str, list[tuple[str, str]]]] = {
    CAPACITY_ADMIN: {
        "actions": [
            (
                f"{ML}/locations/usages/read",
                "read the subscription's AzureML core usage and limits per region",
            ),
            (f"{ML}/locations/vmsizes/read", "read which VM sizes (and their families) a region offers"),
            (f"{ML}/locations/quotas/read", "read the AzureML quotas set on workspaces"),
            (f"{ML}/locations/updateQuotas/action", "set a workspace's share of the subscription's quota"),
            ("Microsoft.Quota/quotas/read", "read the subscription's quota limits through the Quota API"),
            ("Microsoft.Quota/quotas/write", "file a quota increase request through the Quota API"),
            ("Microsoft.Quota/quotaRequests/read", "follow a quota increase request until Azure decides it"),
            ("Microsoft.Quota/usages/read", "read usage through the Quota API"),
        ],
        "not_actions": [],
    },
    WORKSPACE_ADMIN: {
        "actions": [
            ("Microsoft.Resources/subscriptions/resourceGroups/read", "see the workspace's resource group"),
            (f"{ML}/workspaces/*/read", "read everything in the workspace"),
            (f"{ML}/workspaces/read", "read the workspace itself"),
            (f"{ML}/workspaces/write", "change the workspace's settings (manage the workspace)"),
            (
                f"{ML}/workspaces/*/action",
                "run the workspace's operations (jobs, endpoints, compute start/stop)",
            ),
            (f"{ML}/workspaces/*/write", "create and change what the workspace holds"),
            (f"{ML}/workspaces/*/delete", "delete what the workspace holds"),
            (f"{ML}/workspaces/computes/write", "create and change clusters"),
            (f"{ML}/workspaces/computes/delete", "delete clusters"),
        ],
        "not_actions": [
            (f"{ML}/workspaces/delete", "the workspace is given back through the portal's decommissioning"),
            (f"{ML}/locations/updateQuotas/action", "cannot request quota: the capacity admins do"),
            (f"{ML}/quotas/write", "cannot request quota: the capacity admins do"),
            ("Microsoft.Quota/*", "cannot request quota: the capacity admins do"),
            ("Microsoft.Authorization/*/write", "access is granted through the portal's approved requests"),
        ],
    },
}
CUSTOM_ROLE_PERMISSIONS.update(
    {
        role: {kind: [action for action, _ in lines] for kind, lines in reasons.items()}
        for role, reasons in ADMIN_ROLE_REASONS.items()
    }
)


@dataclass(frozen=True)
class Ability:
    """One thing a workspace role may do, probed by the Azure action that does it."""

    action: str
    can: str
    cannot: str


# In the order a person reads them: their daily work first, then what is an admin's or the portal's.
WORKSPACE_ABILITIES = (
    Ability(f"{ML}/workspaces/jobs/write", "submit jobs on the workspace's clusters", "submit jobs"),
    Ability(f"{ML}/workspaces/datastores/read", "read the workspace's datastores", "read the datastores"),
    Ability(f"{ML}/workspaces/models/write", "register models", "register models"),
    Ability(
        f"{ML}/workspaces/onlineEndpoints/write",
        "deploy models to online endpoints",
        "deploy models to online endpoints",
    ),
    Ability(f"{ML}/workspaces/computes/write", "create and change clusters", "create or change clusters"),
    Ability(f"{ML}/workspaces/computes/delete", "delete clusters", "delete clusters"),
    Ability(
        f"{ML}/locations/updateQuotas/action",
        "request quota",
        "request quota (the portal's admins do, per team budget)",
    ),
    Ability(
        "Microsoft.Authorization/roleAssignments/write",
        "give others access",
        "give anyone access (the portal does, on an approved request)",
    ),
    Ability(f"{ML}/workspaces/delete", "delete the workspace", "delete the workspace"),
)

# The built-in roles the matrix grants on the workspace's other resources, in words.
BUILTIN_ROLE_WORDS = {
    "Storage Blob Data Contributor": "read and write files in the team's storage accounts",
    "Key Vault Secrets User": "read the key vault's secrets",
    "Key Vault Secrets Officer": "read and manage the key vault's secrets",
    "AcrPull": "pull images from the container registry",
    "AcrPush": "push and pull images in the container registry",
}
DATA_PLANE_COLUMNS = ("storage", "key_vault", "registry")


@cache
def _pattern(entry: str, *, denying: bool) -> re.Pattern[str]:
    """``entry`` as a regular expression: ``*`` any run of characters; in a denial, ``/*/`` also ``/``."""
    parts = []
    for i, c in enumerate(entry):
        if c != "*":
            parts.append(re.escape(c))
        elif denying and entry[i - 1 : i] == "/" and entry[i + 1 : i + 2] == "/":
            parts.append("(?:.*/)?")
        else:
            parts.append(".*")
    expression = "".join(parts)
    if denying:
        expression = expression.replace("/(?:.*/)?/", "/(?:.*/)?")
    return re.compile(expression, re.IGNORECASE)


def allows(permissions: dict[str, list[str]], action: str) -> bool:
    """Whether a role with these ``actions`` / ``not_actions`` allows ``action`` (Azure's matching rule, its
    ambiguity read as a denial)."""
    granted = any(_pattern(entry, denying=False).fullmatch(action) for entry in permissions["actions"])
    denied = any(_pattern(entry, denying=True).fullmatch(action) for entry in permissions["not_actions"])
    return granted and not denied


@dataclass(frozen=True)
class Abilities:
    """What a persona may and may not do, in words, and the workspace role it comes from."""

    role: str
    can: tuple[str, ...]
    cannot: tuple[str, ...]


# Azure's built-in role an environment may give data scientists instead of the portal's (as Microsoft lists it).
BUILTIN_ROLE_PERMISSIONS: dict[str, dict[str, list[str]]] = {
    "AzureML Data Scientist": {
        "actions": [
            f"{ML}/workspaces/*/read",
            f"{ML}/workspaces/*/action",
            f"{ML}/workspaces/*/delete",
            f"{ML}/workspaces/*/write",
        ],
        "not_actions": [
            f"{ML}/workspaces/delete",
            f"{ML}/workspaces/write",
            f"{ML}/workspaces/computes/*/write",
            f"{ML}/workspaces/computes/*/delete",
            "Microsoft.Authorization/*",
            f"{ML}/workspaces/computes/listKeys/action",
            f"{ML}/workspaces/listKeys/action",
            f"{ML}/workspaces/hubs/write",
            f"{ML}/workspaces/hubs/delete",
            f"{ML}/workspaces/featurestores/write",
            f"{ML}/workspaces/featurestores/delete",
        ],
    },
}


@cache
def persona_abilities(persona: str, scientist_role: str = "Data Scientist") -> Abilities:
    """What a member with ``persona`` may do in the workspace (its role's actions: the portal's custom role,
    or for data scientists the role their workspace gives them) and on its storage, key vault and registry
    (the matrix's built-in roles), and what they may not."""
    columns = ROLE_MATRIX[persona]
    role = scientist_role if persona == "data_scientist" else columns["workspace"]
    permissions = CUSTOM_ROLE_PERMISSIONS.get(role) or BUILTIN_ROLE_PERMISSIONS[role]
    can = [a.can for a in WORKSPACE_ABILITIES if allows(permissions, a.action)]
    cannot = [a.cannot for a in WORKSPACE_ABILITIES if not allows(permissions, a.action)]
    can += [BUILTIN_ROLE_WORDS[columns[c]] for c in DATA_PLANE_COLUMNS if columns[c] in BUILTIN_ROLE_WORDS]
    return Abilities(role, tuple(can), tuple(cannot))
