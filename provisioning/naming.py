"""The tutorial's naming convention, as pure functions checked against Azure's naming rules.

The tutorial's scripts built every name from ``department``, ``team``, ``region_abbv`` and
``environment`` (or a ``custom_name``) and then cut the result to fit, which silently produced
names that collided or broke Azure's rules. Here the same convention is kept, but nothing is cut:
each resulting name is checked against the rules of its resource type and every problem is
reported with the input that caused it, the rule, and a suggested fix.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# The convention's component lengths (tutorial: department[:4], team[:10], region_abbv[:2],
# environment[:3]; the base name was then cut to 19 characters).
DEPARTMENT_MAX = 4
TEAM_MAX = 10
REGION_ABBV_LEN = 2
ENVIRONMENTS = ("res", "dev", "pro")
BASE_MAX = 19
# A project's short name joins the names after the team.
PROJECT_MIN, PROJECT_MAX = 2, 8
PROJECT = re.compile(rf"[a-z][a-z0-9]{{{PROJECT_MIN - 1},{PROJECT_MAX - 1}}}")
# With a custom name the team is only a tag, but it still has to fit the Workspace.team column.
TEAM_TAG_MAX = 24

SUFFIX_WORKSPACE = "ws"
SUFFIX_STORAGE_WORK = "work"
SUFFIX_STORAGE_DATA = "data"
SUFFIX_DATA_LAKE = "big"
SUFFIX_REGISTRY = "cr"
SUFFIX_KEY_VAULT = "kv"
SUFFIX_APP_INSIGHTS = "ai"


@dataclass(frozen=True)
class Rule:
    """Azure's naming rule for one resource type."""

    resource: str
    min_len: int
    max_len: int
    pattern: re.Pattern[str]
    allowed: str
    globally_unique: bool = False


RULES: dict[str, Rule] = {
    "resource_group": Rule(
        "resource group",
        1,
        90,
        re.compile(r"^[-\w.()]*[-\w()]$"),
        "letters, digits, '-', '_', '.', '(' and ')', not ending with '.'",
    ),
    "workspace": Rule(
        "workspace",
        3,
        33,
        re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]*$"),
        "letters, digits, '-' and '_', starting with a letter or digit",
    ),
    "storage": Rule(
        "storage account",
        3,
        24,
        re.compile(r"^[a-z0-9]+$"),
        "lowercase letters and digits only",
        globally_unique=True,
    ),
    "key_vault": Rule(
        "key vault",
        3,
        24,
        re.compile(r"^[a-zA-Z](?!.*--)[a-zA-Z0-9-]*[a-zA-Z0-9]$"),
        "letters, digits and single hyphens, starting with a letter and ending with a letter or digit",
        globally_unique=True,
    ),
    "registry": Rule(
        "container registry",
        5,
        50,
        re.compile(r"^[a-zA-Z0-9]+$"),
        "letters and digits only",
        globally_unique=True,
    ),
    "app_insights": Rule(
        "application insights",
        1,
        255,
        re.compile(r"^[^%&\\?/]*[^%&\\?/. ]$"),
        "no '%', '&', '\\', '?' or '/', not ending with '.' or a space",
    ),
    "cluster": Rule(
        "compute cluster",
        2,
        16,
        re.compile(r"^[a-zA-Z](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?$"),
        "letters, digits and '-', starting with a letter and not ending with '-'",
    ),
}


@dataclass(frozen=True)
class NamingInput:
    """What the team lead types; the convention turns it into every resource name."""

    department: str
    team: str
    region: str
    region_abbv: str
    environment: str
    custom_name: str = ""
    # A project workspace's short name: it joins the names after the team.
    project: str = ""

    def normalized(self) -> NamingInput:
        """Trimmed, and lowercased where Azure requires lowercase names (storage accounts)."""
        return NamingInput(
            department=self.department.strip().lower(),
            team=self.team.strip().lower(),
            region=self.region.strip().lower(),
            region_abbv=self.region_abbv.strip().lower(),
            environment=self.environment.strip().lower(),
            custom_name=self.custom_name.strip().lower(),
            project=self.project.strip().lower(),
        )


@dataclass(frozen=True)
class ResourceNames:
    """Every name the convention produces for one workspace."""

    resource_group: str
    base: str
    workspace: str
    storage_work: str
    storage_data: str
    data_lake: str
    key_vault: str
    registry: str
    app_insights: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def globally_unique(self) -> dict[str, str]:
        """The names Azure requires to be unique across all of Azure, by resource kind."""
        names = {
            "storage_work": self.storage_work,
            "storage_data": self.storage_data,
            "key_vault": self.key_vault,
            "registry": self.registry,
        }
        if self.data_lake:
            names["data_lake"] = self.data_lake
        return names


@dataclass(frozen=True)
class NameProblem:
    """One broken rule: which input to change, what rule failed and how to fix it."""

    field: str
    resource: str
    message: str


def base_name(inp: NamingInput) -> str:
    """``{department}{team}{project}{region_abbv}{environment}``, or the custom name (never cut)."""
    if inp.custom_name:
        return inp.custom_name
    return f"{inp.department}{inp.team}{inp.project}{inp.region_abbv}{inp.environment}"


def resource_group_name(inp: NamingInput) -> str:
    """``{department}-{team}[-{project}]-{region}-{environment}``, or the custom name."""
    if inp.custom_name:
        return inp.custom_name
    project = f"-{inp.project}" if inp.project else ""
    return f"{inp.department}-{inp.team}{project}-{inp.region}-{inp.environment}"


def project_name_problem(project: str) -> str | None:
    """Why a project's short name is not one (2-8 lowercase letters and digits, a letter first), or None."""
    if not PROJECT.fullmatch(project.strip().lower()):
        return (
            f"a project's short name is {PROJECT_MIN} to {PROJECT_MAX} lowercase letters and digits, "
            "starting with a letter (it joins every resource name)"
        )
    return None


def resource_names(inp: NamingInput, *, data_lake: bool) -> ResourceNames:
    """Every resource name for a workspace, by the tutorial's convention."""
    inp = inp.normalized()
    base = base_name(inp)
    return ResourceNames(
        resource_group=resource_group_name(inp),
        base=base,
        workspace=base + SUFFIX_WORKSPACE,
        storage_work=base + SUFFIX_STORAGE_WORK,
        storage_data=base + SUFFIX_STORAGE_DATA,
        data_lake=base + SUFFIX_DATA_LAKE if data_lake else "",
        key_vault=base + SUFFIX_KEY_VAULT,
        registry=base + SUFFIX_REGISTRY,
        app_insights=base + SUFFIX_APP_INSIGHTS,
    )


def rule_problem(kind: str, name: str) -> str | None:
    """Why ``name`` breaks Azure's rule for resource ``kind``, or None when it is valid."""
    rule = RULES[kind]
    if len(name) < rule.min_len:
        return f"'{name}' is too short for a {rule.resource} name: at least {rule.min_len} characters"
    if len(name) > rule.max_len:
        return (
            f"'{name}' is too long for a {rule.resource} name: {len(name)} characters, at most {rule.max_len}"
        )
    if not rule.pattern.fullmatch(name):  # not match(): `$` would accept a trailing newline
        return f"'{name}' is not a valid {rule.resource} name: {rule.allowed}"
    return None


def cluster_name_problem(name: str) -> str | None:
    """Why a compute cluster name breaks AzureML's rule (2-16 characters, letter first), or None."""
    return rule_problem("cluster", name.strip())


def _component_problems(inp: NamingInput) -> list[NameProblem]:
    """The convention's own limits on each input (the tutorial cut these; we refuse instead)."""
    # A custom name replaces the convention's names, not its inputs: they still become tags and columns.
    problems: list[NameProblem] = []
    # The department starts every name, and a key vault name must start with a letter.
    if not re.fullmatch(r"[a-z][a-z0-9]*", inp.department or "-"):
        problems.append(
            NameProblem(
                "department",
                "key vault",
                "department is required and must use lowercase letters and digits only, "
                "starting with a letter (storage account and key vault names allow "
                "nothing else)",
            )
        )
    elif len(inp.department) > DEPARTMENT_MAX:
        problems.append(
            NameProblem(
                "department",
                "naming convention",
                f"department too long: use at most {DEPARTMENT_MAX} characters",
            )
        )
    if not re.fullmatch(r"[a-z0-9]+", inp.team or "-"):
        problems.append(
            NameProblem(
                "team",
                "storage account",
                "team is required and must use lowercase letters and digits only "
                "(storage account names allow nothing else)",
            )
        )
    elif inp.custom_name and len(inp.team) > TEAM_TAG_MAX:
        problems.append(
            NameProblem("team", "naming convention", f"team too long: use at most {TEAM_TAG_MAX} characters")
        )
    if not re.fullmatch(r"[a-z][a-z0-9]", inp.region_abbv):
        problems.append(
            NameProblem(
                "region_abbv",
                "naming convention",
                "region abbreviation must be exactly 2 lowercase characters, "
                "a letter then a letter or digit (e.g. 'e2')",
            )
        )
    if inp.environment not in ENVIRONMENTS:
        problems.append(
            NameProblem(
                "environment", "naming convention", f"environment must be one of {', '.join(ENVIRONMENTS)}"
            )
        )
    if inp.project and (message := project_name_problem(inp.project)):
        problems.append(NameProblem("project", "naming convention", message))
    return problems


def _team_budget(inp: NamingInput) -> int:
    """How many team characters fit, by the convention and by the storage account rule."""
    longest_suffix = max(len(SUFFIX_STORAGE_WORK), len(SUFFIX_STORAGE_DATA))
    fixed = len(inp.department) + len(inp.region_abbv) + len(inp.environment)
    return max(0, min(TEAM_MAX, RULES["storage"].max_len - longest_suffix - fixed, BASE_MAX - fixed))


def _project_budget(inp: NamingInput) -> int:
    """How many project characters fit after the team, by the same limits as the team's."""
    longest_suffix = max(len(SUFFIX_STORAGE_WORK), len(SUFFIX_STORAGE_DATA))
    fixed = len(inp.department) + len(inp.team) + len(inp.region_abbv) + len(inp.environment)
    return max(0, min(PROJECT_MAX, RULES["storage"].max_len - longest_suffix - fixed, BASE_MAX - fixed))


def naming_problems(inp: NamingInput, *, data_lake: bool) -> list[NameProblem]:
    """Every rule the resulting names break, each tied to the input to change."""
    inp = inp.normalized()
    problems = _component_problems(inp)
    if problems:
        return problems
    names = resource_names(inp, data_lake=data_lake)
    source = "custom_name" if inp.custom_name else "team"
    if not inp.custom_name and len(inp.team) > _team_budget(inp):
        problems.append(
            NameProblem(
                "team",
                "storage account",
                f"team name too long for a storage account: use at most {_team_budget(inp)} characters "
                "or a custom name",
            )
        )
        return problems
    if not inp.custom_name and inp.project and len(inp.project) > _project_budget(inp):
        room = _project_budget(inp)
        fix = f"use at most {room} characters" if room >= PROJECT_MIN else "shorten the team"
        problems.append(
            NameProblem(
                "project",
                "storage account",
                f"project name too long for a storage account after team '{inp.team}': {fix} "
                "or a custom name",
            )
        )
        return problems
    if inp.custom_name and len(inp.custom_name) > BASE_MAX:
        problems.append(
            NameProblem(
                "custom_name",
                "storage account",
                f"custom name too long for a storage account: use at most {BASE_MAX} characters "
                f"(it is {len(inp.custom_name)})",
            )
        )
        return problems
    checks = [
        ("resource_group", names.resource_group),
        ("workspace", names.workspace),
        ("storage", names.storage_work),
        ("storage", names.storage_data),
        ("key_vault", names.key_vault),
        ("registry", names.registry),
        ("app_insights", names.app_insights),
    ]
    if data_lake:
        checks.append(("storage", names.data_lake))
    for kind, name in checks:
        message = rule_problem(kind, name)
        if message:
            problems.append(NameProblem(source, RULES[kind].resource, message))
    return problems


# --- the convention, backwards ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConventionMatch:
    """What a workspace's names say about it when read back through the tutorial's convention.

    ``follows`` is False (and ``reason`` says why) when the names cannot have come from the convention;
    the other fields are then empty.
    """

    follows: bool
    department: str = ""
    team: str = ""
    region: str = ""
    region_abbv: str = ""
    environment: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _not_following(reason: str) -> ConventionMatch:
    return ConventionMatch(follows=False, reason=reason)


def parse_workspace_name(workspace_name: str, resource_group: str, *, location: str = "") -> ConventionMatch:
    """Read department, team, region, region abbreviation and environment back from a workspace's names.

    The tutorial named the group ``{department}-{team}-{region}-{environment}`` and the workspace
    ``{department[:4]}{team[:10]}{region_abbv[:2]}{environment[:3]}`` cut to 19 characters, plus ``ws``. The
    group gives every part but the abbreviation, which is what the workspace name holds between the team
    and the environment. ``location``, when given, must be the group's region. Names made with a
    ``custom_name`` carry none of these and do not follow the convention.
    """
    group, name = resource_group.strip().lower(), workspace_name.strip().lower()
    parts = group.split("-")
    if len(parts) != 4 or not all(parts):
        return _not_following(f"resource group '{resource_group}' is not department-team-region-environment")
    department, team, region, environment = parts
    if environment[:3] not in ENVIRONMENTS:
        return _not_following(f"environment '{environment}' is not one of {', '.join(ENVIRONMENTS)}")
    if not re.fullmatch(r"[a-z][a-z0-9]*", department) or not re.fullmatch(r"[a-z0-9]+", team):
        return _not_following("department and team must be lowercase letters and digits")
    if location and location.replace(" ", "").lower() != region:
        return _not_following(f"the group names region '{region}' but the workspace is in '{location}'")
    if not name.endswith(SUFFIX_WORKSPACE):
        return _not_following(f"workspace name '{workspace_name}' does not end with '{SUFFIX_WORKSPACE}'")
    base, prefix = name.removesuffix(SUFFIX_WORKSPACE), department[:DEPARTMENT_MAX] + team[:TEAM_MAX]
    rest = base[len(prefix) :] if base.startswith(prefix) else ""
    abbv, env_part = rest[:REGION_ABBV_LEN], rest[REGION_ABBV_LEN:]
    cut = len(base) == BASE_MAX and environment[:3].startswith(env_part)
    if not re.fullmatch(r"[a-z][a-z0-9]", abbv) or not (env_part == environment[:3] or cut):
        return _not_following(
            f"workspace name '{workspace_name}' is not {prefix}<region abbreviation>{environment[:3]}ws"
        )
    return ConventionMatch(True, department, team, region, abbv, environment[:3])
