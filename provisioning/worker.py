"""The provisioning worker: RQ's forking worker that runs only the portal's job functions.

Whoever can write to Redis can put any dotted path in a job; RQ would import it and call it. The
portal's worker refuses every job whose function is not one of ``provisioning.jobs.JOB_FUNCTIONS``
(exact dotted paths, so ``os.system``, builtins, other modules' functions and attribute chains such as
``provisioning.jobs.exports.audit_exports_sweep`` are refused), before anything is imported or called:
the job is marked failed with the reason and the refusal is logged. Callbacks are never imported
(the portal sets none), so they cannot smuggle a function in either.

``import azure.ai.ml`` costs about a second and 100 MiB; importing it in the parent process means
every forked work horse starts with it loaded instead of paying for it per job.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from rq.exceptions import DeserializationError
from rq.job import Job
from rq.serializers import JSONSerializer
from rq.worker import Worker

from provisioning.jobs import JOB_FUNCTIONS

logger = logging.getLogger(__name__)


class JobRefused(Exception):
    """A job whose function is not one of the portal's: it is failed, never run."""


def job_refusal(job: Job) -> str | None:
    """Why the portal's worker must not run this job (None when it may). Imports nothing of the job's."""
    try:
        func_name, instance = job.func_name, job.instance
    except DeserializationError:
        return "its data cannot be read as a portal job"
    if func_name not in JOB_FUNCTIONS:
        return f"{func_name!r} is not one of the portal's job functions"
    if instance is not None:
        return "a portal job is a function, not a method of an object"
    callbacks = [
        name
        for name in (job._success_callback_name, job._failure_callback_name, job._stopped_callback_name)
        if name
    ]
    if callbacks:
        return f"it names callbacks ({', '.join(callbacks)}); portal jobs have none"
    return None


class PortalJob(Job):
    """A job that resolves its function only when it is one of the portal's job functions."""

    @property
    def func(self) -> Any:
        reason = job_refusal(self)
        if reason is not None:
            logger.error("refused job %s: %s", self.id, reason)
            raise JobRefused(f"refused job {self.id}: {reason}")
        return super().func

    # Callbacks are dotted paths RQ would import and call; the portal sets none, so none is resolved.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


class PortalWorker(Worker):
    """The worker every process that runs jobs uses (``settings.RQ["WORKER_CLASS"]``): jobs are
    ``PortalJob``, read as JSON, whatever job class or serializer the command line asked for (RQ's
    default serializer is pickle, and unpickling what Redis holds would run code before any check)."""

    job_class = PortalJob

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # azure-ai-ml records the cloud it last used in this variable and, at import, fails on a cloud
        # that is not registered in this process (e.g. one inherited from the process that started us).
        os.environ.pop("AZUREML_CURRENT_CLOUD", None)
        import azure.ai.ml  # noqa: F401 - preloaded for the work horses

        import provisioning.engine.executor  # noqa: F401

        kwargs["job_class"] = PortalJob
        kwargs["serializer"] = JSONSerializer
        super().__init__(*args, **kwargs)
