"""Tags_GetAtScope and Tags_UpdateAtScope: the tags of any resource (or resource group) by its id.

Not among the operations collected in azure-specs. Shaped after Microsoft's examples in
Azure/azure-rest-api-specs: ``specification/resources/resource-manager/Microsoft.Resources/stable/
2024-03-01/examples/PatchTagsResource.json`` (commit 114077a2; the PATCH: body ``{"operation":
"Replace" | "Merge" | "Delete", "properties": {"tags": {...}}}``, answer ``200`` with ``{"id": scope,
"properties": {"tags": ...}}``, or ``202`` + ``location``) and ``…/stable/2025-04-01/examples/
GetTagsResource.json`` (commit 8687deea; the GET). azure-mgmt-resource 26.0.0 sends api-version 2025-04-01
(``ResourceManagementClient.tags.begin_update_at_scope``, a long-running operation that accepts 200 or
202); this replay always answers ``200`` (terminal), which the SDK's poller takes as done.

- ``Merge`` adds the given tags and overwrites those of the same name; ``Replace`` sets exactly the given
  tags; ``Delete`` removes the given names (any value, or only when the value matches). At most 50 tags
  may remain (``400 BadRequest``, the limit the operation's description states).
- The scope is a resource group or a resource (a workspace's compute included) the stand-in holds; any
  other answers ``404 ResourceNotFound`` (``ResourceGroupNotFound`` for a missing group), as ARM does.
  Subscription scopes are not implemented. Error messages are not from the specs.
- The answer's ``id`` is the scope as the example writes it, plus the read-only ``name`` and ``type`` of
  the swagger's ``TagsResource``.
"""

from __future__ import annotations

from typing import Any

from provisioning.standin.arm import Context, require_api_version
from provisioning.standin.wire import Request, Response, Route, arm_error, route

TAGS_PATH = r"/+(?P<scope>subscriptions/.+?)/providers/Microsoft\.Resources/tags/default"
OPERATIONS = ("merge", "replace", "delete")
MAX_TAGS = 50


class TagsApi:
    """The tags wrapper resource of any resource group or resource."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.state = ctx.state

    def routes(self) -> list[Route]:
        return [
            route("GET", TAGS_PATH, "tags.get", self.get),
            route("PATCH", TAGS_PATH, "tags.update", self.patch),
        ]

    def _target(self, req: Request) -> dict[str, Any]:
        require_api_version(req)
        scope = "/" + req.params["scope"].strip("/")
        found = self.state.get(scope)
        if found is not None:
            return found
        parts = scope.split("/")
        if len(parts) >= 5 and self.state.get("/".join(parts[:5])) is None:
            raise arm_error(404, "ResourceGroupNotFound", f"Resource group '{parts[4]}' could not be found.")
        raise arm_error(404, "ResourceNotFound", f"The resource '{scope}' was not found.")

    @staticmethod
    def _answer(target: dict[str, Any]) -> Response:
        body = {
            "id": target["id"],
            "name": "default",
            "type": "Microsoft.Resources/tags",
            "properties": {"tags": dict(target.get("tags") or {})},
        }
        return Response(200, body)

    def get(self, req: Request) -> Response:
        return self._answer(self._target(req))

    def patch(self, req: Request) -> Response:
        target = self._target(req)
        body = req.json()
        operation = str(body.get("operation") or "").lower()
        if operation not in OPERATIONS:
            raise arm_error(
                400, "InvalidRequestContent", "The 'operation' must be one of Replace, Merge or Delete."
            )
        given = (body.get("properties") or {}).get("tags")
        if not isinstance(given, dict):
            raise arm_error(400, "InvalidRequestContent", "The request content must have 'properties.tags'.")
        tags = dict(target.get("tags") or {})
        if operation == "merge":
            tags.update({str(k): str(v) for k, v in given.items()})
        elif operation == "replace":
            tags = {str(k): str(v) for k, v in given.items()}
        else:
            tags = {k: v for k, v in tags.items() if not (k in given and given[k] in ("", None, v))}
        if len(tags) > MAX_TAGS:
            raise arm_error(400, "BadRequest", f"A resource can have at most {MAX_TAGS} tags.")
        target["tags"] = tags
        self.state.touch(target["id"])
        return self._answer(target)
