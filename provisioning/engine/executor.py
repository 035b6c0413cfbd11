"""Executes a run: the plan's steps in dependency order, independent steps concurrently (bounded).

Azure calls run in a thread pool; every database write happens on the calling thread, in short
transactions, through ``provisioning.engine.runs``. The lease is renewed while the run works; if another
worker takes the run over, this one stops scheduling and leaves.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from django.conf import settings

from portal.log_context import log_context
from provisioning.azure.clients import AzureClients
from provisioning.azure.common import AzureStepError, Outcome
from provisioning.capacity import store as capacity_store
from provisioning.engine import runs
from provisioning.engine.handlers import RunContext, run_context, step_do
from provisioning.models import Run, Step
from provisioning.steps import StepSpec, steps_for_plan

logger = logging.getLogger(__name__)

MAX_PARALLEL = 16
HEARTBEAT_SECONDS = 5.0
# Step-level retries for what azure-core's own retries do not cover: replication delay of new
# principals, throttling without Retry-After, transient errors that outlasted azure-core's retries.
STEP_ATTEMPTS = 6
STEP_BACKOFF = (2.0, 4.0, 8.0, 15.0, 30.0)
# Throttling is Azure asking to wait, not a failure: a step still throttled after azure-core's retries keeps
# trying (backing off, with jitter so a burst of runs does not retry in step) for this long, past
# STEP_ATTEMPTS, before it fails.
THROTTLED = "TooManyRequests"
THROTTLE_PATIENCE_SECONDS = 900.0


def heartbeat_seconds() -> float:
    """How often a run renews its lease (PROVISIONING_HEARTBEAT_SECONDS; well under the lease)."""
    return float(getattr(settings, "PROVISIONING_HEARTBEAT_SECONDS", HEARTBEAT_SECONDS))


def run_log_name(run: Run) -> str:
    """How log lines name a run: its request and number."""
    return f"request-{run.change_request_id}-run-{run.number}"


def worker_name() -> str:
    """Identifies this worker process in leases and logs."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _attempt(ctx: RunContext, spec: StepSpec, run: str = "") -> tuple[Outcome | AzureStepError, int]:
    """Run one step with bounded retries for transient errors; return its outcome or last error.

    ``run``: the run's name for the log lines of this step (its thread has its own context)."""
    with log_context(run=run, step=spec.key):
        return _attempts(ctx, spec)


def _attempts(ctx: RunContext, spec: StepSpec) -> tuple[Outcome | AzureStepError, int]:
    attempt, throttled_since = 0, None
    while True:
        attempt += 1
        try:
            return step_do(ctx, spec), attempt
        except AzureStepError as exc:
            ctx.untried.discard(spec.key)
            throttled = exc.code == THROTTLED
            if throttled and throttled_since is None:
                throttled_since = time.monotonic()
            patient = throttled and time.monotonic() - (throttled_since or 0.0) < THROTTLE_PATIENCE_SECONDS
            if not exc.transient or (attempt >= STEP_ATTEMPTS and not patient):
                return exc, attempt
            logger.info(
                "step %s: %s, retrying (attempt %d)",
                spec.key,
                exc.code,
                attempt,
                extra={"correlation_id": exc.correlation_id},
            )
            delay = STEP_BACKOFF[min(attempt - 1, len(STEP_BACKOFF) - 1)]
            time.sleep(delay * random.uniform(0.5, 1.0) if throttled else delay)  # nosec B311 # jitter
        except Exception as exc:  # an SDK bug or an unexpected answer: fail the step, not the worker
            ctx.untried.discard(spec.key)
            logger.exception("step %s failed unexpectedly", spec.key)
            return AzureStepError("UnexpectedError", f"{exc.__class__.__name__}: {exc}"), attempt


class _Execution:
    """The scheduling loop of one run on one worker."""

    def __init__(self, run: Run, ctx: RunContext, worker: str) -> None:
        self.run, self.ctx, self.worker = run, ctx, worker
        self.log_name = run_log_name(run)
        self.specs = {s.key: s for s in steps_for_plan(ctx.plan)}
        self.rows = {s.key: s for s in run.steps.all()}
        self.done = {k for k, s in self.rows.items() if s.status in Step.DONE}
        ctx.results.update({k: s.azure_id for k, s in self.rows.items() if k in self.done})
        ctx.created.update(
            s.azure_id.lower()
            for k, s in self.rows.items()
            if k in self.done and s.outcome == "created" and s.azure_id
        )
        # A step a worker started before (and died in) is no longer untried: its PUT may have reached Azure.
        ctx.untried.update(
            k for k, s in self.rows.items() if s.status == Step.Status.PENDING and not s.attempts
        )
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
            capacity_store.workspace_quotas_record(workspace=cr.workspace, results=results, request_id=cr.pk)

    def _record(self, key: str, result: Outcome | AzureStepError, attempts: int) -> None:
        row = self.rows[key]
        if self.specs[key].kind == "workspace_quota":
            self._record_quotas(key)
        if isinstance(result, Outcome):
            runs.step_finish(
                step_id=row.pk, ok=True, outcome=result.action, azure_id=result.azure_id, attempts=attempts
            )
            self.ctx.results[key] = result.azure_id
            if result.action == "created" and result.azure_id:
                self.ctx.created.add(result.azure_id.lower())
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
                        running[pool.submit(_attempt, self.ctx, self.specs[key], self.log_name)] = key
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
        elif self.pending and not self.lost_lease:
            # Steps waiting on one the plan lacks would never start: the run must not pass for done.
            for key in sorted(self.pending):
                missing = sorted(set(self.specs[key].depends_on) - set(self.specs))
                runs.step_finish(
                    step_id=self.rows[key].pk,
                    ok=False,
                    error_code="PlanError",
                    error_message=f"the step waits for {', '.join(missing) or 'a step that never ran'}, "
                    "which the plan lacks",
                    hint="A defect of the plan: report it; nothing was sent to Azure for this step.",
                )


def request_execute(
    *, request_id: int, clients: AzureClients | None = None, worker: str | None = None
) -> str:
    """Claim and execute the request's current run; returns what happened, in a word."""
    worker = worker or worker_name()
    run = runs.run_claim(request_id=request_id, worker=worker)
    if run is None:
        return "nothing to do"
    with log_context(run=run_log_name(run)):
        execution = _Execution(run, run_context(run, clients or AzureClients.from_settings(), {}), worker)
        execution.execute()
        finished = None if execution.lost_lease else runs.run_finish(run_id=run.pk, worker=worker)
    if finished is None or finished.status == Run.Status.RUNNING:
        logger.warning("run %s of request #%s was taken over by another worker", run.number, request_id)
        return "taken over"
    return finished.status
