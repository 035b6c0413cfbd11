"""Local sign-in is throttled (django-axes) and every sign-in, failure, lockout and sign-out is audited,
for local passwords and for Entra ID; no password or token reaches the audit or the logs."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client, RequestFactory

from accounts.models import User
from portal.client_ip import client_ip
from provisioning.audit import audit_verify_chain
from provisioning.models import AuditEvent
from tests.accounts.conftest import QUERY_MODE_WARNING, authorize, sign_in, start

pytestmark = [pytest.mark.django_db, QUERY_MODE_WARNING]

PASSWORD = "a long local password"
WRONG = "not-the-password-42"


@pytest.fixture
def local(settings: Any) -> User:
    settings.AUTH_MODE = "local"
    return User.objects.create_user("dev", password=PASSWORD)


def _post(client: Client, password: str, username: str = "dev", ip: str = "10.0.0.7") -> Any:
    return client.post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip)


def _events(*actions: str) -> list[tuple[str, str, str]]:
    return [
        (e.action, e.actor, e.message) for e in AuditEvent.objects.filter(action__in=actions).order_by("id")
    ]


def _everything_written(caplog: Any) -> str:
    rows = AuditEvent.objects.values_list("actor", "before", "after", "message")
    return json.dumps(list(rows), default=str) + caplog.text + "".join(str(r.args) for r in caplog.records)


def test_the_sixth_wrong_password_in_a_row_is_throttled_even_with_the_right_one(
    client: Client, local: User, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(4):
        response = _post(client, WRONG)
        assert response.status_code == 200 and SESSION_KEY not in client.session
    # the fifth failure locks the username out from this address; its answer says so
    assert _post(client, WRONG).status_code == 429

    response = _post(client, PASSWORD)  # the sixth attempt, with the right password

    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert _events("user.sign_in_failed", "user.locked_out", "user.signed_in") == [
        *[("user.sign_in_failed", "dev", "wrong password")] * 4,
        # axes hears of the fifth failure first, and locks
        ("user.locked_out", "dev", "5 failed sign-ins: locked out for 15 minutes"),
        ("user.sign_in_failed", "dev", "wrong password"),
        ("user.sign_in_failed", "dev", "locked out: the password was not checked"),
    ]
    written = _everything_written(caplog)
    assert PASSWORD not in written and WRONG not in written
    assert audit_verify_chain()[1] is None


def test_the_lockout_is_per_username_and_address(client: Client, local: User) -> None:
    for _ in range(6):
        _post(client, WRONG)
    # the same person from another address, and another account from the first address, are not locked out
    assert _post(Client(), PASSWORD, ip="10.0.0.8").status_code == 302
    User.objects.create_user("colleague", password=PASSWORD)
    assert _post(Client(), PASSWORD, username="colleague").status_code == 302


def test_a_success_resets_the_count(client: Client, local: User) -> None:
    for _ in range(4):
        _post(client, WRONG)
    assert _post(client, PASSWORD).status_code == 302
    client.post("/accounts/logout/")
    for _ in range(4):
        _post(client, WRONG)
    assert _post(client, PASSWORD).status_code == 302


def test_local_sign_in_and_sign_out_are_audited(client: Client, local: User, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    assert _post(client, PASSWORD).status_code == 302
    assert client.post("/accounts/logout/").status_code == 302

    signed_in, signed_out = AuditEvent.objects.filter(action__startswith="user.").order_by("id")
    assert (signed_in.action, signed_in.actor, signed_in.object_id) == (
        "user.signed_in",
        "dev",
        str(local.pk),
    )
    assert signed_in.after == {"method": "local", "ip": "10.0.0.7"}
    assert (signed_out.action, signed_out.actor) == ("user.signed_out", "dev")
    assert PASSWORD not in _everything_written(caplog)


def test_an_unknown_username_is_audited_without_what_was_typed(client: Client, local: User) -> None:
    typed = "Secret-typed-in-the-wrong-field"
    _post(client, WRONG, username=typed)
    assert _events("user.sign_in_failed") == [("user.sign_in_failed", "unknown account", "no such account")]
    assert typed not in json.dumps(list(AuditEvent.objects.values()), default=str)


def test_the_client_address_behind_the_proxy_is_the_one_the_proxy_appended(settings: Any) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="10.1.1.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    settings.BEHIND_TLS_PROXY = False
    assert client_ip(request) == "10.1.1.1"  # a header the client wrote is not trusted without the proxy
    settings.BEHIND_TLS_PROXY = True
    assert client_ip(request) == "203.0.113.9"  # the forged first entry is ignored


def test_an_entra_sign_in_refusal_and_sign_out_are_audited(client: Client, people: Any) -> None:
    callback = authorize(start(client, upn=people["admin"].upn))
    assert client.get(callback.replace("state=", "state=x")).status_code == 400
    sign_in(client, people["lead"].upn)
    client.post("/accounts/logout/")

    lead = User.objects.get(entra_object_id=people["lead"].object_id)
    events = _events("user.sign_in_refused", "user.signed_in", "user.signed_out")
    assert events[0][:2] == ("user.sign_in_refused", "unknown account")
    assert "state" in events[0][2]
    assert [e[:2] for e in events[1:]] == [
        ("user.signed_in", lead.username),
        ("user.signed_out", lead.username),
    ]
    signed_out = AuditEvent.objects.get(action="user.signed_out")
    assert signed_out.after["method"] == "entra"


def test_a_process_without_sign_in_serves_no_sign_in_page(client: Client, settings: Any) -> None:
    settings.AUTH_MODE = "none"
    assert client.get("/accounts/login/").status_code == 403
    assert client.get("/admin/login/").status_code == 403
