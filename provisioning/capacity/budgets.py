"""Admins' capacity actions: team core budgets, and reading Azure's figures again on demand.

A budget is checked against what Azure offers (the region's size catalog and the subscription's
limits, as the last refresh stored them), saved with its audit event, and after the commit a worker
applies it as AzureML workspace-level quota to the team's active workspaces in the region
(``provisioning.jobs.team_quota_apply``). Azure's answer, a refusal included, lands in
``WorkspaceQuota`` and shows on the capacity page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from accounts import personas
from provisioning import queue
from provisioning.arm import family_label
from provisioning.audit import audit_record
from provisioning.capacity import checks as capacity
from provisioning.models import AllowedRegion, AllowedSubscription, CoreUsage, TeamBudget, VmSize, Workspace
from provisioning.problems import Problem

TEAM_QUOTA_JOB = "provisioning.jobs.team_quota_apply"
CAPACITY_JOB = "provisioning.jobs.capacity_check"
# The scheduler's job id (provisioning_scheduler): pressing "refresh" while its refresh waits adds nothing.
CAPACITY_JOB_ID = "provisioning-capacity"
DEPARTMENT = re.compile(r"[a-z][a-z0-9]{0,3}")
TEAM = re.compile(r"[a-z0-9]{1,24}")
PROJECT = re.compile(r"[a-z][a-z0-9]{1,7}")


class BudgetError(Exception):
    """A budget cannot be set; ``problems`` says why, field by field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)


def _require_admin(actor: Any, doing: str) -> None:
    if not personas.is_admin(actor):
        raise PermissionDenied(f"only portal administrators can {doing}")


def _team_subscriptions(department: str, team: str, region: str) -> list[str]:  # a project's too
    """The subscriptions the team's workspaces in the region are in; every active one if it has none."""
    found = set(
        Workspace.objects.filter(department=department, team=team, region=region).values_list(
            "subscription_id", flat=True
        )
    )
    return sorted(found) or AllowedSubscription.active_ids()


def _subscription_limit(subscriptions: list[str], region: str, scope: str, family: str = "") -> int | None:
    """The largest limit Azure reported for the scope among the subscriptions (None: not read yet)."""
    rows = CoreUsage.objects.filter(
        subscription_id__in=subscriptions, region=region, scope=scope, family=family
    )
    return max(rows.values_list("limit", flat=True), default=None)


def _name_problems(department: str, team: str, region: str, project: str = "") -> list[Problem]:
    problems = []
    if project and not PROJECT.fullmatch(project):
        problems.append(
            Problem("team", "A project's short name is 2 to 8 lowercase letters and digits, a letter first.")
        )
    if not DEPARTMENT.fullmatch(department):
        problems.append(
            Problem("team", "Choose a team: its department is 1 to 4 lowercase letters and digits.")
        )
    elif not TEAM.fullmatch(team):
        problems.append(Problem("team", "Choose a team: its name is 1 to 24 lowercase letters and digits."))
    if not AllowedRegion.objects.filter(name=region).exists():
        problems.append(Problem("region", f"'{region}' is not a region the portal allows."))
    return problems


def _limit_problems(
    department: str, team: str, region: str, family: str, dedicated_cores: int, low_priority_cores: int
) -> list[Problem]:
    """Budgets above what the subscription can ever give in the region (when Azure's limits are known)."""
    subscriptions = _team_subscriptions(department, team, region)
    problems = []
    limit = _subscription_limit(subscriptions, region, CoreUsage.Scope.FAMILY, family)
    if limit is not None and dedicated_cores > limit:
        problems.append(
            Problem(
                "dedicated_cores",
                f"{dedicated_cores} dedicated cores of {family_label(family)} is more than the "
                f"subscription's limit in {region} ({limit}): give at most {limit}, or ask Azure support "
                "for more quota first.",
            )
        )
    limit = _subscription_limit(subscriptions, region, CoreUsage.Scope.LOW_PRIORITY_TOTAL)
    if limit is not None and low_priority_cores > limit:
        problems.append(
            Problem(
                "low_priority_cores",
                f"{low_priority_cores} low-priority cores is more than the subscription's regional "
                f"low-priority limit in {region} ({limit}): give at most {limit}.",
            )
        )
    return problems


def team_budget_problems(
    *,
    department: str,
    team: str,
    region: str,
    family: str,
    dedicated_cores: int,
    low_priority_cores: int,
    project: str = "",
) -> list[Problem]:
    """Why a budget cannot be set as given (empty when it can); names as ``team_budget_set`` takes them."""
    problems = _name_problems(department, team, region, project)
    if not family:
        problems.append(Problem("family", "Choose a VM family."))
    elif capacity.catalog_known(region) and not VmSize.objects.filter(region=region, family=family).exists():
        problems.append(
            Problem(
                "family",
                f"Azure offers no {family_label(family)} sizes for AzureML in {region} "
                "(the size catalog read from Azure): choose a family the region offers.",
            )
        )
    for name, value in (("dedicated_cores", dedicated_cores), ("low_priority_cores", low_priority_cores)):
        if value < 0:
            problems.append(Problem(name, "A budget cannot be negative: give 0 or more cores."))
    if problems:
        return problems
    return _limit_problems(department, team, region, family, dedicated_cores, low_priority_cores)


def _figures(budget: TeamBudget) -> dict[str, Any]:
    return {
        "department": budget.department,
        "team": budget.team,
        "project": budget.project,
        "region": budget.region,
        "family": budget.family,
        "dedicated_cores": budget.dedicated_cores,
        "low_priority_cores": budget.low_priority_cores,
    }


def team_budget_set(
    *,
    actor: Any,
    department: str,
    team: str,
    region: str,
    family: str,
    dedicated_cores: int,
    low_priority_cores: int,
    project: str = "",
) -> TeamBudget:
    """Give a team (or one of its projects: its own budget; or a pool, by its name) cores in a region and
    VM family; audited, then applied as workspace quota after commit.

    Saving the same figures again is allowed: it asks Azure again (after a refusal was fixed there).
    """
    _require_admin(actor, "set team budgets")
    department, team, region, family, project = (
        department.strip().lower(),
        team.strip().lower(),
        region.strip(),
        family.strip(),
        project.strip().lower(),
    )
    problems = team_budget_problems(
        department=department,
        team=team,
        region=region,
        family=family,
        dedicated_cores=dedicated_cores,
        low_priority_cores=low_priority_cores,
        project=project,
    )
    if problems:
        raise BudgetError(problems)
    with transaction.atomic():
        key: dict[str, Any] = {
            "department": department,
            "team": team,
            "project": project,
            "region": region,
            "family": family,
        }
        created = TeamBudget.objects.get_or_create(**key)[1]
        budget = TeamBudget.objects.select_for_update().get(**key)
        before = None if created else _figures(budget)
        budget.dedicated_cores, budget.low_priority_cores = dedicated_cores, low_priority_cores
        budget.save()
        event = audit_record(
            actor=actor,
            action="budget.set",
            obj=budget,
            object_type="team_budget",
            before=before,
            after=_figures(budget),
            message=f"{budget.holder} in {region}, {family_label(family)}: {dedicated_cores} dedicated, "
            f"{low_priority_cores} low-priority cores",
        )
        job_id = f"team-quota-{department}-{team}{'.' + project if project else ''}-{region}-{event.pk}"
        transaction.on_commit(
            lambda: team_quota_enqueue(
                department=department, team=team, region=region, job_id=job_id, project=project
            )
        )
    return budget


def team_quota_enqueue(*, department: str, team: str, region: str, job_id: str, project: str = "") -> bool:
    """Queue applying a team's budgets as workspace quota; False (and a log line) when Redis is down.

    The job reads the budgets when it runs, so a later change's job applies the latest figures too.
    """
    holder = f"{department}/{team}" + (f".{project}" if project else "")
    args = (department, team, region, project) if project else (department, team, region)
    return queue.job_enqueue(
        TEAM_QUOTA_JOB,
        *args,
        job_id=job_id,
        description=f"apply {holder}'s budgets in {region} as workspace quota",
        when_down="save the budget again later",
    )


def capacity_refresh_enqueue(*, actor: Any) -> str:
    """Ask a worker to read sizes and usages from Azure now and guard the clusters.

    Returns ``"queued"``, ``"already queued"`` (the periodic one is waiting or running) or
    ``"unavailable"`` (Redis is down).
    """
    _require_admin(actor, "refresh capacity from Azure")
    if queue.job_pending(CAPACITY_JOB_ID):
        return "already queued"
    queued = queue.job_enqueue(
        CAPACITY_JOB,
        job_id=CAPACITY_JOB_ID,
        description="read VM sizes and core usages from Azure, then guard the clusters",
        result_ttl=3600,
        failure_ttl=3600,
        when_down="the periodic check reads them at its next tick",
    )
    return "queued" if queued else "unavailable"
