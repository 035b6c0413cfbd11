"""The audit trail page and its exports (written by the export job, downloaded by their requester)."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from accounts import personas
from provisioning import exports
from provisioning.audit import audit_record, audit_via
from provisioning.exports import CSV_COLUMNS, csv_safe
from provisioning.models import AuditEvent, AuditExport
from provisioning.views.audit import change_summary
from tests.factories import ChangeRequestFactory, UserFactory

pytestmark = pytest.mark.django_db

AUDIT = reverse("provisioning:audit")
EXPORTS = reverse("provisioning:audit_exports")
EXPORT_NEW = reverse("provisioning:audit_export_create")


@pytest.fixture
def approved(policy, alice, bob):  # type: ignore[no-untyped-def]
    """Alice's tutorial request, created, submitted and approved by bob: three audit events."""
    return ChangeRequestFactory(requester=alice, approver=bob, approved=True)


def _record(count: int = 1, **fields: object) -> None:
    values: dict[str, object] = {
        "actor": "system",
        "action": "test.note",
        "object_type": "note",
        "object_id": 1,
    }
    values.update(fields)
    with transaction.atomic():
        for _ in range(count):
            audit_record(**values)  # type: ignore[arg-type]


def _actions(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [row["event"].action for row in response.context["rows"]]


def _download(client, fmt: str = "csv", **filters: object):  # type: ignore[no-untyped-def]
    """Ask for an export as the audit page does, let the export job write it, and download it."""
    assert client.post(EXPORT_NEW, {"format": fmt, **filters}).status_code == 302
    export = AuditExport.objects.latest("id")
    assert exports.audit_export_run(export_id=export.pk) == AuditExport.Status.READY
    return client.get(reverse("provisioning:audit_export_download", args=[export.pk]))


def _csv(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize("url", [AUDIT, EXPORTS])
def test_audit_is_for_admins_only(client, approved, alice, dana, url):
    for user in (alice, dana):
        client.force_login(user)
        assert client.get(url).status_code == 403
        assert client.post(EXPORT_NEW, {"format": "csv"}).status_code == 403
    assert not AuditExport.objects.exists()


def test_audit_lists_events_newest_first_with_a_status_summary(client, approved, bob):
    client.force_login(bob)

    response = client.get(AUDIT)

    assert response.status_code == 200
    assert response.context["nav"] == "audit"
    assert _actions(response) == ["request.approved", "request.submitted", "request.created"]
    page = response.content.decode()
    assert "submitted → approved" in page
    assert reverse("provisioning:request_detail", args=[approved.pk]) in page


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"actor": "BO"}, ["request.approved"]),
        ({"actor": "alice"}, ["request.submitted", "request.created"]),
        (
            {"workspace": "BGMRBLUEGRANITE2DEVWS"},
            ["request.approved", "request.submitted", "request.created"],
        ),
        ({"workspace": "bluegranit"}, ["request.approved", "request.submitted", "request.created"]),
        ({"workspace": "nomatch"}, []),
        ({"actor": "alice", "workspace": "bluegranit"}, ["request.submitted", "request.created"]),
    ],
)
def test_audit_filters(client, approved, bob, query, expected):
    client.force_login(bob)

    assert _actions(client.get(AUDIT, query)) == expected


def test_audit_filter_by_request(client, approved, bob):
    _record(action="other.thing")
    client.force_login(bob)

    assert len(_actions(client.get(AUDIT, {"request": approved.pk}))) == 3
    assert _actions(client.get(AUDIT, {"request": approved.pk + 1000})) == []


@pytest.mark.parametrize(
    "query,field",
    [
        ({"request": "abc"}, "request"),
        ({"request": "12; DROP TABLE"}, "request"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "2030-01-02", "date_to": "2030-01-01"}, "date_to"),
    ],
)
def test_bad_filters_are_form_errors(client, approved, bob, query, field):
    client.force_login(bob)

    response = client.get(AUDIT, query)

    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert response.context["rows"] == []
    assert "is-invalid" in response.content.decode()
    assert client.post(EXPORT_NEW, {"format": "csv", **query}).status_code == 302
    assert not AuditExport.objects.exists()


def test_date_filters_are_inclusive_utc_days(client, approved, bob):
    today = timezone.now().date()
    client.force_login(bob)

    def count(**query: object) -> int:
        return len(_actions(client.get(AUDIT, {k: str(v) for k, v in query.items()})))

    assert count(date_from=today, date_to=today) == 3
    assert count(date_to=today) == 3
    assert count(date_from=today + timedelta(days=1)) == 0
    assert count(date_to=today - timedelta(days=1)) == 0


def test_pages_keep_the_filters_and_walk_both_ways(client, bob):
    _record(55, actor="system")
    _record(1, actor="bob")
    client.force_login(bob)

    first = client.get(AUDIT, {"actor": "system"})
    page = first.context["page"]
    second = client.get(AUDIT, {"actor": "system", "before": page.older})
    back = client.get(AUDIT, {"actor": "system", "after": second.context["page"].newer})

    assert len(first.context["rows"]) == 50
    assert page.newer is None
    assert f"?actor=system&amp;before={page.older}" in first.content.decode()
    assert len(second.context["rows"]) == 5
    assert second.context["page"].older is None
    assert [r["event"].pk for r in back.context["rows"]] == [r["event"].pk for r in first.context["rows"]]
    assert back.context["page"].newer is None


def test_the_audit_page_counts_nothing_and_its_queries_do_not_grow(
    client, bob, django_assert_max_num_queries
):
    _record(120, actor="system")
    client.force_login(bob)
    with django_assert_max_num_queries(8) as first:
        client.get(AUDIT)
    _record(400, actor="system")
    older = client.get(AUDIT).context["page"].older
    with django_assert_max_num_queries(8) as later:
        client.get(AUDIT, {"before": older})
    assert not any("COUNT(" in q["sql"].upper() for q in [*first.captured_queries, *later.captured_queries])


def test_csv_export(client, approved, bob):
    client.force_login(bob)

    response = _download(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-')
    header, *rows = _csv(response)
    assert header == list(CSV_COLUMNS)
    # Oldest first, as the chain runs; the export's own request is not in the trail it exports.
    assert [row[3] for row in rows] == ["request.created", "request.submitted", "request.approved"]
    assert all(b[-2] == a[-1] for a, b in itertools.pairwise(rows))  # prev_hash links
    approval = dict(zip(header, rows[-1], strict=True))
    event = AuditEvent.objects.get(pk=approval["id"])
    assert approval["created_at"].endswith("+00:00")
    assert approval["actor"] == "bob"
    assert approval["request_id"] == str(approved.pk)
    assert json.loads(approval["before"])["status"] == "submitted"
    assert json.loads(approval["after"])["status"] == "approved"
    assert (approval["prev_hash"], approval["hash"]) == (event.prev_hash, event.hash)


def test_csv_export_applies_the_filters(client, approved, bob):
    client.force_login(bob)

    rows = _csv(_download(client, actor="bob"))[1:]

    assert [row[3] for row in rows] == ["request.approved"]


def test_csv_export_neutralizes_formulas(client, bob):
    _record(actor='=HYPERLINK("http://evil")', message="+1+2", workspace_name="@sum", object_id="-3")
    client.force_login(bob)

    rows = _csv(_download(client))
    row = dict(zip(CSV_COLUMNS, next(r for r in rows if r[3] == "test.note"), strict=True))

    assert row["actor"] == '\'=HYPERLINK("http://evil")'
    assert row["message"] == "'+1+2"
    assert row["workspace_name"] == "'@sum"
    assert row["object_id"] == "'-3"


def test_csv_safe_leaves_ordinary_cells_alone():
    assert csv_safe("alice") == "alice"
    assert csv_safe(42) == 42
    assert csv_safe("") == ""
    assert csv_safe("\tcmd") == "'\tcmd"


def test_change_summary():
    assert change_summary({"status": "submitted"}, {"status": "approved"}) == "submitted → approved"
    assert change_summary({"max_nodes": 1, "name": "a"}, {"max_nodes": 2, "name": "a"}) == "max_nodes: 1 → 2"
    assert change_summary({"clusters": [1]}, {"clusters": [1, 2]}) == "clusters changed"
    assert change_summary(None, {"a": 1}) == ""
    many = change_summary({}, {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5})
    assert many == "a: — → 1; b: — → 2; c: — → 3; 2 more"


# --- an audit people can read (issue #18) ------------------------------------------------------------------

WORKSPACE_ID = "/subscriptions/0b1d-4ada/resourceGroups/rg-team/providers/Microsoft.MachineLearningServices/workspaces/ws1"


@pytest.fixture
def ada(db):  # type: ignore[no-untyped-def]
    """An admin with a display name and a UPN unlike her username (as Entra users have)."""
    return UserFactory(
        username="entra.t1.0b1d",
        first_name="Ada",
        last_name="Lovelace",
        upn="ada.l@contoso.com",
        persona=personas.ADMIN,
    )


def _dated(days_ago: int, action: str) -> None:
    """An event of ``days_ago`` days back (audit_record stamps now; the page only reads the rows)."""
    last = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first()
    event = AuditEvent(
        created_at=timezone.now() - timedelta(days=days_ago),
        actor="system",
        action=action,
        object_type="note",
        object_id="1",
        prev_hash=last or "0" * 64,
    )
    event.hash = event.compute_hash()
    event.save(force_insert=True)


def _run(request_id: int, steps: int, *, failed: int = 0) -> None:
    """A run of request ``request_id``, as the engine records it: its start, then one event per step."""
    _record(action="request.provisioning", object_type="change_request", request_id=request_id)
    for n in range(steps):
        _record(
            action="step.failed" if n < failed else "step.succeeded",
            object_type="step",
            object_id=f"s{n}",
            request_id=request_id,
            after={"step": f"target {n}", "azure_id": f"{WORKSPACE_ID}/computes/c{n}", "run": 1},
        )


@pytest.mark.parametrize("actor", ["lovel", "ADA LOVELACE", "ada.l@CONTOSO", "entra.t1"])
def test_the_audit_page_finds_an_event_by_the_actors_name_upn_or_id(client, ada, bob, actor):
    _record(actor=ada, action="test.by_ada")
    _record(actor="system", action="test.by_system")
    client.force_login(bob)

    response = client.get(AUDIT, {"actor": actor})

    assert _actions(response) == ["test.by_ada"]
    page = response.content.decode()
    assert '<span title="entra.t1.0b1d">Ada Lovelace</span>' in page
    assert "ada.l@contoso.com" in page


def test_an_action_from_the_command_line_says_so(client, ada, bob):
    with audit_via("cli"):
        _record(actor=ada, action="test.by_ada")
    client.force_login(bob)

    assert "Ada Lovelace (command line)" in client.get(AUDIT).content.decode()


def test_the_audit_page_hides_step_events_until_asked(client, bob):
    _run(7, 3, failed=1)
    _record(action="request.failed", object_type="change_request", request_id=7)
    _run(7, 2)  # the retry: a second run
    _run(8, 1)
    client.force_login(bob)

    folded = client.get(AUDIT)
    shown = client.get(AUDIT, {"steps": "1"})

    assert _actions(folded) == ["request.provisioning"] * 2 + ["request.failed", "request.provisioning"]
    assert [len(row["steps"]) for row in folded.context["rows"]] == [1, 2, 0, 3]
    page = folded.content.decode()
    assert "2 steps</summary>" in page and "3 steps, 1 failed</summary>" in page
    assert len(_actions(shown)) == 10 and shown.context["rows"][0]["steps"] == []
    assert _actions(client.get(AUDIT, {"action": "step.failed"})) == ["step.failed"]


def test_the_audit_page_filters_by_action_and_date_range(client, bob):
    _dated(10, "test.long_ago")
    _dated(3, "test.recent")
    _dated(3, "other.recent")
    _dated(0, "test.today")
    today = timezone.now().date()
    client.force_login(bob)

    def actions(**query: object) -> list[str]:
        return _actions(client.get(AUDIT, {k: str(v) for k, v in query.items()}))

    assert actions(date_from=today - timedelta(days=5), date_to=today - timedelta(days=2)) == [
        "other.recent",
        "test.recent",
    ]
    assert actions(action="TEST.", date_to=today - timedelta(days=1)) == ["test.recent", "test.long_ago"]


def test_azure_objects_link_to_the_portal_and_a_malicious_id_does_not(client, bob, settings):
    settings.AZURE_PORTAL_URL = "https://portal.azure.us"
    evil = '/subscriptions/x"><script>alert(1)</script>'
    _record(
        object_id="1",
        after={"azure_id": WORKSPACE_ID, "evil": evil, "up": "/subscriptions/a/../../javascript:alert(1)"},
    )
    client.force_login(bob)

    page = client.get(AUDIT).content.decode()

    assert (
        f'<a href="https://portal.azure.us/#resource{WORKSPACE_ID}" target="_blank" '
        f'rel="noopener noreferrer" title="{WORKSPACE_ID}">ws1'
    ) in page
    assert page.count("#resource/subscriptions/") == 1
    assert "<script>alert(1)" not in page


@pytest.mark.parametrize(
    "filters",
    [
        {},
        {"steps": "1"},
        {"actor": "lovelace"},
        {"action": "request.", "request": "7"},
        {"date_from": "today"},
    ],
)
def test_exports_hold_the_rows_the_page_shows(client, ada, bob, filters):
    _run(7, 2)
    _record(actor=ada, action="request.approved", request_id=7, message="=1+1")
    filters = {k: timezone.now().date().isoformat() if v == "today" else v for k, v in filters.items()}
    client.force_login(bob)
    shown = [row["event"].pk for row in client.get(AUDIT, filters).context["rows"]]

    header, *rows = _csv(_download(client, "csv", **filters))
    lines = b"".join(_download(client, "jsonl", **filters).streaming_content).decode().splitlines()

    # The CSV's asking and downloading are events too (after it, before the JSON lines' export).
    jsonl = [line["id"] for line in map(json.loads, lines) if not line["action"].startswith("audit.")]
    assert shown and [int(row[0]) for row in rows] == jsonl == shown[::-1]
    assert header[-5:-2] == ["actor_name", "actor_upn", "via"]
    by_ada = [dict(zip(header, row, strict=True)) for row in rows if row[2] == ada.username]
    assert all(
        (r["actor_name"], r["actor_upn"], r["via"]) == ("Ada Lovelace", "ada.l@contoso.com", "web")
        for r in by_ada
    )
    assert all(r["message"] == "'=1+1" for r in by_ada)
