"""Just enough of ARM's template language to deploy the template azure-ai-ml sends for a workspace.

Expressions (``"[concat(parameters('a'), '-x')]"``) are parsed and evaluated for the functions that
template uses (parameters, variables, resourceId, if, equals, not, and, or, json, concat, empty, ...).
``deployable_resources`` returns each resource whose condition holds, with its expressions evaluated.
An expression the stand-in cannot evaluate raises ``TemplateError`` (ARM's InvalidTemplate).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class TemplateError(Exception):
    """The template cannot be evaluated: answered as ARM's 400 InvalidTemplate."""


@dataclass
class Scope:
    """Where the deployment runs: what subscription() and resourceGroup() return."""

    subscription: str
    resource_group: str
    location: str
    tenant_id: str


_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+)|(?P<ident>[A-Za-z_][\w]*)|(?P<sym>[(),.\[\]]))"
)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None:
            raise TemplateError(
                f"Unable to parse language expression '{text}': unexpected character at {pos}."
            )
        kind = found.lastgroup or ""
        tokens.append((kind, found.group(kind)))
        pos = found.end()
    return tokens


class _Parser:
    """Recursive descent over ARM expression tokens; produces closures evaluated against a template."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    def parse(self) -> Callable[[Evaluator], Any]:
        node = self.expression()
        if self.pos != len(self.tokens):
            raise TemplateError(f"Unable to parse language expression '{self.text}'.")
        return node

    def _next(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise TemplateError(f"Unexpected end of language expression '{self.text}'.")
        self.pos += 1
        return self.tokens[self.pos - 1]

    def _peek(self, value: str) -> bool:
        return self.pos < len(self.tokens) and self.tokens[self.pos][1] == value

    def expression(self) -> Callable[[Evaluator], Any]:
        node = self.primary()
        while self._peek(".") or self._peek("["):
            if self._next()[1] == ".":
                name = self._next()[1]
                node = _member(node, name)
            else:
                index = self.expression()
                if self._next()[1] != "]":
                    raise TemplateError(f"Expected ']' in '{self.text}'.")
                node = _index(node, index)
        return node

    def primary(self) -> Callable[[Evaluator], Any]:
        kind, value = self._next()
        if kind == "str":
            literal = value[1:-1].replace("''", "'")
            return lambda _ev: literal
        if kind == "num":
            return lambda _ev: int(value)
        if kind != "ident" or not self._peek("("):
            raise TemplateError(f"Unexpected token '{value}' in '{self.text}'.")
        self._next()
        args: list[Callable[[Evaluator], Any]] = []
        while not self._peek(")"):
            args.append(self.expression())
            if self._peek(","):
                self._next()
        self._next()
        name = value.lower()
        return lambda ev: ev.call(name, args)


def _member(node: Callable[[Evaluator], Any], name: str) -> Callable[[Evaluator], Any]:
    def get(ev: Evaluator) -> Any:
        value = node(ev)
        if not isinstance(value, dict):
            raise TemplateError(f"The language expression property '{name}' doesn't exist.")
        found = {k.lower(): v for k, v in value.items()}
        if name.lower() not in found:
            raise TemplateError(f"The language expression property '{name}' doesn't exist.")
        return found[name.lower()]

    return get


def _index(node: Callable[[Evaluator], Any], index: Callable[[Evaluator], Any]) -> Callable[[Evaluator], Any]:
    return lambda ev: node(ev)[index(ev)]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


def _unique_string(*parts: Any) -> str:
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return base64.b32encode(digest).decode().lower()[:13]


class Evaluator:
    """Evaluates a template's values against its parameters, variables and scope."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, Any], scope: Scope) -> None:
        self.template = template
        self.scope = scope
        self.supplied = {
            k.lower(): v.get("value") if isinstance(v, dict) else v for k, v in parameters.items()
        }
        self.declared = {k.lower(): v for k, v in (template.get("parameters") or {}).items()}
        self.variables = {k.lower(): v for k, v in (template.get("variables") or {}).items()}
        self._cache: dict[str, Any] = {}

    def value(self, node: Any) -> Any:
        """A template value with every expression in it evaluated."""
        if isinstance(node, dict):
            return {k: self.value(v) for k, v in node.items()}
        if isinstance(node, list):
            return [self.value(v) for v in node]
        if isinstance(node, str) and node.startswith("[") and node.endswith("]"):
            if node.startswith("[["):
                return node[1:]
            return _Parser(node[1:-1]).parse()(self)
        return node

    def parameter(self, name: str) -> Any:
        key = name.lower()
        if key in self.supplied:
            return self.supplied[key]
        if key not in self.declared:
            raise TemplateError(f"The template parameter '{name}' is not found.")
        if "defaultValue" not in self.declared[key]:
            raise TemplateError(f"The value for the template parameter '{name}' is not provided.")
        return self.value(self.declared[key]["defaultValue"])

    def variable(self, name: str) -> Any:
        key = name.lower()
        if key not in self.variables:
            raise TemplateError(f"The template variable '{name}' is not found.")
        if key not in self._cache:
            self._cache[key] = self.value(self.variables[key])
        return self._cache[key]

    def call(self, name: str, args: list[Callable[[Evaluator], Any]]) -> Any:
        if name == "if":  # lazy: only the chosen branch is evaluated, as in ARM
            return args[1](self) if args[0](self) else args[2](self)
        values = [a(self) for a in args]
        function = _FUNCTIONS.get(name)
        if function is None:
            raise TemplateError(f"The template function '{name}' is not supported by the Azure stand-in.")
        return function(self, *values)

    def resource_id(self, *args: Any) -> str:
        """resourceId([subscriptionId], [resourceGroupName], resourceType, name1, [name2, ...])."""
        at = next(
            (i for i, a in enumerate(args) if isinstance(a, str) and "/" in a and "." in a.split("/")[0]),
            None,
        )
        if at is None:
            raise TemplateError(f"Unable to evaluate template language function 'resourceId': {args}.")
        before, rtype, names = list(args[:at]), str(args[at]), [str(n) for n in args[at + 1 :]]
        sub = before[0] if len(before) == 2 else self.scope.subscription
        group = before[-1] if before else self.scope.resource_group
        namespace, *types = rtype.split("/")
        if len(types) != len(names):
            raise TemplateError(
                f"Unable to evaluate template language function 'resourceId': the type '{rtype}' "
                f"requires {len(types)} resource name argument(s)."
            )
        segments = "/".join(f"{t}/{n}" for t, n in zip(types, names, strict=True))
        return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{namespace}/{segments}"


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "parameters": lambda ev, name: ev.parameter(name),
    "variables": lambda ev, name: ev.variable(name),
    "resourceid": lambda ev, *args: ev.resource_id(*args),
    "subscription": lambda ev: {
        "id": f"/subscriptions/{ev.scope.subscription}",
        "subscriptionId": ev.scope.subscription,
        "tenantId": ev.scope.tenant_id,
    },
    "resourcegroup": lambda ev: {
        "id": f"/subscriptions/{ev.scope.subscription}/resourceGroups/{ev.scope.resource_group}",
        "name": ev.scope.resource_group,
        "location": ev.scope.location,
    },
    "concat": lambda _ev, *a: (
        [x for p in a for x in p] if a and isinstance(a[0], list) else "".join(map(str, a))
    ),
    "equals": lambda _ev, a, b: _same(a, b),
    "not": lambda _ev, a: not a,
    "and": lambda _ev, *a: all(a),
    "or": lambda _ev, *a: any(a),
    "true": lambda _ev: True,
    "false": lambda _ev: False,
    "null": lambda _ev: None,
    "json": lambda _ev, text: json.loads(text),
    "empty": lambda _ev, a: a is None or len(a) == 0,
    "coalesce": lambda _ev, *a: next((x for x in a if x is not None), None),
    "tolower": lambda _ev, a: str(a).lower(),
    "toupper": lambda _ev, a: str(a).upper(),
    "string": lambda _ev, a: a if isinstance(a, str) else json.dumps(a),
    "bool": lambda _ev, a: a if isinstance(a, bool) else str(a).lower() == "true",
    "int": lambda _ev, a: int(a),
    "length": lambda _ev, a: len(a),
    "contains": lambda _ev, a, b: (b.lower() in a.lower()) if isinstance(a, str) else b in a,
    "array": lambda _ev, a: a if isinstance(a, list) else [a],
    "createarray": lambda _ev, *a: list(a),
    "replace": lambda _ev, a, old, new: str(a).replace(old, new),
    "format": lambda _ev, fmt, *a: re.sub(r"\{(\d+)\}", lambda m: str(a[int(m.group(1))]), fmt),
    "uniquestring": lambda _ev, *a: _unique_string(*a),
    "guid": lambda _ev, *a: str(uuid.uuid5(uuid.NAMESPACE_URL, "|".join(map(str, a)))),
}


@dataclass
class DeployableResource:
    """One resource of a template whose condition holds, with its expressions evaluated."""

    type: str
    name: str
    body: dict[str, Any]


def deployable_resources(
    template: dict[str, Any], parameters: dict[str, Any], scope: Scope
) -> list[DeployableResource]:
    """The resources a deployment of this template would create or update (condition true)."""
    evaluator = Evaluator(template, parameters, scope)
    found = []
    for resource in template.get("resources") or []:
        if not evaluator.value(resource.get("condition", True)):
            continue
        body = {
            k: evaluator.value(v)
            for k, v in resource.items()
            if k not in ("condition", "dependsOn", "resources", "copy")
        }
        children = [c for c in resource.get("resources") or [] if evaluator.value(c.get("condition", True))]
        if children:
            raise TemplateError(
                f"Nested resources of '{body.get('type')}' are not supported by the Azure stand-in."
            )
        found.append(DeployableResource(str(body.get("type", "")), str(body.get("name", "")), body))
    return found
