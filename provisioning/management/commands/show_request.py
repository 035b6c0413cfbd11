"""``manage.py show_request ID [--json]``: a request, its status and its plan (every name it creates).

``--json`` prints one JSON object for scripts: the request's fields, its ``spec``, the ``plan``
(``services.request_plan``: names, resources, clusters, role assignments, revocations) and its runs.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.core.serializers.json import DjangoJSONEncoder

from provisioning.management.commands._cli import change_request
from provisioning.models import ChangeRequest
from provisioning.workflow import services


def _principal(user: Any) -> str | None:
    return user.principal_name if user is not None else None


def _runs(cr: ChangeRequest) -> list[dict[str, Any]]:
    return [
        {
            "number": run.number,
            "status": run.status,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "steps": dict(Counter(step.status for step in run.steps.all())),
        }
        for run in cr.runs.prefetch_related("steps").order_by("number")
    ]


def request_document(cr: ChangeRequest) -> dict[str, Any]:
    """Everything about a request, as plain JSON-able data."""
    return {
        "id": cr.pk,
        "kind": cr.kind,
        "status": cr.status,
        "workspace_name": cr.workspace_name,
        "requester": _principal(cr.requester),
        "approver": _principal(cr.approver),
        "reason": cr.reason,
        "created_at": cr.created_at,
        "updated_at": cr.updated_at,
        "submitted_at": cr.submitted_at,
        "decided_at": cr.decided_at,
        "enqueued_at": cr.enqueued_at,
        "spec": cr.spec,
        "plan": services.request_plan(cr),
        "runs": _runs(cr),
    }


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M} UTC" if value else "-"


def summary_lines(doc: dict[str, Any]) -> list[str]:
    """A request document as readable text."""
    plan = doc["plan"]
    lines = [
        f"Request #{doc['id']}: {doc['kind']} {doc['workspace_name']}",
        f"  status     {doc['status']}",
        f"  requester  {doc['requester']} (created {_when(doc['created_at'])}, "
        f"submitted {_when(doc['submitted_at'])})",
        f"  approver   {doc['approver'] or '-'} (decided {_when(doc['decided_at'])})",
    ]
    if doc["reason"]:
        lines.append(f"  reason     {doc['reason']}")
    lines.append("Names:")
    lines += [f"  {kind:<15} {name}" for kind, name in plan["names"].items() if name]
    lines.append(f"Clusters ({len(plan['clusters'])}):")
    lines += [
        f"  {c['name']:<17} {c['vm_size']:<16} {c['priority']:<12} {c['min_nodes']}-{c['max_nodes']} nodes, "
        f"idle {c['idle_seconds']} s"
        for c in plan["clusters"]
    ]
    for title, key in (("Role assignments", "role_assignments"), ("Revocations", "revocations")):
        lines.append(f"{title} ({len(plan[key])}):")
        lines += [
            f"  {a['principal']} ({a['persona']}): {a['role']} on {a['scope_type']} {a['scope_name']}"
            for a in plan[key]
        ]
    for run in doc["runs"]:
        steps = ", ".join(f"{count} {status}" for status, count in run["steps"].items()) or "no steps"
        lines.append(f"Run {run['number']}: {run['status']} ({steps})")
    return lines


class Command(BaseCommand):
    help = "Show a request, its status and its plan: every resource name, cluster and role assignment."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("request_id", type=int)
        parser.add_argument("--json", action="store_true", help="print one JSON object (for scripts)")

    def handle(self, *args: Any, **options: Any) -> None:
        doc = request_document(change_request(options["request_id"]))
        if options["json"]:
            self.stdout.write(json.dumps(doc, cls=DjangoJSONEncoder, indent=2))
        else:
            self.stdout.write("\n".join(summary_lines(doc)))
