"""The provisioning worker class: RQ's forking worker, with the Azure SDKs imported once.

``import azure.ai.ml`` costs about a second and 100 MiB; importing it in the parent process means
every forked work horse starts with it loaded instead of paying for it per job.
"""

from __future__ import annotations

import os
from typing import Any

from rq.worker import Worker


class PortalWorker(Worker):
    """``manage.py rqworker provisioning --worker-class provisioning.worker.PortalWorker``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # azure-ai-ml records the cloud it last used in this variable and, at import, fails on a cloud
        # that is not registered in this process (e.g. one inherited from the process that started us).
        os.environ.pop("AZUREML_CURRENT_CLOUD", None)
        import azure.ai.ml  # noqa: F401 - preloaded for the work horses

        import provisioning.engine.executor  # noqa: F401

        super().__init__(*args, **kwargs)
