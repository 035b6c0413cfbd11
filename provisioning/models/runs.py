"""Runs and steps: each execution of an approved plan by a provisioning worker."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Max

from provisioning.models.requests import ChangeRequest
from provisioning.steps import steps_for_plan


class RunManager(models.Manager["Run"]):
    """Creates runs with their steps."""

    def create_next(self, cr: ChangeRequest, *, rollback: dict[str, Any] | None = None) -> Run:
        """A new run of the request's plan; steps finished by an earlier run of the same purpose are
        carried over as done. ``rollback``: the plan of a run that removes what the request created."""
        number = (cr.runs.aggregate(n=Max("number"))["n"] or 0) + 1
        purpose = Run.Purpose.ROLLBACK if rollback is not None else Run.Purpose.PROVISION
        run = self.create(change_request=cr, number=number, purpose=purpose, rollback_plan=rollback)
        done_before: dict[str, Any] = dict(
            Step.objects.filter(
                run__change_request=cr, run__purpose=purpose, status__in=Step.DONE
            ).values_list("key", "azure_id")
        )
        Step.objects.bulk_create(
            Step(
                run=run,
                key=spec.key,
                kind=spec.kind,
                target=spec.target,
                depends_on=list(spec.depends_on),
                position=i,
                status=Step.Status.SKIPPED if spec.key in done_before else Step.Status.PENDING,
                azure_id=done_before.get(spec.key, ""),
                outcome="done in an earlier run" if spec.key in done_before else "",
            )
            for i, spec in enumerate(steps_for_plan(run.plan))
        )
        return run


class Run(models.Model):
    """One execution of an approved request's plan by a provisioning worker.

    A run holds a lease: the worker executing it renews ``lease_expires_at`` with a heartbeat. When
    the lease expires (the worker died, Redis lost the job), the sweeper enqueues the run again; the
    next worker resumes it, skipping the steps already done.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"

    class Purpose(models.TextChoices):
        PROVISION = "provision", "Provision"
        ROLLBACK = "rollback", "Roll back"

    change_request = models.ForeignKey(ChangeRequest, on_delete=models.PROTECT, related_name="runs")
    number = models.PositiveIntegerField(
        help_text="1 for the first run of a request, then one more per retry"
    )
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    deliveries = models.PositiveIntegerField(default=0, help_text="How many times a worker picked it up")
    purpose = models.CharField(max_length=20, choices=Purpose.choices, default=Purpose.PROVISION)
    rollback_plan = models.JSONField(
        null=True, blank=True, help_text="What a rollback run removes (the request's plan otherwise)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = RunManager()

    class Meta:
        ordering = ["change_request", "number"]
        constraints = [
            models.UniqueConstraint(
                fields=["change_request", "number"], name="run_unique_number_per_request"
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.number} of request #{self.change_request_id}"

    @property
    def plan(self) -> dict[str, Any]:
        """The plan this run executes: the request's approved plan, or what its rollback removes."""
        if self.rollback_plan is not None:
            return dict(self.rollback_plan)
        return dict(self.change_request.plan or {})

    @property
    def job_id(self) -> str:
        """The RQ job id: unique per run, so a re-enqueued run never collides with another run's job."""
        return f"provision-request-{self.change_request_id}-run-{self.number}"


class Step(models.Model):
    """One Azure operation of a run: its target, status, attempts, timings and Azure's error if it failed."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        SKIPPED = "skipped", "Done before"
        FAILED = "failed", "Failed"
        BLOCKED = "blocked", "Not started (an earlier step failed)"

    DONE = frozenset({Status.SUCCEEDED, Status.SKIPPED})

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=300, help_text="Stable identity of the operation within the plan")
    kind = models.CharField(max_length=40)
    target = models.CharField(max_length=400, help_text="What the step acts on, in words")
    depends_on = models.JSONField(default=list)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    azure_id = models.CharField(max_length=500, blank=True)
    outcome = models.CharField(max_length=40, blank=True, help_text="created, updated, unchanged, removed...")
    error_code = models.CharField(max_length=100, blank=True)
    error_message = models.TextField(blank=True)
    correlation_id = models.CharField(max_length=100, blank=True)
    hint = models.TextField(blank=True, help_text="What to do about the failure")
    position = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["run", "position"]
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="step_unique_key_per_run")]

    def __str__(self) -> str:
        return f"{self.kind} {self.target} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
