"""``{% utc_time %}`` writes what ``<time datetime="{{ v|utc|date:'c' }}">{{ v|utc|date:"Y-m-d H:i" }}</time>`` did."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from django.template import engines

FILTERS = """{% load tz %}<time datetime="{{ v|utc|date:'c' }}">{{ v|utc|date:"Y-m-d H:i" }}</time>"""
TAG = "{% load portal_time %}{% utc_time v %}"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 5, 1, 5, 11, 123456, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 0, tzinfo=UTC),
        datetime(2026, 6, 30, 23, 59, 59, tzinfo=timezone(timedelta(hours=2))),  # another zone: shown in UTC
    ],
)
def test_the_tag_writes_what_the_filters_wrote(moment: datetime) -> None:
    django = engines["django"]
    assert django.from_string(TAG).render({"v": moment}) == django.from_string(FILTERS).render({"v": moment})


def test_no_moment_writes_nothing() -> None:
    assert engines["django"].from_string(TAG).render({"v": None}) == ""
