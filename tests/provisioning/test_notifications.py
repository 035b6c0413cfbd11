"""Notifications (issue #18, part 2): the outbox, delivered to a real SMTP server and a Teams-like webhook
receiver on 127.0.0.1; retries while SMTP is down; never twice; preferences."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.db import connection, transaction
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from provisioning import jobs
from provisioning.models import (
    AuditEvent,
    ChangeRequest,
    Notification,
    NotificationKind,
    NotificationPreference,
    TeamChannel,
)
from provisioning.models.notifications import webhook_url_problem
from provisioning.workflow import delivery, notifications, services
from tests import factories
from tests.factories import ChangeRequestFactory, MembershipFactory, WorkspaceFactory, tutorial_spec

Kind = NotificationKind


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping every message it accepts (the envelope's recipients and the parsed mail)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.messages: list[tuple[list[str], Any]] = []
        self.delay = delay
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            time.sleep(self.delay)  # hold the sender, so a concurrent delivery would overlap it
        with self.lock:
            self.messages.append(
                (list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=email_policy))
            )
        return "250 OK"

    def to(self, address: str) -> list[Any]:
        return [m for rcpt, m in self.messages if address in rcpt]


class SmtpServer:
    """A real SMTP server on 127.0.0.1, started and stopped on demand, always on the same port."""

    def __init__(self, port: int, inbox: Inbox) -> None:
        self.port, self.inbox, self.controller = port, inbox, None

    def start(self) -> None:
        # aiosmtpd logs each connection from its own thread, which can outlive the test's captured stream.
        logging.getLogger("mail.log").disabled = True
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def _smtp(port: int) -> Any:
    return override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=port,
        EMAIL_USE_TLS=False,
        EMAIL_TIMEOUT=5,
    )


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """A running SMTP server; the mail backend points at it."""
    server = SmtpServer(_free_port(), Inbox())
    server.start()
    with _smtp(server.port):
        yield server
    server.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A local stand-in for Teams' incoming webhook: its URL (the admins' channel) and the cards posted."""
    cards: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            cards.append({"path": self.path, "body": json.loads(self.rfile.read(length))})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"1")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    with override_settings(TEAMS_WEBHOOK_URL=f"{url}/portal", PORTAL_BASE_URL="https://portal.contoso.com"):
        yield url, cards
    server.shutdown()
    server.server_close()


def _submitted(alice: Any, django_capture_on_commit_callbacks: Any) -> ChangeRequest:
    cr = ChangeRequestFactory(requester=alice)
    with django_capture_on_commit_callbacks(execute=True):
        return services.request_submit(request_id=cr.pk, actor=alice)


def _mails(kind: str) -> list[Notification]:
    return list(Notification.objects.filter(kind=kind, channel=Notification.Channel.MAIL).order_by("pk"))


# --- submitting: mail to each approver, a card to the channel ----------------------------------------------


@pytest.mark.django_db
def test_a_submitted_request_mails_each_approver_once_and_posts_one_card(
    policy, alice, bob, smtp, webhook, rq_queue, django_capture_on_commit_callbacks
) -> None:
    erin = factories.admin("erin")
    cr = _submitted(alice, django_capture_on_commit_callbacks)

    assert notifications.DELIVER_JOB in [j.func_name for j in rq_queue.get_jobs()]
    assert jobs.notifications_deliver() == {"sent": 3, "not_sent": 0}  # what the queued job runs
    assert jobs.notifications_deliver() == {"sent": 0, "not_sent": 0}  # a second delivery sends nothing

    for admin in (bob, erin):
        [mail] = smtp.inbox.to(admin.email)
        assert f"request #{cr.pk}" in mail["Subject"]
        assert f"https://portal.contoso.com/requests/{cr.pk}/" in mail.get_content()
    assert len(smtp.inbox.messages) == 2  # the requester (a team lead) is no approver
    _url, cards = webhook
    [card] = cards
    assert card["path"] == "/portal"
    attachment = card["body"]["attachments"][0]
    assert card["body"]["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"]["version"] == "1.4"
    assert attachment["content"]["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in the portal",
            "url": f"https://portal.contoso.com{reverse('provisioning:request_detail', args=[cr.pk])}",
        }
    ]
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}


@pytest.mark.django_db
def test_a_rolled_back_change_writes_nothing(policy, alice, bob) -> None:
    cr = ChangeRequestFactory(requester=alice)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.request_submit(request_id=cr.pk, actor=alice)
        assert _mails(Kind.REQUEST_SUBMITTED)
        raise RuntimeError("the change fails after its notifications were written")
    assert not Notification.objects.exists()


# --- SMTP down: the request goes through, the mail comes later, once ---------------------------------------


@pytest.mark.django_db
def test_with_smtp_down_the_request_goes_through_and_the_mail_arrives_once_later(
    policy, alice, bob, django_capture_on_commit_callbacks
) -> None:
    server = SmtpServer(_free_port(), Inbox())  # not started: nothing listens on its port
    with _smtp(server.port):
        cr = _submitted(alice, django_capture_on_commit_callbacks)
        assert cr.status == ChangeRequest.Status.SUBMITTED
        assert delivery.notifications_deliver() == {"sent": 0, "not_sent": 1}
        [row] = _mails(Kind.REQUEST_SUBMITTED)
        assert (row.status, row.attempts) == (Notification.Status.PENDING, 1)
        assert "SMTP" in row.last_error
        assert row.next_attempt_at > timezone.now() + timedelta(seconds=50)  # retried after a minute
        assert delivery.notifications_deliver() == {"sent": 0, "not_sent": 0}  # not due yet

        server.start()
        try:
            later = timezone.now() + timedelta(minutes=2)
            assert delivery.notifications_deliver(now=later) == {"sent": 1, "not_sent": 0}
            assert delivery.notifications_deliver(now=later) == {"sent": 0, "not_sent": 0}
        finally:
            server.stop()
    assert len(server.inbox.to(bob.email)) == 1
    row.refresh_from_db()
    assert (row.status, row.attempts, row.last_error) == (Notification.Status.SENT, 2, "")


def test_retries_back_off_exponentially_to_an_hour() -> None:
    assert [delivery.retry_delay(n).total_seconds() / 60 for n in range(1, 10)] == [
        1,
        2,
        4,
        8,
        16,
        32,
        60,
        60,
        60,
    ]


@pytest.mark.django_db
def test_delivery_gives_up_after_the_last_attempt(policy, alice, bob, settings) -> None:
    settings.NOTIFICATION_MAX_ATTEMPTS = 2
    with _smtp(_free_port()):
        ChangeRequestFactory(requester=alice, submitted=True)
        delivery.notifications_deliver()
        delivery.notifications_deliver(now=timezone.now() + timedelta(hours=1))
    [row] = _mails(Kind.REQUEST_SUBMITTED)
    assert (row.status, row.attempts) == (Notification.Status.FAILED, 2)
    assert delivery.notifications_sweep(now=timezone.now() + timedelta(days=1)) is False


@pytest.mark.django_db
def test_the_sweeper_queues_a_delivery_for_due_rows(policy, alice, bob, rq_queue) -> None:
    ChangeRequestFactory(requester=alice, submitted=True)  # its on-commit enqueue never ran: a lost job
    assert rq_queue.count == 0
    jobs.sweep()
    assert [j.func_name for j in rq_queue.get_jobs()] == [notifications.DELIVER_JOB]


# --- never twice: two deliveries at once -------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL's SKIP LOCKED")
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_at_once_send_each_mail_once(policy) -> None:
    for name in ("bob", "erin", "frank", "gina"):
        factories.admin(name)
    for n in range(3):
        ChangeRequestFactory(
            requester=factories.team_lead(f"lead{n}"), spec=tutorial_spec(team=f"team{n}"), submitted=True
        )
    due = Notification.objects.filter(channel="mail").count()
    assert due == 3 * 4  # four admins each
    server = SmtpServer(_free_port(), Inbox(delay=0.05))
    server.start()
    barrier = threading.Barrier(2)
    outcomes: list[Any] = [None, None]

    def deliver(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[i] = delivery.notifications_deliver()
        finally:
            connection.close()

    try:
        with _smtp(server.port):
            threads = [threading.Thread(target=deliver, args=(i,)) for i in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
    finally:
        server.stop()
    assert all(o["sent"] > 0 for o in outcomes)  # both worked, on different rows
    assert sum(o["sent"] for o in outcomes) == due
    sent = sorted((tuple(rcpt), m["Subject"]) for rcpt, m in server.inbox.messages)
    assert len(sent) == len(set(sent)) == due


# --- what each event says, to whom -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_rejection_mails_the_requester_with_the_reason(policy, alice, bob, smtp) -> None:
    cr = ChangeRequestFactory(requester=alice, approver=bob, rejected=True, reason="No budget until March.")
    delivery.notifications_deliver()
    [mail] = smtp.inbox.to(alice.email)
    assert mail["Subject"] == f"Your request #{cr.pk} (new workspace, {cr.workspace_name}) was rejected"
    assert "Reason: No budget until March." in mail.get_content()


@pytest.mark.django_db
def test_failed_provisioning_mails_the_requester_and_the_admins_naming_the_failed_step(
    policy, alice, bob, smtp
) -> None:
    cr = ChangeRequestFactory(requester=alice, approver=bob, failed=True, failed_step="key_vault")
    delivery.notifications_deliver()
    step = cr.runs.get().steps.get(status="failed")
    for who in (alice, bob):
        [mail] = [m for m in smtp.inbox.to(who.email) if "failed" in m["Subject"]]
        assert f"Failed step: {step.target}: {step.error_code}" in mail.get_content()
    assert [m["Subject"] for m in smtp.inbox.to(alice.email)] == [
        f"Your request #{cr.pk} (new workspace, {cr.workspace_name}) was approved",
        f"Provisioning of request #{cr.pk} (new workspace, {cr.workspace_name}) failed",
    ]


@pytest.mark.django_db
def test_success_goes_to_the_requester_and_the_teams_own_channel(policy, alice, bob, webhook) -> None:
    url, cards = webhook
    TeamChannel.objects.create(department="bgmr", team="bluegranit", webhook_url=f"{url}/bgmr-team")
    cr = ChangeRequestFactory(requester=alice, approver=bob, spec=tutorial_spec(), succeeded=True)
    delivery.notifications_deliver()
    assert [m.kind for m in _mails(Kind.PROVISIONING_SUCCEEDED)] == [Kind.PROVISIONING_SUCCEEDED]
    titles = sorted((c["path"], c["body"]["attachments"][0]["content"]["body"][0]["text"]) for c in cards)
    what = f"request #{cr.pk} (new workspace, {cr.workspace_name})"
    assert titles == [
        ("/bgmr-team", f"Your {what} is provisioned"),
        ("/bgmr-team", f"Your {what} was approved"),
        ("/portal", f"New {what} waits for approval"),
    ]


@pytest.mark.django_db
def test_a_person_who_turned_a_kind_off_gets_no_mail_of_it(policy, alice, bob, client, smtp) -> None:
    erin = factories.admin("erin")
    client.force_login(bob)
    page = client.get(reverse("provisioning:notification_settings"))
    assert page.status_code == 200
    assert b'value="request_submitted"' in page.content
    on = [k for k in Kind.values if k != Kind.REQUEST_SUBMITTED]
    response = client.post(reverse("provisioning:notification_settings"), {"kind": on})
    assert response.status_code == 302
    assert NotificationPreference.objects.get(user=bob, kind=Kind.REQUEST_SUBMITTED).enabled is False
    assert AuditEvent.objects.filter(action="notification.preferences", object_id=str(bob.pk)).exists()

    ChangeRequestFactory(requester=alice, submitted=True)
    delivery.notifications_deliver()
    assert smtp.inbox.to(bob.email) == []
    assert len(smtp.inbox.to(erin.email)) == 1


@pytest.mark.django_db
def test_a_review_campaign_tells_the_workspaces_team_leads(policy, alice, bob, smtp) -> None:
    from provisioning.workflow import reviews

    ws = WorkspaceFactory(owner=alice)
    MembershipFactory(workspace=ws, principal_name="lead@contoso.com", persona="team_lead", state="active")
    MembershipFactory(workspace=ws, principal_name="sam@contoso.com", state="active")
    review = reviews.review_start(workspace_id=ws.pk, actor=bob)
    delivery.notifications_deliver()
    leads = {rcpt[0] for rcpt, m in smtp.inbox.messages if "Access review" in m["Subject"]}
    assert leads == {alice.email, "lead@contoso.com"}
    assert {r.link for r in _mails(Kind.REVIEW_TO_DO)} == {f"http://127.0.0.1:8000/reviews/{review.pk}/"}


@pytest.mark.django_db
def test_drift_found_tells_the_admins_once_per_reconcile(policy, active_workspace, bob) -> None:
    from tests.provisioning import observations

    started = timezone.now()
    observations.record(active_workspace, observations.resized(active_workspace, max_nodes=3))
    assert notifications.drift_found_notify(since=started) == 1
    notifications.drift_found_notify(since=started)  # the same reconcile told again: the same key
    [row] = _mails(Kind.DRIFT_FOUND)
    assert row.recipients == [bob.email]
    assert active_workspace.workspace_name in row.body


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://contoso.webhook.office.com/webhookb2/abc", None),
        ("http://127.0.0.1:9000/hook", None),
        ("http://contoso.webhook.office.com/webhookb2/abc", "the webhook must be an https:// URL"),
        ("https://" + "a" * 2000, "at most 2000 characters"),
        ("javascript:alert(1)", "not a URL"),
    ],
)
def test_teams_webhooks_are_https_urls_of_bounded_length(url: str, problem: str | None) -> None:
    assert webhook_url_problem(url) == problem


@pytest.mark.django_db
def test_a_reminder_is_one_mail_in_the_outbox_without_those_who_turned_it_off(policy, alice, smtp) -> None:
    from provisioning.workflow import expiry

    sam = factories.data_scientist("sam")
    NotificationPreference.objects.create(user=sam, kind=Kind.MEMBERSHIP_ENDING, enabled=False)
    ws = WorkspaceFactory(owner=alice)
    MembershipFactory(workspace=ws, principal_name="lead@contoso.com", persona="team_lead", state="active")
    MembershipFactory(
        workspace=ws,
        principal_name=sam.email,
        state="active",
        expires_at=timezone.now() + timedelta(days=2),
    )
    assert [r.days_before for r in expiry.membership_reminders_send()] == [3]
    delivery.notifications_deliver()
    [(rcpt, mail)] = smtp.inbox.messages
    assert "ends in 3 days" in mail["Subject"]
    # The member turned reminders off: the team leads (and the owner) are told, as for a group.
    assert (mail["To"], mail["Cc"]) == (f"{alice.email}, lead@contoso.com", None)
    assert sorted(rcpt) == sorted(["lead@contoso.com", alice.email])


@pytest.mark.django_db
def test_a_row_the_mail_backend_refuses_does_not_hold_up_the_others(policy, alice, bob, smtp) -> None:
    Notification.objects.create(
        kind=Kind.REQUEST_SUBMITTED,
        channel="mail",
        recipients=[bob.email],
        subject="two\nlines",  # a header Django refuses to send
        body="-",
        key="test:bad-header",
        next_attempt_at=timezone.now() - timedelta(minutes=1),
    )
    ChangeRequestFactory(requester=alice, submitted=True)
    assert delivery.notifications_deliver() == {"sent": 1, "not_sent": 1}
    bad = Notification.objects.get(key="test:bad-header")
    assert (bad.status, bad.attempts) == (Notification.Status.PENDING, 1)
    assert "BadHeaderError" in bad.last_error
    assert len(smtp.inbox.to(bob.email)) == 1
