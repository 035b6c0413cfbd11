"""RQ jobs: thin entry points that take ids and call services (delivery is at least once)."""

from __future__ import annotations

from provisioning import runs


def provision_request(request_id: int) -> str:
    """Provision an approved request, or resume its run; a duplicate delivery finds nothing to do."""
    from provisioning.engine import request_execute

    return request_execute(request_id=request_id)


def sweep() -> list[int]:
    """Re-enqueue approved or running work that no live worker holds."""
    return runs.runs_sweep()


def check_names(request_id: int) -> int:
    """Ask Azure whether a submitted request's globally unique names are free; returns how many are taken."""
    from provisioning.name_checks import request_check_names

    return sum(1 for answer in request_check_names(request_id=request_id) if not answer["available"])
