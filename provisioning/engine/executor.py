"""Executes a run: the plan's steps in dependency order, independent steps concurrently (bounded).

Azure calls run in a thread pool; every database write happens on the calling thread, in short
transactions, through ``provisioning.engine.runs``. The lease is renewed while the run works; if another
worker takes the run over, this one stops scheduling and leaves.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from provisioning.azure import operations as ops
from provisioning.azure import quotas
from provisioning.azure.clients import AzureClients
from provisioning.azure.operations import AzureStepError, Outcome, RoleCatalog
from provisioning.capacity import sync as capacity_sync
from provisioning.engine import runs
from provisioning.models import ChangeRequest, Run, Step
from provisioning.steps import StepSpec, principal_key, steps_for_plan

logger = logging.getLogger(__name__)

MAX_PARALLEL = 16
HEARTBEAT_SECONDS = 5.0
# Step-level retries for what azure-core's own retries do not cover: replication delay of new
# principals, throttling without Retry-After, transient errors that outlasted azure-core's retries.
STEP_ATTEMPTS = 6
STEP_BACKOFF = (2.0, 4.0, 8.0, 15.0, 30.0)


def heartbeat_seconds() -> float:
    """How often a run renews its lease (PROVISIONING_HEARTBEAT_SECONDS; well under the lease)."""
    return float(getattr(settings, "PROVISIONING_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))


def worker_name() -> str:
    """Identifies this worker process in leases and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class RunContext:
    """What every step of one run needs besides its own parameters."""

    clients: AzureClients
    plan: dict[str, Any]
    region: str
    tags: dict[str, str]
    tenant_id: str
    results: dict[str, str]
    roles: RoleCatalog
    # Azure's answer per family of a workspace_quota step, stored by the calling thread (step key -> results).
    quota_results: dict[str, list[quotas.QuotaResult]] = field(default_factory=dict)

    @property
    def subscription(self) -> str:
        return str(self.plan["subscription_id"])

    @property
    def resource_group(self) -> str:
        return str(self.plan["names"]["resource_group"])


def _context(cr: ChangeRequest, clients: AzureClients, results: dict[str, str]) -> RunContext:
    plan = cr.plan or {}
    workspace = cr.workspace
    group = next((r for r in plan.get("resources", []) if r["type"] == "resource_group"), None)
    tags = group["tags"] if group else {ops.OWNERSHIP_TAG: ops.OWNERSHIP_VALUE}
    region = group["location"] if group else (workspace.region if workspace else "")
    return RunContext(
        clients=clients,
        plan=plan,
        region=region,
        tags=tags,
        tenant_id=settings.AZURE_TENANT_ID,
        results=results,
        roles=RoleCatalog(clients, str(plan.get("subscription_id", ""))),
    )


def _resource_id(ctx: RunContext, kind: str, name: str) -> str:
    provider = {
        "storage_account": "Microsoft.Storage/storageAccounts",
        "key_vault": "Microsoft.KeyVault/vaults",
        "container_registry": "Microsoft.ContainerRegistry/registries",
        "app_insights": "Microsoft.Insights/components",
    }[kind]
    return ctx.results.get(f"{kind}:{name}") or ops.arm_id(
        ctx.subscription, ctx.resource_group, provider, name
    )


def _workspace_quota(ctx: RunContext, spec: StepSpec) -> Outcome:
    """The team's dedicated budgets as the workspace's AzureML quota; any refusal fails the step."""
    workspace_id = ops.arm_id(
        ctx.subscription,
        ctx.resource_group,
        "Microsoft.MachineLearningServices/workspaces",
        ctx.plan["names"]["workspace"],
    )
    results = quotas.apply_workspace_quotas(
        ctx.clients,
        subscription=ctx.subscription,
        location=ctx.region,
        workspace_id=workspace_id,
        limits={str(q["family"]): int(q["limit"]) for q in spec.params["quotas"]},
    )
    ctx.quota_results[spec.key] = results
    refused = [r for r in results if not r.ok]
    if refused:
        raise AzureStepError(refused[0].status, " ".join(r.message for r in refused))
    return Outcome("updated" if any(r.sent for r in results) else "unchanged", workspace_id)


def _do_step(ctx: RunContext, spec: StepSpec) -> Outcome:
    p = spec.params
    common: dict[str, Any] = {"subscription": ctx.subscription}
    placed: dict[str, Any] = {
        **common,
        "resource_group": ctx.resource_group,
        "location": ctx.region,
        "tags": ctx.tags,
    }
    if spec.kind == "resource_group":
        return ops.ensure_resource_group(
            ctx.clients, **common, name=p["name"], location=ctx.region, tags=ctx.tags
        )
    if spec.kind == "storage_account":
        return ops.ensure_storage_account(
            ctx.clients,
            **placed,
            name=p["name"],
            hierarchical_namespace=p["settings"].get("hierarchical_namespace", False),
        )
    if spec.kind == "key_vault":
        return ops.ensure_key_vault(ctx.clients, **placed, name=p["name"], tenant_id=ctx.tenant_id)
    if spec.kind == "container_registry":
        return ops.ensure_container_registry(ctx.clients, **placed, name=p["name"])
    if spec.kind == "app_insights":
        return ops.ensure_app_insights(ctx.clients, **placed, name=p["name"])
    if spec.kind == "workspace":
        names = ctx.plan["names"]
        return ops.ensure_workspace(
            ctx.clients,
            **placed,
            name=p["name"],
            storage_id=_resource_id(ctx, "storage_account", names["storage_work"]),
            key_vault_id=_resource_id(ctx, "key_vault", names["key_vault"]),
            registry_id=_resource_id(ctx, "container_registry", names["registry"]),
            app_insights_id=_resource_id(ctx, "app_insights", names["app_insights"]),
        )
    if spec.kind == "cluster":
        return ops.ensure_cluster(
            ctx.clients,
            **placed,
            workspace=ctx.plan["names"]["workspace"],
            name=p["name"],
            vm_size=p["vm_size"],
            priority=p["priority"],
            min_nodes=p["min_nodes"],
            max_nodes=p["max_nodes"],
            idle_seconds=p["idle_seconds"],
        )
    if spec.kind == "workspace_quota":
        return _workspace_quota(ctx, spec)
    if spec.kind == "custom_role":
        return ops.ensure_custom_role(ctx.clients, **common, role_name=p["role"])
    if spec.kind == "principal":
        return ops.resolve_principal(
            ctx.clients, principal=p["principal"], principal_type=p["principal_type"]
        )
    principal_id = ctx.results[principal_key(p["principal"], p["principal_type"])]
    role_id = ctx.results.get(f"custom_role:{p['role']}") or ctx.roles.role_id(p["role"])
    if spec.kind == "role_grant":
        return ops.ensure_role_assignment(
            ctx.clients,
            **common,
            scope=p["scope"],
            role_definition_id=role_id,
            principal_id=principal_id,
            principal_type=p["principal_type"],
        )
    return ops.remove_role_assignment(
        ctx.clients, **common, scope=p["scope"], role_definition_id=role_id, principal_id=principal_id
    )


def _attempt(ctx: RunContext, spec: StepSpec) -> tuple[Outcome | AzureStepError, int]:
    """Run one step with bounded retries for transient errors; return its outcome or last error."""
    for attempt in range(1, STEP_ATTEMPTS + 1):
        try:
            return _do_step(ctx, spec), attempt
        except AzureStepError as exc:
            if not exc.transient or attempt == STEP_ATTEMPTS:
                return exc, attempt
            logger.info("step %s: %s, retrying (attempt %d)", spec.key, exc.code, attempt)
            time.sleep(STEP_BACKOFF[min(attempt - 1, len(STEP_BACKOFF) - 1)])
        except Exception as exc:  # an SDK bug or an unexpected answer: fail the step, not the worker
            logger.exception("step %s failed unexpectedly", spec.key)
            return AzureStepError("UnexpectedError", f"{exc.__class__.__name__}: {exc}"), attempt
    raise AssertionError("unreachable")


class _Execution:
    """The scheduling loop of one run on one worker."""

    def __init__(self, run: Run, ctx: RunContext, worker: str) -> None:
        self.run, self.ctx, self.worker = run, ctx, worker
        self.specs = {s.key: s for s in steps_for_plan(ctx.plan)}
        self.rows = {s.key: s for s in run.steps.all()}
        self.done = {k for k, s in self.rows.items() if s.status in Step.DONE}
        ctx.results.update({k: s.azure_id for k, s in self.rows.items() if k in self.done})
        self.pending = set(self.specs) - self.done
        self.failed = False
        self.lost_lease = False

    def _ready(self) -> list[str]:
        return sorted(
            (k for k in self.pending if all(d in self.done for d in self.specs[k].depends_on)),
            key=lambda k: self.rows[k].position,
        )

    def _record_quotas(self, key: str) -> None:
        """Azure's answer to a workspace_quota step, stored here: database writes stay on this thread."""
        results = self.ctx.quota_results.pop(key, None)
        cr = self.run.change_request
        if results is not None and cr.workspace is not None:
            capacity_sync.workspace_quotas_record(workspace=cr.workspace, results=results, request_id=cr.pk)

    def _record(self, key: str, result: Outcome | AzureStepError, attempts: int) -> None:
        row = self.rows[key]
        if self.specs[key].kind == "workspace_quota":
            self._record_quotas(key)
        if isinstance(result, Outcome):
            runs.step_finish(
                step_id=row.pk, ok=True, outcome=result.action, azure_id=result.azure_id, attempts=attempts
            )
            self.ctx.results[key] = result.azure_id
            self.done.add(key)
        else:
            runs.step_finish(
                step_id=row.pk,
                ok=False,
                error_code=result.code,
                error_message=result.message,
                correlation_id=result.correlation_id,
                hint=result.hint,
                attempts=attempts,
            )
            self.failed = True

    def execute(self) -> None:
        last_beat, beat = time.monotonic(), heartbeat_seconds()
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL, thread_name_prefix="step") as pool:
            running: dict[Future[Any], str] = {}
            while True:
                if not self.failed and not self.lost_lease:
                    for key in self._ready():
                        self.pending.discard(key)
                        runs.step_start(step_id=self.rows[key].pk)
                        running[pool.submit(_attempt, self.ctx, self.specs[key])] = key
                if not running:
                    break
                finished, _ = wait(running, timeout=beat, return_when=FIRST_COMPLETED)
                for future in finished:
                    self._record(running.pop(future), *future.result())
                if time.monotonic() - last_beat >= beat:
                    self.lost_lease = not runs.run_heartbeat(run_id=self.run.pk, worker=self.worker)
                    last_beat = time.monotonic()
        if self.pending and self.failed:
            runs.steps_block(run_id=self.run.pk, keys=sorted(self.pending))


def request_execute(
    *, request_id: int, clients: AzureClients | None = None, worker: str | None = None
) -> str:
    """Claim and execute the request's current run; returns what happened, in a word."""
    worker = worker or worker_name()
    run = runs.run_claim(request_id=request_id, worker=worker)
    if run is None:
        return "nothing to do"
    cr = run.change_request
    execution = _Execution(run, _context(cr, clients or AzureClients.from_settings(), {}), worker)
    execution.execute()
    finished = None if execution.lost_lease else runs.run_finish(run_id=run.pk, worker=worker)
    if finished is None or finished.status == Run.Status.RUNNING:
        logger.warning("run %s of request #%s was taken over by another worker", run.number, request_id)
        return "taken over"
    return finished.status
