"""Microsoft Graph v1.0: the user, group and service principal lookups the portal makes.

Lists honour ``$filter``, ``$search``, ``$select``, ``$top`` and ``$count`` (see ``graph_query``). As in
Graph, a user shows its default properties unless ``$select`` names others: ``accountEnabled``,
``userType``, ``creationType``, ``externalUserState`` and ``otherMails`` are returned only when selected
(they can be filtered on all the same). Groups show ``securityEnabled``, ``mailEnabled`` and
``groupTypes`` by default. ``$select`` of a property the stand-in does not model is ignored.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Any
from urllib.parse import quote, urlencode

from provisioning.standin.arm import Context
from provisioning.standin.directory import mail_nickname
from provisioning.standin.graph_query import (
    CONSISTENCY_MESSAGE,
    page_size,
    parse_filter,
    parse_search,
    skip_token,
    skipped,
)
from provisioning.standin.state import Principal
from provisioning.standin.wire import GRAPH, Request, Response, Route, graph_error, route

COLLECTIONS = {"users": "user", "groups": "group", "servicePrincipals": "servicePrincipal"}
RESOURCE_NAMES = {"user": "User", "group": "Group", "servicePrincipal": "ServicePrincipal"}
# Graph v1.0 returns only these properties of a user unless $select asks for others.
USER_DEFAULTS = (
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)


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
        """Every property the stand-in models (``_select`` trims it to what Graph would return)."""
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
                "accountEnabled": principal.enabled,
                "userType": "Guest" if principal.guest else "Member",
                "creationType": "Invitation" if principal.guest else None,
                "externalUserState": "Accepted" if principal.guest else None,
                "otherMails": [principal.mail] if principal.guest and principal.mail else [],
                "mailNickname": principal.upn.split("@")[0],
            }
        if principal.kind == "group":
            unified = not principal.security
            return {
                "id": principal.object_id,
                "displayName": principal.display_name,
                "description": None,
                "mail": principal.mail or None,
                "mailEnabled": unified or bool(principal.mail),
                "securityEnabled": principal.security,
                "groupTypes": ["Unified"] if unified else [],
                "mailNickname": mail_nickname(principal.display_name),
                "visibility": "Private" if unified else None,
            }
        return {
            "id": principal.object_id,
            "displayName": principal.display_name,
            "appId": principal.app_id,
            "servicePrincipalType": "Application",
            "accountEnabled": True,
        }

    @staticmethod
    def _fields(req: Request) -> list[str]:
        return [f.strip() for f in req.query.get("$select", "").split(",") if f.strip()]

    def _select(self, req: Request, obj: dict[str, Any], kind: str) -> dict[str, Any]:
        fields = {f.lower() for f in self._fields(req)}
        if not fields:
            if kind != "user":
                return obj
            return {k: v for k, v in obj.items() if k in USER_DEFAULTS}
        return {k: v for k, v in obj.items() if k.lower() in fields or k == "id"}

    def _context(self, req: Request, collection: str, suffix: str = "") -> str:
        fields = self._fields(req)
        selected = f"({','.join(fields)})" if fields else ""
        return f"{req.base_url}/v1.0/$metadata#{collection}{selected}{suffix}"

    def list(self, req: Request, kind: str) -> Response:
        collection = next(c for c, k in COLLECTIONS.items() if k == kind)
        size = page_size(req.query.get("$top"))
        objects = self._objects(kind)
        if req.query.get("$search") is not None:
            if req.headers.get("consistencylevel", "").lower() != "eventual":
                raise graph_error(400, "Request_UnsupportedQuery", CONSISTENCY_MESSAGE)
            found = parse_search(req.query["$search"], RESOURCE_NAMES[kind])
            objects = [o for o in objects if found(o)]
        if req.query.get("$filter"):
            predicate = parse_filter(req.query["$filter"])
            objects = [o for o in objects if predicate(o)]
        start = skipped(req.query.get("$skiptoken"))
        body: dict[str, Any] = {"@odata.context": self._context(req, collection)}
        counted = req.query.get("$count", "").lower() == "true"
        if counted and req.headers.get("consistencylevel", "").lower() == "eventual":
            body["@odata.count"] = len(objects)
        if start + size < len(objects):
            body["@odata.nextLink"] = self._next_link(req, collection, start + size)
        body["value"] = [self._select(req, o, kind) for o in objects[start : start + size]]
        return Response(200, body)

    @staticmethod
    def _next_link(req: Request, collection: str, offset: int) -> str:
        names = {"$select": "$select", "$filter": "$filter", "$search": "$search", "$count": "$count"}
        query = {names[k]: v for k, v in req.query.items() if k in names}
        query.update({"$top": req.query.get("$top", "100"), "$skiptoken": skip_token(offset)})
        return f"{req.base_url}/v1.0/{collection}?{urlencode(query, safe='$', quote_via=quote)}"

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
            {"@odata.context": self._context(req, collection, "/$entity"), **self._select(req, found, kind)},
        )


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
