"""The id token is validated by the portal (MSAL only decodes it): signature, algorithm, issuer, audience,
tenant, lifetime with 120 s of leeway, nonce, required claims."""

from __future__ import annotations

import hashlib
import html
import time

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa
from django.contrib.auth import SESSION_KEY

from accounts.entra import EntraConfig, EntraSignIn, SignInError
from accounts.models import User
from tests.accounts.conftest import QUERY_MODE_WARNING, sign_in

pytestmark = [pytest.mark.django_db, QUERY_MODE_WARNING]

ROGUE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_TENANT = "0c3b5a3e-6a0b-4f43-9d0e-1f7a0d9b2c11"


def _now() -> int:
    return int(time.time())


REFUSED = {
    "wrong audience": ({"claims": {"aud": "11111111-2222-4333-8444-555555555555"}}, "Audience doesn't match"),
    "wrong issuer": (
        {"claims": {"iss": f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"}},
        "Invalid issuer",
    ),
    "wrong tenant": ({"claims": {"tid": OTHER_TENANT}}, "comes from another tenant"),
    "expired": (
        {"claims": {"iat": _now() - 7200, "nbf": _now() - 7200, "exp": _now() - 3600}},
        "Signature has expired",
    ),
    "not yet valid": ({"claims": {"nbf": _now() + 600}}, "not yet valid (nbf)"),
    "issued in the future": (
        {"claims": {"iat": _now() + 600, "nbf": _now() + 600, "exp": _now() + 4200}},
        "not yet valid (iat)",
    ),
    "bad signature": ({"key": ROGUE_KEY}, "Signature verification failed"),
    "unknown signing key": ({"key": ROGUE_KEY, "kid": "rogue-key"}, "a key the tenant does not publish"),
    "alg none": ({"alg": "none"}, "algorithm 'none' is refused"),
    "alg HS256": (
        {"alg": "HS256", "key": b"a shared secret the attacker chose, 32+ bytes long"},
        "algorithm 'HS256' is refused",
    ),
    "no oid": ({"claims": {"oid": None}}, 'missing the "oid" claim'),
    "no tid": ({"claims": {"tid": None}}, 'missing the "tid" claim'),
    "no nonce": ({"claims": {"nonce": None}}, "not issued for this sign-in (nonce)"),
    "no expiry": ({"claims": {"exp": None}}, 'missing the "exp" claim'),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_bad_id_token_is_refused(client, people, entra_mode, case):
    tamper, reason = REFUSED[case]
    entra_mode.tamper_next_id_token(**tamper)

    response = sign_in(client, people["admin"].upn)

    assert response.status_code == 400
    assert reason in html.unescape(response.content.decode())
    assert SESSION_KEY not in client.session
    assert not User.objects.exists()


@pytest.mark.parametrize(
    "offsets",
    [
        pytest.param({"iat": 90, "nbf": 90, "exp": 3690}, id="clock 90 s behind"),
        pytest.param({"iat": -3690, "nbf": -3690, "exp": -90}, id="clock 90 s ahead"),
    ],
)
def test_a_clock_90_seconds_off_is_accepted(client, people, entra_mode, offsets):
    # Seconds from now when the test runs (not when it is collected, minutes earlier in a full run).
    entra_mode.tamper_next_id_token(claims={claim: _now() + delta for claim, delta in offsets.items()})

    response = sign_in(client, people["admin"].upn)

    assert response.status_code == 302
    assert SESSION_KEY in client.session


def test_a_rotated_signing_key_is_fetched_when_first_seen(client, people, entra_mode):
    sign_in(client, people["lead"].upn)
    keys_fetched = entra_mode.state.count("entra.keys")

    entra_mode.rotate_signing_key()
    response = sign_in(client, people["lead"].upn)

    assert response.status_code == 302
    assert entra_mode.state.count("entra.keys") == keys_fetched + 1


def test_keys_are_fetched_once_for_many_sign_ins(client, people, entra_mode):
    for _ in range(3):
        sign_in(client, people["lead"].upn)

    assert entra_mode.state.count("entra.keys") == 1
    assert entra_mode.state.count("entra.token") == 3


@pytest.fixture
def validator(entra_mode, portal_app):  # type: ignore[no-untyped-def]
    """The validator with an injected HTTP client that trusts only the stand-in's CA."""
    session = requests.Session()
    session.verify = entra_mode.ca_pem_path
    session.trust_env = False
    config = EntraConfig(
        tenant_id=entra_mode.tenant_id,
        client_id=portal_app.client_id,
        client_secret=portal_app.secret,
        authority_host=entra_mode.base_url,
        disable_instance_discovery=True,
    )
    return EntraSignIn(config, http=session)


def _nonce_hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def test_the_validator_accepts_a_token_of_the_tenant_and_app(validator, people, entra_mode, portal_app):
    token = entra_mode.mint_id_token(
        people["lead"].object_id, client_id=portal_app.client_id, nonce=_nonce_hash("n-1")
    )

    claims = validator.validate_id_token(token, nonce="n-1")

    assert claims["oid"] == people["lead"].object_id
    assert claims["roles"] == ["Portal.TeamLead"]


def test_the_validator_refuses_a_token_for_another_app(validator, people, entra_mode):
    token = entra_mode.mint_id_token(people["lead"].object_id, nonce=_nonce_hash("n-1"))  # the worker's app

    with pytest.raises(SignInError, match=r"(?i)audience"):
        validator.validate_id_token(token, nonce="n-1")


def test_the_validator_refuses_another_nonce(validator, people, entra_mode, portal_app):
    token = entra_mode.mint_id_token(
        people["lead"].object_id, client_id=portal_app.client_id, nonce=_nonce_hash("n-1")
    )

    with pytest.raises(SignInError, match="nonce"):
        validator.validate_id_token(token, nonce="n-2")


def test_an_unknown_key_id_is_looked_up_once_a_minute_at_most(validator, people, entra_mode, portal_app):
    token = entra_mode.mint_id_token(
        people["lead"].object_id,
        client_id=portal_app.client_id,
        nonce=_nonce_hash("n"),
        key=ROGUE_KEY,
        kid="rogue",
    )

    for _ in range(3):
        with pytest.raises(SignInError, match="key the tenant does not publish"):
            validator.validate_id_token(token, nonce="n")

    assert entra_mode.state.count("entra.keys") == 1
