"""Lists at volume: every list pages, and a page's queries do not grow with the rows behind it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from provisioning.models import ChangeRequest
from tests.factories import ChangeRequestFactory, tutorial_spec

pytestmark = pytest.mark.django_db

APPROVALS = reverse("provisioning:approval_queue")


def _waiting(alice, count: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    for n in range(start, start + count):
        ChangeRequestFactory(requester=alice, submitted=True, spec=tutorial_spec(team=f"team{n}"))


def test_the_approval_queue_pages_oldest_first(client, policy, alice, bob) -> None:
    _waiting(alice, 55)
    client.force_login(bob)

    first = client.get(APPROVALS)
    second = client.get(APPROVALS, {"page": 2})

    waiting = list(ChangeRequest.objects.filter(status="submitted").order_by("submitted_at", "id"))
    assert [row.cr for row in first.context["waiting"]] == waiting[:50]
    assert [row.cr for row in second.context["waiting"]] == waiting[50:]
    assert ">55</span>" in first.content.decode()
    assert "?page=2" in first.content.decode()


def queries(client, url: str, **params: object) -> int:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, params).status_code == 200
    return len(captured.captured_queries)


def test_the_approval_queues_queries_do_not_grow(
    client, policy, alice, bob, django_assert_max_num_queries
) -> None:
    _waiting(alice, 3)
    client.force_login(bob)
    few = queries(client, APPROVALS)
    _waiting(alice, 22, start=3)
    with django_assert_max_num_queries(9):
        assert queries(client, APPROVALS) == few
