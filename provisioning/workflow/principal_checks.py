"""Every member and security group of a submitted request, checked in Entra ID before approval.

Submitting queues a worker job (the web never calls Graph) that looks each principal up and stores
the answer on the request: the object id, or why the principal cannot be given access (unknown,
ambiguous, disabled, a guest where policy forbids guests, a group that is not a security group). A
refused principal blocks the approval; the request page names it next to the member, with what to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from provisioning import queue
from provisioning.models import ChangeRequest, EnvironmentPolicy
from provisioning.problems import Problem
from provisioning.spec import RequestSpec

logger = logging.getLogger(__name__)

JOB_FUNCTION = "provisioning.jobs.check_principals"


@dataclass(frozen=True)
class Target:
    """A principal to look up, and the request field that names it."""

    principal: str
    principal_type: str  # "user" | "group"
    field: str


def principals_to_check(cr: ChangeRequest) -> list[Target]:
    """Every member the request adds, and the new workspace's security group."""
    spec = RequestSpec.from_json(cr.spec)
    targets = [
        Target(m.principal, m.principal_type, f"members.{i}.principal") for i, m in enumerate(spec.members)
    ]
    if spec.workspace is not None and spec.workspace.security_group:
        targets.append(Target(spec.workspace.security_group, "group", "workspace.security_group"))
    return targets


def guests_allowed(cr: ChangeRequest) -> bool:
    """Whether the environment the request's workspace lives in accepts guest accounts."""
    spec = RequestSpec.from_json(cr.spec)
    environment = spec.workspace.environment if spec.workspace is not None else None
    if environment is None and cr.workspace is not None:
        environment = cr.workspace.environment
    if environment is None:
        return False
    return EnvironmentPolicy.for_environment(environment).guests_allowed


def _answer(
    target: Target, found: dict[str, Any] | None, problem: str = "", hint: str = ""
) -> dict[str, Any]:
    return {
        "principal": target.principal,
        "principal_type": target.principal_type,
        "field": target.field,
        "object_id": str(found["id"]) if found and not problem else "",
        "display_name": str((found or {}).get("displayName") or ""),
        "problem": problem,
        "hint": hint,
    }


def principal_verdict(target: Target, found: list[dict[str, Any]], *, guests: bool) -> dict[str, Any]:
    """Entra ID's objects matching one principal, judged: its object id, or the problem and what to do."""
    who = f"'{target.principal}'"
    if target.principal_type == "group":
        if not found:
            return _answer(
                target,
                None,
                f"no group named {who} in Entra ID",
                "Check the group's exact display name in Entra ID (names are matched exactly).",
            )
        if len(found) > 1:
            return _answer(
                target,
                None,
                f"{len(found)} groups are named {who}",
                "Roles are granted to one group: rename one of them in Entra ID, or name another group.",
            )
        group = found[0]
        if not group.get("securityEnabled"):
            return _answer(
                target,
                group,
                f"{who} is not a security group (a Microsoft 365 or distribution group)",
                "Azure roles can be given only to security groups: name a security group instead.",
            )
        return _answer(target, group)
    if not found:
        return _answer(
            target,
            None,
            f"no user {who} in Entra ID",
            "Check the spelling of the user principal name (name@domain), or pick the person from the "
            "directory search of the form.",
        )
    if len(found) > 1:
        return _answer(
            target,
            None,
            f"{len(found)} users have the address {who}",
            "Name the person by their user principal name, which is unique.",
        )
    user = found[0]
    if user.get("accountEnabled") is False:
        return _answer(
            target,
            user,
            f"the account {who} is disabled in Entra ID",
            "Access cannot be given to a disabled account: remove the member or name an active account.",
        )
    if str(user.get("userType") or "Member").lower() == "guest" and not guests:
        return _answer(
            target,
            user,
            f"{who} is a guest account (from another organisation) and this environment's policy "
            "does not allow guests",
            "Remove the member, or ask an admin to allow guests in the environment's policy.",
        )
    return _answer(target, user)


def principal_check_enqueue(*, request_id: int) -> bool:
    """Queue the check (after the submit commits); the sweeper queues it again if Redis is down."""
    return queue.run_enqueue(
        request_id=request_id,
        job_id=f"check-principals-{request_id}",
        func=JOB_FUNCTION,
        description=f"check the members of request #{request_id} in Entra ID",
    )


def principal_check_record(*, request_id: int, answers: list[dict[str, Any]]) -> bool:
    """Store Entra ID's answers on a request still waiting for approval; False when decided meanwhile."""
    with transaction.atomic():
        stored = ChangeRequest.objects.filter(pk=request_id, status=ChangeRequest.Status.SUBMITTED).update(
            principal_check=answers, principal_checked_at=timezone.now()
        )
    refused = [a["principal"] for a in answers if a["problem"]]
    if stored and refused:
        logger.info("request #%s: principals refused by Entra ID: %s", request_id, ", ".join(refused))
    return bool(stored)


def refused_principal_problems(cr: ChangeRequest) -> list[Problem]:
    """Why the approval must wait: members or groups Entra ID does not accept."""
    return [Problem(a["field"], f"{a['problem']}. {a['hint']}") for a in cr.principals_refused]


def object_ids(cr: ChangeRequest) -> dict[tuple[str, str], str]:
    """The object ids the check found, by (principal type, lower-cased principal)."""
    return {
        (a["principal_type"], a["principal"].lower()): a["object_id"]
        for a in cr.principal_check or []
        if a.get("object_id")
    }
