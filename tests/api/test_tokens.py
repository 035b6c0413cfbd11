"""Personal access tokens: made on the profile page and shown once, stored hashed, named, expiring,
revocable, and every use audited with the token's name."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts import tokens
from accounts.models import PersonalAccessToken
from provisioning.models import AuditEvent
from tests.api.conftest import Api, token_of

pytestmark = pytest.mark.django_db


def test_the_profile_page_shows_a_new_token_once_and_keeps_only_its_hash(alice):
    browser = Client()
    browser.force_login(alice)
    made = browser.post("/accounts/profile/", {"name": "nightly import", "days": "30"})
    assert made.status_code == 200
    assert made["Cache-Control"].startswith("max-age=0") or "no-cache" in made["Cache-Control"]
    token = made.context["made"].token
    assert token.startswith("amlp_") and token in made.content.decode()
    row = PersonalAccessToken.objects.get(user=alice)
    assert row.name == "nightly import" and row.token_hash == tokens.token_hash(token)
    assert token not in str(PersonalAccessToken.objects.filter(pk=row.pk).values().first())
    assert token not in "".join(str(e.after) + e.message for e in AuditEvent.objects.all())
    again = browser.get("/accounts/profile/")
    assert token not in again.content.decode() and "nightly import" in again.content.decode()


def test_a_token_calls_the_api_as_its_owner_and_every_use_is_audited_with_its_name(alice):
    api = Api(token_of(alice, "ci pipeline"))
    assert api.get("requests/").status_code == 200
    assert api.get("workspaces/").status_code == 200
    used = AuditEvent.objects.filter(action="api_token.used").order_by("id")
    assert [(e.actor, e.after["name"], e.after["path"]) for e in used] == [
        (alice.username, "ci pipeline", "/api/v1/requests/"),
        (alice.username, "ci pipeline", "/api/v1/workspaces/"),
    ]
    assert PersonalAccessToken.objects.get(user=alice).last_used_at is not None
    assert {e.via for e in used} == {"api"}


def test_revoked_expired_and_unknown_tokens_are_refused_with_401(alice):
    token = token_of(alice)
    browser = Client()
    browser.force_login(alice)
    row = PersonalAccessToken.objects.get(user=alice)
    assert browser.post(f"/accounts/profile/tokens/{row.pk}/revoke/").status_code == 302
    revoked = Api(token).get("requests/")
    assert revoked.status_code == 401
    assert revoked["WWW-Authenticate"].startswith("Bearer")
    assert revoked.json() == {"detail": "the token is not valid: unknown, expired or revoked", "problems": []}

    expired = token_of(alice, "old")
    PersonalAccessToken.objects.filter(name="old").update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Api(expired).get("requests/").status_code == 401
    assert Api("amlp_" + "x" * 43).get("requests/").status_code == 401
    assert Api().get("requests/").status_code in (401, 403)
    assert AuditEvent.objects.filter(action="api_token.revoked", actor=alice.username).count() == 1


def test_only_the_owner_revokes_a_token(alice, charlie):
    token_of(alice)
    row = PersonalAccessToken.objects.get(user=alice)
    browser = Client()
    browser.force_login(charlie)
    assert browser.post(f"/accounts/profile/tokens/{row.pk}/revoke/").status_code == 403
    assert PersonalAccessToken.objects.get(pk=row.pk).revoked_at is None


@pytest.mark.parametrize(
    ("name", "days", "field"),
    [
        ("", 30, "name"),
        ("x" * 101, 30, "name"),
        ("evil\u202ename", 30, "name"),
        ("ok", 0, "days"),
        ("ok", 366, "days"),
    ],
)
def test_token_bounds_hold_in_the_service(alice, name, days, field):
    with pytest.raises(tokens.TokenError) as refused:
        tokens.token_create(user=alice, name=name, days=days)
    assert refused.value.field == field
    assert not PersonalAccessToken.objects.exists()


def test_a_person_holds_a_bounded_number_of_live_tokens(alice, settings):
    settings.API_TOKEN_MAX_LIVE = 2
    token_of(alice, "one")
    token_of(alice, "two")
    with pytest.raises(tokens.TokenError, match="revoke one first"):
        token_of(alice, "three")
