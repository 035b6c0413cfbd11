"""The provisioning worker class: RQ's forking worker, with the Azure SDKs imported once.

``import azure.ai.ml`` costs about a second and 100 MiB; importing it in the parent process means
every forked work horse starts with it loaded instead of paying for it per job.
"""

from __future__ import annotations

from typing import Any

from rq.worker import Worker


class PortalWorker(Worker):
    """``manage.py rqworker provisioning --worker-class provisioning.worker.PortalWorker``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        import azure.ai.ml  # noqa: F401 - preloaded for the work horses

        import provisioning.engine  # noqa: F401

        super().__init__(*args, **kwargs)
