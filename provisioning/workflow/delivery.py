"""Delivering the outbox: mails over SMTP (Django's mail backend), cards to Teams incoming webhooks.

At least once, never twice for the same key: a worker claims a due row with ``SELECT ... FOR UPDATE SKIP
LOCKED`` (a second worker skips it and takes the next), sends, and marks it sent in the same transaction,
so the row stays locked while it is sent and no other worker can send it meanwhile. Only a worker dying
between the send and the commit sends it again. A failed send (SMTP or Teams down, refused) is retried
after 1, 2, 4 ... minutes, at most an hour apart, and given up after ``NOTIFICATION_MAX_ATTEMPTS``
(status failed, logged). The sweeper queues a delivery while due rows wait, so a restart loses nothing.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime, timedelta

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.utils import timezone

from provisioning.models import Notification, TeamChannel
from provisioning.workflow import notifications

logger = logging.getLogger(__name__)

Status = Notification.Status
BATCH = 100  # rows one job sends; it queues another when more are due
FIRST_RETRY = timedelta(minutes=1)
LAST_RETRY = timedelta(hours=1)


class DeliveryError(Exception):
    """A notification could not be sent this time (the server is down, refused it, timed out)."""


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: 1, 2, 4 ... minutes, at most an hour."""
    return min(FIRST_RETRY * 2 ** max(attempts - 1, 0), LAST_RETRY)


def _mail_send(n: Notification) -> None:
    message = EmailMessage(
        subject=n.subject,
        body=n.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=n.recipients,
        cc=n.cc,
        connection=get_connection(fail_silently=False),
    )
    try:
        message.send(fail_silently=False)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP: {exc.__class__.__name__}: {exc}") from exc


def webhook_url(channel: str) -> str:
    """The webhook URL of a Teams channel named in the outbox (empty: no longer set up)."""
    if channel == notifications.PORTAL_CHANNEL:
        return str(settings.TEAMS_WEBHOOK_URL)
    department, _, team = channel.removeprefix("teams:").partition("/")
    url = TeamChannel.objects.filter(department=department, team=team).values_list("webhook_url", flat=True)
    return url.first() or ""


def _teams_send(n: Notification) -> None:
    url = webhook_url(n.recipients[0])
    if not url:
        raise DeliveryError(f"Teams: no webhook set up for {n.recipients[0]}")
    try:
        response = requests.post(url, json=n.payload, timeout=settings.TEAMS_TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise DeliveryError(f"Teams: {exc.__class__.__name__}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"Teams: HTTP {response.status_code}")


def notification_send(n: Notification) -> None:
    """Send one notification on its channel; ``DeliveryError`` when it did not go."""
    if n.channel == Notification.Channel.MAIL:
        _mail_send(n)
    else:
        _teams_send(n)


def _failed(n: Notification, error: str, now: datetime) -> None:
    n.attempts += 1
    n.last_error = error[:2000]
    if n.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS:
        n.status = Status.FAILED
        logger.error("notification %s (%s) given up after %s attempts: %s", n.pk, n.key, n.attempts, error)
    else:
        n.next_attempt_at = now + retry_delay(n.attempts)
        logger.warning("notification %s not sent (attempt %s): %s; retried later", n.pk, n.attempts, error)
    n.save(update_fields=["attempts", "last_error", "status", "next_attempt_at"])


def notification_deliver_next(*, now: datetime | None = None) -> Notification | None:
    """Claim the next due notification, send it and record the outcome; None when none is due."""
    now = now or timezone.now()
    with transaction.atomic():
        n = (
            Notification.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")
            .first()
        )
        if n is None:
            return None
        try:
            notification_send(n)
        except DeliveryError as exc:
            _failed(n, str(exc), now)
            return n
        except Exception as exc:  # a row the backend refuses (a bad header) must not stop the rows after it
            _failed(n, f"{exc.__class__.__name__}: {exc}", now)
            return n
        n.status, n.sent_at, n.attempts, n.last_error = Status.SENT, timezone.now(), n.attempts + 1, ""
        n.save(update_fields=["status", "sent_at", "attempts", "last_error"])
    return n


def notifications_deliver(*, now: datetime | None = None, limit: int = BATCH) -> dict[str, int]:
    """Send the due notifications (at most ``limit``); counts of sent and not sent."""
    counts = {"sent": 0, "not_sent": 0}
    for _ in range(limit):
        n = notification_deliver_next(now=now)
        if n is None:
            return counts
        counts["sent" if n.status == Status.SENT else "not_sent"] += 1
    notifications.delivery_enqueue(reason="more due")
    return counts


def notifications_sweep(*, now: datetime | None = None) -> bool:
    """Queue a delivery while due notifications wait (their job was lost, or their retry is due)."""
    now = now or timezone.now()
    if Notification.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).exists():
        return notifications.delivery_enqueue(reason="sweep")
    return False
