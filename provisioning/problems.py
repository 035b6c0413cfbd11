"""A reason a request cannot go ahead, tied to the field it belongs to (shared by every checker)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One reason a request cannot go ahead, tied to a field (``workspace.team``, ``clusters.1.name``)."""

    field: str
    message: str
