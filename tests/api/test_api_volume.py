"""API lists read a fixed number of queries whatever their length, and the audit pages by cursor with the
same rows as the exports."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from provisioning import exports
from provisioning.models import AuditEvent
from tests.api.conftest import Api, token_of
from tests.factories import ChangeRequestFactory, MembershipFactory, WorkspaceFactory, tutorial_spec

pytestmark = pytest.mark.django_db


def _queries(api: Api, path: str, **query: str) -> int:
    with CaptureQueriesContext(connection) as seen:
        assert api.get(path, **query).status_code == 200
    return len(seen)


@pytest.mark.parametrize("path", ["requests/", "workspaces/", "audit/", "me/access/"])
def test_a_list_reads_as_much_for_many_rows_as_for_few(policy, alice, bob, path):
    def grow(n: int, start: int) -> None:
        for i in range(start, start + n):
            ws = WorkspaceFactory(owner=alice, team=f"team{i}")
            MembershipFactory(
                workspace=ws, principal_name=alice.upn or alice.email, persona="team_lead", state="active"
            )
            ChangeRequestFactory(requester=alice, spec=tutorial_spec(team=f"req{i}"), submitted=True)

    api = Api(token_of(bob if path == "audit/" else alice))
    grow(2, 0)
    few = _queries(api, path)
    grow(20, 2)
    assert _queries(api, path) == few


def test_the_audit_pages_by_cursor_and_returns_the_exports_rows(policy, alice, bob):
    for i in range(5):
        ChangeRequestFactory(requester=alice, spec=tutorial_spec(team=f"audited{i}"), submitted=True)
    api = Api(token_of(bob))
    first = api.get("audit/", page_size="3", actor=alice.username).json()
    assert len(first["results"]) == 3 and first["next"]
    rest = api.client.get(first["next"], headers=api.headers).json()
    rows = first["results"] + rest["results"]
    expected = exports.events_matching(AuditEvent.objects.order_by("-id"), {"actor": alice.username})
    assert [r["id"] for r in rows] == [e.pk for e in expected][: len(rows)]
    assert rows[0] == json.loads(json.dumps(exports.event_fields(expected[0]), cls=exports.DjangoJSONEncoder))
    bad = api.get("audit/", date_from="yesterday")
    assert bad.status_code == 400 and bad.json()["problems"]
