"""Microsoft Graph v1.0: the user, group and service principal lookups the portal makes.

``$filter`` supports ``prop eq 'value'`` clauses joined by ``or``/``and`` (string comparison is
case-insensitive, as Graph's is for these properties) and ``startswith(prop,'value')``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import Any

from provisioning.standin.arm import Context
from provisioning.standin.state import Principal
from provisioning.standin.wire import GRAPH, Request, Response, Route, graph_error, route

CLAUSE = re.compile(
    r"\s*(?:(?P<prop>\w+)\s+eq\s+'(?P<value>(?:[^']|'')*)'"
    r"|startswith\(\s*(?P<sprop>\w+)\s*,\s*'(?P<svalue>(?:[^']|'')*)'\s*\))\s*",
    re.IGNORECASE,
)
JOIN = re.compile(r"(and|or)\b", re.IGNORECASE)
COLLECTIONS = {"users": "user", "groups": "group", "servicePrincipals": "servicePrincipal"}


def parse_filter(text: str) -> Callable[[dict[str, Any]], bool]:
    """A predicate for an OData $filter made of eq / startswith clauses joined by and / or."""
    pos, groups, current = 0, [], []
    while True:
        found = CLAUSE.match(text, pos)
        if found is None:
            raise graph_error(400, "BadRequest", f"Invalid filter clause: '{text}'.")
        current.append(_clause(found))
        pos = found.end()
        if pos >= len(text):
            break
        join = JOIN.match(text, pos)
        if join is None:
            raise graph_error(400, "BadRequest", f"Invalid filter clause: '{text}'.")
        if join.group(1).lower() == "or":
            groups.append(current)
            current = []
        pos = join.end()
    groups.append(current)
    return lambda obj: any(all(test(obj) for test in group) for group in groups)


def _clause(found: re.Match[str]) -> Callable[[dict[str, Any]], bool]:
    if found.group("prop"):
        prop, value = found.group("prop"), found.group("value").replace("''", "'").lower()
        return lambda obj: str(_field(obj, prop) or "").lower() == value
    prop, prefix = found.group("sprop"), found.group("svalue").replace("''", "'").lower()
    return lambda obj: str(_field(obj, prop) or "").lower().startswith(prefix)


def _field(obj: dict[str, Any], prop: str) -> Any:
    return next((v for k, v in obj.items() if k.lower() == prop.lower()), None)


class GraphApi:
    """Users, groups and service principals of the stand-in's directory."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        routes = []
        for collection, kind in COLLECTIONS.items():
            single = "graph.user" if kind == "user" else f"graph.{_snake(kind)}"
            routes += [
                route(
                    "GET",
                    rf"/v1\.0/{collection}",
                    f"graph.{_snake(collection)}",
                    partial(self.list, kind=kind),
                    area=GRAPH,
                ),
                route(
                    "GET",
                    rf"/v1\.0/{collection}/(?P<key>[^/]+)",
                    single,
                    partial(self.get, kind=kind),
                    area=GRAPH,
                ),
            ]
        return routes

    def _objects(self, kind: str) -> list[dict[str, Any]]:
        return [self._render(p) for p in self.state.principals.values() if p.kind == kind]

    def _render(self, principal: Principal) -> dict[str, Any]:
        if principal.kind == "user":
            given, _, surname = principal.display_name.partition(" ")
            return {
                "id": principal.object_id,
                "displayName": principal.display_name,
                "userPrincipalName": principal.upn,
                "mail": principal.mail or None,
                "givenName": given or None,
                "surname": surname or None,
                "jobTitle": None,
                "businessPhones": [],
                "mobilePhone": None,
                "officeLocation": None,
                "preferredLanguage": None,
            }
        if principal.kind == "group":
            return {
                "id": principal.object_id,
                "displayName": principal.display_name,
                "description": None,
                "mail": principal.mail or None,
                "mailEnabled": False,
                "securityEnabled": True,
                "groupTypes": [],
                "mailNickname": re.sub(r"\W", "", principal.display_name).lower(),
            }
        return {
            "id": principal.object_id,
            "displayName": principal.display_name,
            "appId": principal.app_id,
            "servicePrincipalType": "Application",
            "accountEnabled": True,
        }

    def _select(self, req: Request, obj: dict[str, Any]) -> dict[str, Any]:
        fields = [f.strip() for f in req.query.get("$select", "").split(",") if f.strip()]
        if not fields:
            return obj
        return {k: v for k, v in obj.items() if k.lower() in {f.lower() for f in fields} or k == "id"}

    def list(self, req: Request, kind: str) -> Response:
        objects = self._objects(kind)
        if req.query.get("$filter"):
            predicate = parse_filter(req.query["$filter"])
            objects = [o for o in objects if predicate(o)]
        collection = next(c for c, k in COLLECTIONS.items() if k == kind)
        return Response(
            200,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#{collection}",
                "value": [self._select(req, o) for o in objects],
            },
        )

    def get(self, req: Request, kind: str) -> Response:
        key = req.params["key"].lower()
        lookups = ("id", "userPrincipalName") if kind == "user" else ("id", "appId")
        found = next(
            (
                o
                for o in self._objects(kind)
                if any(str(o.get(field) or "").lower() == key for field in lookups)
            ),
            None,
        )
        if found is None:
            raise graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{req.params['key']}' does not exist or "
                "one of its queried reference-property objects are not present.",
            )
        collection = next(c for c, k in COLLECTIONS.items() if k == kind)
        return Response(
            200,
            {
                "@odata.context": f"{req.base_url}/v1.0/$metadata#{collection}/$entity",
                **self._select(req, found),
            },
        )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
