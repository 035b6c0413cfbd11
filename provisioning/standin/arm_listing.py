"""Resources_ListByResourceGroup and Resources_List: what a resource group (or subscription) holds.

Not among the operations collected in azure-specs: shaped after the swagger of
``resources/…/stable/2020-06-01/resources.json`` (``ResourceListResult`` of ``GenericResourceExpanded``,
its ``$filter`` / ``$expand`` / ``$top`` parameters), answered for any api-version (azure-mgmt-resource
26.0.0 sends 2025-04-01). Only top-level resources are listed: a workspace's computes are child
resources and deployments are not resources of the group, as in ARM.

- ``$filter``: ``resourceType``, ``name``, ``location``, ``resourceGroup`` with ``eq`` / ``ne``;
  ``substringof('text', name|resourceGroup)``; ``tagName eq 'n' [and tagValue eq 'v']`` alone (the
  swagger's combinations). Clauses join with ``and`` / ``or`` (``and`` binds tighter). Anything else is
  ``400 InvalidFilterInQueryString``. Filtering on a tag omits the rows' tags and their
  createdTime / changedTime, as ARM documents it ("the tags for each resource are not returned").
- ``$expand``: ``createdTime``, ``changedTime``, ``provisioningState`` (comma-separated).
- ``$top``: the page size (ARM's reading of it: a ``nextLink`` with ``$skiptoken`` follows while more
  remain, and the SDK pages through everything). Without ``$top`` one page holds everything.
- A resource without tags has no ``tags`` member.
Error codes for a bad ``$top`` or ``$skiptoken`` (``InvalidQueryParameterValue``) are not from the specs.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from provisioning.standin.arm import SUB, Context, require_api_version, require_group
from provisioning.standin.catalog import normalize_location
from provisioning.standin.wire import Request, Response, Route, arm_error, route

HIDDEN_TYPES = frozenset({"microsoft.resources/deployments", "microsoft.resources/resourcegroups"})
EXPANDABLE = {
    "createdtime": "createdTime",
    "changedtime": "changedTime",
    "provisioningstate": "provisioningState",
}
COMPARED = {"resourcetype", "name", "location", "resourcegroup", "tagname", "tagvalue"}
CLAUSE = re.compile(
    r"\s*(?:(?P<prop>\w+)\s+(?P<op>eq|ne)\s+'(?P<value>(?:[^']|'')*)'"
    r"|substringof\(\s*'(?P<text>(?:[^']|'')*)'\s*,\s*(?P<sprop>\w+)\s*\))\s*",
    re.IGNORECASE,
)
JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)
Row = dict[str, Any]
Test = Callable[[Row], bool]


class ResourceFilter:
    """A parsed ``$filter``: OR of AND groups of clause tests; ``by_tag`` when it filters on tags."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.by_tag = False
        self.groups: list[list[Test]] = []
        if text.strip():
            self._parse(text)

    def _invalid(self, why: str) -> Exception:
        return arm_error(
            400,
            "InvalidFilterInQueryString",
            f"Invalid $filter '{self.text}' specified in the query string: {why}",
        )

    def _parse(self, text: str) -> None:
        pos, current, props = 0, [], []
        while True:
            found = CLAUSE.match(text, pos)
            if found is None:
                raise self._invalid(f"cannot read it from position {pos}.")
            test, prop = self._clause(found)
            current.append(test)
            props.append(prop)
            pos = found.end()
            if pos >= len(text):
                break
            join = JOIN.match(text, pos)
            if join is None:
                raise self._invalid(f"expected 'and' or 'or' at position {pos}.")
            if join.group(1).lower() == "or":
                self.groups.append(current)
                current = []
            pos = join.end()
        self.groups.append(current)
        tags = [p for p in props if p in ("tagname", "tagvalue")]
        if tags:
            self.by_tag = True
            if props not in (["tagname"], ["tagname", "tagvalue"]) or len(self.groups) != 1:
                raise self._invalid(
                    "a tag filter is 'tagName eq ...' alone, or 'tagName eq ... and tagValue eq ...'."
                )

    def _clause(self, found: re.Match[str]) -> tuple[Test, str]:
        if found.group("sprop"):
            prop = found.group("sprop").lower()
            if prop not in ("name", "resourcegroup"):
                raise self._invalid(f"substringof applies to name and resourceGroup, not '{prop}'.")
            text = found.group("text").replace("''", "'").lower()
            return (lambda row: text in _value(row, prop).lower()), prop
        prop, op = found.group("prop").lower(), found.group("op").lower()
        value = found.group("value").replace("''", "'")
        if prop not in COMPARED:
            raise self._invalid(f"the property '{found.group('prop')}' cannot be filtered on.")
        if prop in ("tagname", "tagvalue") and op != "eq":
            raise self._invalid("tags are compared with 'eq' only.")
        if prop == "tagname":
            self.tag_name = value.lower()
            return (lambda row: any(k.lower() == value.lower() for k in row.get("tags") or {})), prop
        if prop == "tagvalue":
            return (
                lambda row: any(
                    k.lower() == self.tag_name and v == value for k, v in (row.get("tags") or {}).items()
                )
            ), prop
        if prop == "location":
            value = normalize_location(value)
        wanted = value.lower()
        if op == "eq":
            return (lambda row: _value(row, prop).lower() == wanted), prop
        return (lambda row: _value(row, prop).lower() != wanted), prop

    def __call__(self, row: Row) -> bool:
        return not self.groups or any(all(test(row) for test in group) for group in self.groups)


def _value(row: Row, prop: str) -> str:
    if prop == "resourcetype":
        return str(row["type"])
    if prop == "resourcegroup":
        return str(row["id"].split("/")[4])
    return str(row.get(prop) or "")


def _top_level(resource: Row) -> bool:
    """A resource of a group itself (not a child resource like a compute, not a deployment)."""
    if resource["type"].lower() in HIDDEN_TYPES:
        return False
    parts = resource["id"].strip("/").split("/")
    return len(parts) == 8 and parts[0].lower() == "subscriptions" and parts[4].lower() == "providers"


class ResourceListApi:
    """Resources of a resource group, or of a subscription, as generic resources."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        return [
            route(
                "GET",
                SUB + r"/resourcegroups/(?P<rg>[^/]+)/resources",
                "resources.list_by_resource_group",
                self.list_by_resource_group,
            ),
            route("GET", SUB + r"/resources", "resources.list", self.list_by_subscription),
        ]

    def list_by_resource_group(self, req: Request) -> Response:
        require_api_version(req)
        group = require_group(self.ctx, req.params["sub"], req.params["rg"])
        return self._answer(req, f"{group['id']}/".lower())

    def list_by_subscription(self, req: Request) -> Response:
        require_api_version(req)
        return self._answer(req, f"/subscriptions/{req.params['sub']}/".lower())

    def _answer(self, req: Request, prefix: str) -> Response:
        wanted = ResourceFilter(req.query.get("$filter", ""))
        expand = self._expand(req.query.get("$expand", ""))
        rows = [
            r for k, r in self.state.resources.items() if k.startswith(prefix) and _top_level(r) and wanted(r)
        ]
        rows.sort(key=lambda r: str(r["id"]).lower())
        start = _skip(req.query.get("$skiptoken"))
        size = _top(req.query.get("$top"))
        page = rows[start : start + size] if size else rows[start:]
        body: dict[str, Any] = {
            "value": [self._generic(r, expand, with_tags=not wanted.by_tag) for r in page]
        }
        if size and start + size < len(rows):
            query = {k: v for k, v in req.query.items() if k != "$skiptoken"}
            query["$skiptoken"] = _token(start + size)
            body["nextLink"] = f"{req.base_url}{req.path}?{urlencode(query)}"
        return Response(200, body)

    @staticmethod
    def _expand(text: str) -> set[str]:
        return {p.strip().lower() for p in text.split(",") if p.strip().lower() in EXPANDABLE}

    def _generic(self, resource: Row, expand: set[str], *, with_tags: bool) -> Row:
        """GenericResourceExpanded: the resource without its properties."""
        row: Row = {k: resource[k] for k in ("id", "name", "type", "location") if k in resource}
        for key in ("kind", "managedBy", "sku", "plan", "identity"):
            if resource.get(key):
                row[key] = resource[key]
        if with_tags and resource.get("tags"):
            row["tags"] = dict(resource["tags"])
        created, changed = self.state.times.get(resource["id"].lower(), ("", ""))
        if with_tags and "createdtime" in expand and created:
            row["createdTime"] = created
        if with_tags and "changedtime" in expand and changed:
            row["changedTime"] = changed
        if "provisioningstate" in expand:
            row["provisioningState"] = (resource.get("properties") or {}).get(
                "provisioningState", "Succeeded"
            )
        return row


def _bad_parameter(name: str, value: str) -> Exception:
    return arm_error(
        400,
        "InvalidQueryParameterValue",
        f"The value '{value}' of the query parameter '{name}' is not valid.",
    )


def _top(text: str | None) -> int:
    if text is None or text == "":
        return 0
    if not text.isdigit() or int(text) < 1:
        raise _bad_parameter("$top", text)
    return int(text)


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def _skip(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
    except (ValueError, KeyError, TypeError) as exc:
        raise _bad_parameter("$skiptoken", token) from exc
    return max(0, offset)
