"""Keyset pages for lists too long to count on every view (the audit trail): newest first, by id.

``?before=ID`` shows the page of rows older than ID, ``?after=ID`` the page newer than ID. A page
costs one query for its rows (one more than it shows, to know whether older rows follow) and one
``EXISTS`` for newer rows; nothing counts the whole table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet


@dataclass(frozen=True)
class KeysetPage:
    """The rows of one page, and the ids that open the pages around it (None at either end)."""

    rows: list[Any]
    newer: int | None
    older: int | None

    @property
    def has_other_pages(self) -> bool:
        return self.newer is not None or self.older is not None


def _id(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def keyset_page(rows: QuerySet[Any], params: Any, *, size: int) -> KeysetPage:
    """The page of ``rows`` (any order; paged newest first by id) that ``params`` (a QueryDict) asks for."""
    before, after = _id(params.get("before")), _id(params.get("after"))
    if after is not None:
        found = list(rows.filter(id__gt=after).order_by("id")[: size + 1])
        page = list(reversed(found[:size]))  # rows older than these exist: the caller came from them
        newer = page[0].pk if len(found) > size else None
        return KeysetPage(page, newer, page[-1].pk if page else None)
    newest_first = rows.order_by("-id")
    if before is not None:
        newest_first = newest_first.filter(id__lt=before)
    found = list(newest_first[: size + 1])
    page = found[:size]
    older = page[-1].pk if len(found) > size else None
    newer = page[0].pk if before is not None and page and rows.filter(id__gt=page[0].pk).exists() else None
    return KeysetPage(page, newer, older)
