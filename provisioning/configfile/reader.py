"""The tutorial's ``config.yml`` read into a ``RequestSpec`` (``writer.export_config`` writes one back).

The tutorial's scripts read ``config.yml`` with a sed-based ``parse_yaml`` (``config_workspace_*``,
``config_compute_*``, ``config_roles_*``) and split lists on commas and spaces. This module accepts
that layout, real YAML lists too, and says where each problem is: the file, the line and the field.
It then checks the request exactly as the web form is checked (``provisioning.workflow.validation``), and
maps each problem back to the line that caused it.

"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import yaml
from yaml.reader import ReaderError

from provisioning.models import ChangeRequest, Persona
from provisioning.spec import (
    DEFAULT_IDLE_SECONDS,
    DEFAULT_MIN_NODES,
    ClusterSpec,
    MemberSpec,
    RequestSpec,
    WorkspaceSpec,
)
from provisioning.workflow.validation import Problem, spec_problems

SECTIONS: dict[str, tuple[str, ...]] = {
    "workspace": (
        "subscription",
        "custom_name",
        "department",
        "team",
        "region",
        "region_abbv",
        "environment",
        "admin",
        "security_group",
        "create_dls",
        "adls",
        "purpose",
        "project",
        "pool_teams",
    ),
    "compute": ("nodes", "priority", "vm_sku", "cluster_name", "min_nodes", "idle_seconds", "justification"),
    "roles": ("team_leads", "data_scientists"),
}
REQUIRED_WORKSPACE = ("subscription", "department", "team", "region", "region_abbv", "environment", "admin")
# Required once the compute section lists any cluster; min_nodes and idle_seconds have defaults.
REQUIRED_COMPUTE = ("nodes", "priority", "vm_sku", "cluster_name")
# "lowpriority" as the tutorial writes it; "low_priority" and "low-priority" are read the same.
PRIORITIES = {"lowpriority": "low_priority", "dedicated": "dedicated"}
FLAGS = {"y": True, "yes": True, "true": True, "n": False, "no": False, "false": False}

_NULL_TAG = "tag:yaml.org,2002:null"
# The scripts split lists with IFS=', ': commas and blanks both separate values.
_SEPARATORS = re.compile(r"[,\s]+")
_KEY_LINE = re.compile(r"^(\s*)([A-Za-z_][\w-]*)\s*:")
# Spec fields the config spells differently.
_WORKSPACE_KEYS = {"subscription_id": "subscription", "data_lake": "create_dls"}
_CLUSTER_KEYS = {"name": "cluster_name", "vm_size": "vm_sku", "max_nodes": "nodes"}


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config file: its line (1-based), its field (``compute.nodes``) and what is wrong."""

    line: int
    field: str
    message: str

    def describe(self, source: str) -> str:
        where = f"{source} line {self.line}"
        return f"{where}, {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class ConfigError(Exception):
    """A config file that cannot become a request; the message names the line and field of each problem."""

    def __init__(self, message: str, issues: Sequence[ConfigIssue] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues = list(issues)


@dataclass(frozen=True)
class _Item:
    """One value of a list, with the line it was written on."""

    text: str
    line: int


@dataclass
class _Section:
    line: int
    keys: dict[str, tuple[int, yaml.Node]] = field(default_factory=dict)


class _Reader:
    """Walks a composed YAML document, collecting every issue instead of stopping at the first."""

    def __init__(self, root: yaml.Node | None) -> None:
        self.issues: list[ConfigIssue] = []
        self.sections: dict[str, _Section] = {}
        self._read_root(root)

    def add(self, line: int, field: str, message: str) -> None:
        self.issues.append(ConfigIssue(line, field, message))

    def has(self, section: str, key: str) -> bool:
        return section in self.sections and key in self.sections[section].keys

    def line_of(self, section: str, key: str = "") -> int:
        """The key's line; the section's when the key is absent; line 1 when the section is."""
        if section not in self.sections:
            return 1
        found = self.sections[section].keys.get(key)
        return found[0] if found else self.sections[section].line

    def text(self, section: str, key: str) -> str:
        """A single value, trimmed; blank when absent or empty."""
        if not self.has(section, key):
            return ""
        line, node = self.sections[section].keys[key]
        if isinstance(node, yaml.ScalarNode):
            return "" if node.tag == _NULL_TAG else str(node.value).strip()
        self.add(line, f"{section}.{key}", "expected a single value, not a list or a section")
        return ""

    def items(self, section: str, key: str) -> list[_Item]:
        """A comma- or blank-separated value, or a YAML list, as items with their lines."""
        if not self.has(section, key):
            return []
        line, node = self.sections[section].keys[key]
        if isinstance(node, yaml.ScalarNode):
            return _split(node, line)
        if isinstance(node, yaml.SequenceNode):
            return [item for child in node.value for item in self._list_item(child, f"{section}.{key}")]
        self.add(line, f"{section}.{key}", "expected a value or a list of values, not a section")
        return []

    def texts(self, section: str, key: str) -> list[_Item]:
        """Free text: one string, or a YAML list of strings (commas stay in the text)."""
        if not self.has(section, key):
            return []
        line, node = self.sections[section].keys[key]
        if isinstance(node, yaml.ScalarNode):
            return [_Item(str(node.value).strip(), line)]
        if isinstance(node, yaml.SequenceNode) and all(isinstance(c, yaml.ScalarNode) for c in node.value):
            return [_Item(str(c.value).strip(), c.start_mark.line + 1) for c in node.value]
        self.add(line, f"{section}.{key}", "expected a text or a list of texts, one per cluster")
        return []

    def _list_item(self, node: yaml.Node, name: str) -> list[_Item]:
        if isinstance(node, yaml.ScalarNode):
            return _split(node, node.start_mark.line + 1)
        self.add(node.start_mark.line + 1, name, "expected a list of plain values")
        return []

    def _read_root(self, root: yaml.Node | None) -> None:
        if root is None or (isinstance(root, yaml.ScalarNode) and root.tag == _NULL_TAG):
            self.add(
                1, "workspace", "the file is empty: it needs a workspace section, then compute and roles"
            )
            return
        if not isinstance(root, yaml.MappingNode):
            self.add(root.start_mark.line + 1, "", "expected the sections workspace, compute and roles")
            return
        for key, line, value in self._pairs(root, known=tuple(SECTIONS), prefix=""):
            if isinstance(value, yaml.MappingNode):
                self.sections[key] = _Section(line)
                for name, key_line, node in self._pairs(value, known=SECTIONS[key], prefix=f"{key}."):
                    self.sections[key].keys[name] = (key_line, node)
            elif isinstance(value, yaml.ScalarNode) and value.tag == _NULL_TAG:
                self.sections[key] = _Section(line)  # an empty section: no clusters, no extra roles
            else:
                self.add(line, key, f"{key} must be a section of indented 'key: value' lines")

    def _pairs(
        self, node: yaml.MappingNode, *, known: tuple[str, ...], prefix: str
    ) -> Iterator[tuple[str, int, yaml.Node]]:
        """The mapping's known keys; unknown, repeated or non-name keys become issues."""
        seen: dict[str, int] = {}
        for key_node, value in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.add(line, prefix.rstrip("."), "keys must be plain names")
                continue
            key = str(key_node.value)
            if key not in known:
                self.add(line, prefix + key, _unknown_key(key, known, prefix))
            elif key in seen:
                self.add(line, prefix + key, f"appears twice (first on line {seen[key]}); keep one")
            else:
                seen[key] = line
                yield key, line, value


def _unknown_key(key: str, known: tuple[str, ...], prefix: str) -> str:
    where = f"in {prefix.rstrip('.')}" if prefix else "at the top level"
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key '{key}' {where}; {hint}known keys: {', '.join(known)}"


def _split(node: yaml.ScalarNode, line: int) -> list[_Item]:
    if node.tag == _NULL_TAG:
        return []
    # The scripts also accepted a list wrapped in brackets or parentheses: "(1, 2, 1)".
    text = str(node.value).strip().removeprefix("(").removeprefix("[").removesuffix(")").removesuffix("]")
    return [_Item(part, line) for part in _SEPARATORS.split(text) if part]


def _workspace(r: _Reader) -> tuple[WorkspaceSpec | None, str]:
    """The workspace spec (None when the section is missing) and the admin's UPN."""
    if "workspace" not in r.sections:
        if not any(issue.field in ("workspace", "") for issue in r.issues):
            r.add(1, "workspace", "the workspace section is missing")
        return None, ""
    values = {key: r.text("workspace", key) for key in SECTIONS["workspace"] if key != "pool_teams"}
    for key in REQUIRED_WORKSPACE:
        if not values[key]:
            state = "blank" if r.has("workspace", key) else "missing"
            r.add(r.line_of("workspace", key), f"workspace.{key}", f"{key} is required but {state}")
    spec = WorkspaceSpec(
        subscription_id=values["subscription"],
        region=values["region"].lower(),
        department=values["department"].lower(),
        team=values["team"].lower(),
        region_abbv=values["region_abbv"].lower(),
        environment=values["environment"].lower(),
        custom_name=values["custom_name"].lower(),
        security_group=values["security_group"],
        data_lake=_data_lake(r, values),
        purpose=values["purpose"].lower() or "team",
        project=values["project"].lower(),
        pool_teams=tuple(item.text.lower() for item in r.items("workspace", "pool_teams")),
    )
    return spec, values["admin"].lower()


def _data_lake(r: _Reader, values: dict[str, str]) -> bool:
    """``create_dls`` (documented) or ``adls`` (what the scripts read): either turns the data lake on."""
    flags: dict[str, bool] = {}
    for key in ("create_dls", "adls"):
        if not values[key]:
            continue
        if values[key].lower() not in FLAGS:
            r.add(
                r.line_of("workspace", key),
                f"workspace.{key}",
                f"'{values[key]}' is not y or n (yes/no and true/false also work)",
            )
            continue
        flags[key] = FLAGS[values[key].lower()]
    if len(set(flags.values())) > 1:
        r.add(
            r.line_of("workspace", "adls"),
            "workspace.adls",
            "create_dls and adls disagree; they are the same setting (the tutorial documents create_dls, "
            "its scripts read adls): keep one",
        )
    return any(flags.values())


def _whole(r: _Reader, item: _Item, name: str) -> int | None:
    if re.fullmatch(r"[0-9]+", item.text):
        return int(item.text)
    r.add(item.line, name, f"'{item.text}' is not a whole number")
    return None


def _priority(r: _Reader, item: _Item) -> str | None:
    priority = PRIORITIES.get(item.text.lower().replace("_", "").replace("-", ""))
    if priority is None:
        r.add(item.line, "compute.priority", f"'{item.text}' is not a priority: use lowpriority or dedicated")
    return priority


def _lengths_match(r: _Reader, lists: dict[str, list[_Item]]) -> bool:
    """Every compute list has one value per cluster (min_nodes and idle_seconds may give one for all)."""
    count = len(lists["cluster_name"])
    ok = True
    for key, items in lists.items():
        if len(items) == count or (key not in REQUIRED_COMPUTE and len(items) <= 1):
            continue
        r.add(
            r.line_of("compute", key),
            f"compute.{key}",
            f"{len(items)} value(s) for {count} cluster(s) in cluster_name: give one per cluster, in order",
        )
        ok = False
    return ok


def _numbers(r: _Reader, items: list[_Item], key: str, *, count: int, default: int) -> list[int | None]:
    """Whole numbers, one per cluster; a single value (or none: the default) applies to every cluster."""
    numbers = [_whole(r, item, f"compute.{key}") for item in items]
    if len(numbers) == count:
        return numbers
    return [numbers[0] if numbers else default] * count


def _clusters(r: _Reader) -> tuple[ClusterSpec, ...]:
    lists = {key: r.items("compute", key) for key in SECTIONS["compute"] if key != "justification"}
    lists["justification"] = r.texts("compute", "justification")
    if not any(lists.values()):
        return ()
    missing = [key for key in REQUIRED_COMPUTE if not lists[key]]
    for key in missing:
        r.add(r.line_of("compute", key), f"compute.{key}", f"{key} is required for each cluster but missing")
    if missing or not _lengths_match(r, lists):
        return ()
    count = len(lists["cluster_name"])
    max_nodes = _numbers(r, lists["nodes"], "nodes", count=count, default=1)
    min_nodes = _numbers(r, lists["min_nodes"], "min_nodes", count=count, default=DEFAULT_MIN_NODES)
    idle = _numbers(r, lists["idle_seconds"], "idle_seconds", count=count, default=DEFAULT_IDLE_SECONDS)
    priorities = [_priority(r, item) for item in lists["priority"]]
    texts = [item.text for item in lists["justification"]]
    reasons = texts if len(texts) == count else [texts[0] if texts else ""] * count
    clusters = []
    for i, (name, vm) in enumerate(zip(lists["cluster_name"], lists["vm_sku"], strict=True)):
        prio, high, low, secs = priorities[i], max_nodes[i], min_nodes[i], idle[i]
        if prio is None or high is None or low is None or secs is None:
            continue
        clusters.append(
            ClusterSpec(
                name=name.text,
                vm_size=vm.text.upper(),
                priority=prio,
                max_nodes=high,
                min_nodes=low,
                idle_seconds=secs,
                justification=reasons[i],
            )
        )
    return tuple(clusters) if len(clusters) == count else ()


def _members(r: _Reader, admin: str) -> tuple[tuple[MemberSpec, ...], list[tuple[int, str]]]:
    """Team leads (the admin first, unless listed), then data scientists; each person once.

    Returns the members and, for each, the (line, field) it came from.
    """
    leads = r.items("roles", "team_leads")
    scientists = r.items("roles", "data_scientists")
    candidates: list[tuple[str, str, int, str]] = []
    if admin and admin not in {item.text.lower() for item in leads}:
        candidates.append((admin, Persona.TEAM_LEAD, r.line_of("workspace", "admin"), "workspace.admin"))
    candidates += [(i.text.lower(), Persona.TEAM_LEAD, i.line, "roles.team_leads") for i in leads]
    candidates += [
        (i.text.lower(), Persona.DATA_SCIENTIST, i.line, "roles.data_scientists") for i in scientists
    ]
    members: list[MemberSpec] = []
    origins: list[tuple[int, str]] = []
    seen: set[str] = set()
    # Team leads come first, so a person listed in both lists keeps the higher persona.
    for principal, persona, line, name in candidates:
        if principal not in seen:
            seen.add(principal)
            members.append(MemberSpec(principal=principal, persona=str(persona)))
            origins.append((line, name))
    return tuple(members), origins


def _locate(r: _Reader, problem: Problem, spec: RequestSpec, origins: list[tuple[int, str]]) -> ConfigIssue:
    """A validation problem (``clusters.1.name``) as the config line and field that caused it."""
    parts = problem.field.split(".")
    if parts[0] == "workspace" and len(parts) in (2, 3):  # workspace.pool_teams.1: the list's line
        key = _WORKSPACE_KEYS.get(parts[1], parts[1])
        return ConfigIssue(r.line_of("workspace", key), f"workspace.{key}", problem.message)
    if parts[0] == "clusters" and len(parts) == 3:
        index, key = int(parts[1]), _CLUSTER_KEYS.get(parts[2], parts[2])
        message = f"cluster {index + 1} '{spec.clusters[index].name}': {problem.message}"
        return ConfigIssue(r.line_of("compute", key), f"compute.{key}", message)
    if parts[0] == "members" and len(parts) == 3:
        line, name = origins[int(parts[1])]
        return ConfigIssue(line, name, problem.message)
    section = {"clusters": "compute", "members": "roles"}.get(parts[0], "workspace")
    return ConfigIssue(r.line_of(section), section, problem.message)


def _field_at(text: str, line: int) -> str:
    """The ``section.key`` written on a line, found by indentation (for YAML syntax errors)."""
    lines = text.splitlines()
    match = _KEY_LINE.match(lines[line - 1]) if 1 <= line <= len(lines) else None
    if match is None:
        return ""
    indent, key = len(match.group(1)), match.group(2)
    for above in reversed(lines[: line - 1] if indent else []):
        parent = _KEY_LINE.match(above)
        if parent and len(parent.group(1)) < indent:
            return f"{parent.group(2)}.{key}"
    return key


def _yaml_problem(exc: yaml.MarkedYAMLError, line: int) -> str:
    """PyYAML's complaint, with where the construct it was reading began when that is another line."""
    problem = exc.problem or exc.context or "syntax error"
    start = exc.context_mark.line + 1 if exc.context_mark is not None else line
    if exc.context and problem.startswith("but "):  # PyYAML splits "expected X, but found Y" in two
        problem = f"{exc.context}, {problem}"
    elif exc.context and start != line:
        problem += f" ({exc.context} that starts on line {start})"
    if "<block" in problem:
        problem += "; check the indentation of this line and the one before"
    return problem


def _compose(text: str, source: str) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        issue = ConfigIssue(line, _field_at(text, line), f"not valid YAML: {_yaml_problem(exc, line)}")
    except ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        character = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        issue = ConfigIssue(
            line, _field_at(text, line), f"not valid YAML: character {character} is not allowed"
        )
    raise ConfigError(issue.describe(source), [issue])


def _raise_if_any(issues: list[ConfigIssue], source: str) -> None:
    if issues:
        issues = sorted(issues, key=lambda issue: issue.line)
        raise ConfigError("\n".join(issue.describe(source) for issue in issues), issues)


def parse_config(text: str, *, source: str = "config.yml", validate: bool = True) -> RequestSpec:
    """A tutorial ``config.yml`` as a new-workspace ``RequestSpec``, checked like the web form's.

    Raises ``ConfigError`` naming the line and field of every problem. ``validate=False`` skips the
    policy, naming and uniqueness checks (used to re-read a workspace the portal already holds).
    """
    reader = _Reader(_compose(text, source))
    workspace, admin = _workspace(reader)
    clusters = _clusters(reader)
    members, origins = _members(reader, admin)
    _raise_if_any(reader.issues, source)
    spec = RequestSpec(workspace=workspace, clusters=clusters, members=members)
    if validate:
        problems = spec_problems(spec, kind=ChangeRequest.Kind.NEW_WORKSPACE)
        _raise_if_any([_locate(reader, p, spec, origins) for p in problems], source)
    return spec
