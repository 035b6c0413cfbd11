"""Entra ID access tokens for the portal's API: checked like the sign-in's id tokens (issuer, audience,
signature from the tenant's keys, expiry), delegated (the API's scope), the app roles giving the personas."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings

from accounts.models import User
from provisioning.models import AuditEvent, ChangeRequest
from tests.api.conftest import Api, token_of
from tests.factories import ChangeRequestFactory, tutorial_spec

pytestmark = pytest.mark.django_db
ROGUE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def test_an_admins_entra_token_approves_what_a_team_leads_personal_token_submitted(
    policy, alice, people, entra_mode, rq_queue
):
    lead = Api(token_of(alice))
    draft = lead.post(
        "requests/", {"kind": "new_workspace", "spec": tutorial_spec(team="entra").to_json()}
    ).json()
    assert lead.post(f"requests/{draft['id']}/submit/").json()["status"] == "submitted"

    admin = Api(_token(entra_mode, people["admin"].object_id))
    approved = admin.post(f"requests/{draft['id']}/approve/")
    assert approved.status_code == 200, approved.json()
    assert approved.json()["approver"] == "admin@contoso.com"
    user = User.objects.get(entra_object_id=people["admin"].object_id)
    assert AuditEvent.objects.get(request_id=draft["id"], action="request.approved").actor == user.username
    # The first call signed the user in (audited once); the next calls write nothing about the user.
    assert admin.get("requests/").status_code == 200
    assert AuditEvent.objects.filter(action="user.signed_in", actor=user.username).count() == 1


def test_a_team_leads_entra_token_cannot_approve(policy, alice, people, entra_mode):
    cr = ChangeRequestFactory(requester=alice, spec=tutorial_spec(team="noapprove"), submitted=True)
    lead = Api(_token(entra_mode, people["lead"].object_id))
    assert lead.post(f"requests/{cr.pk}/approve/").status_code == 404  # not theirs to see
    own = lead.post(
        "requests/", {"kind": "new_workspace", "spec": tutorial_spec(team="mine").to_json()}
    ).json()
    lead.post(f"requests/{own['id']}/submit/")
    assert lead.post(f"requests/{own['id']}/approve/").status_code == 403
    assert ChangeRequest.objects.get(pk=own["id"]).status == "submitted"


def _token(standin, object_id: str, **changes) -> str:  # type: ignore[no-untyped-def]
    """An access token for the portal's API (its app registration is the one the settings name)."""
    return standin.mint_access_token(object_id, client_id=settings.ENTRA_CLIENT_ID, **changes)


def _now() -> int:
    return int(time.time())


REFUSED = {
    "wrong audience": (lambda: {"claims": {"aud": "api://someone-else"}}, "Audience doesn't match"),
    "expired": (
        lambda: {"claims": {"iat": _now() - 7200, "nbf": _now() - 7200, "exp": _now() - 3600}},
        "Signature has expired",
    ),
    "wrong issuer": (
        lambda: {
            "claims": {"iss": "https://login.microsoftonline.com/0c3b5a3e-6a0b-4f43-9d0e-1f7a0d9b2c11/v2.0"}
        },
        "Invalid issuer",
    ),
    "bad signature": (lambda: {"key": ROGUE_KEY}, "Signature verification failed"),
    "alg none": (lambda: {"alg": "none"}, "algorithm 'none' is refused"),
    "app-only (no scope)": (lambda: {"claims": {"scp": None}}, 'missing the "scp" claim'),
    "another scope": (lambda: {"claims": {"scp": "User.Read"}}, "does not hold the portal's scope"),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_bad_access_token_is_refused_with_401(people, entra_mode, case):
    changes, reason = REFUSED[case]
    token = _token(entra_mode, people["admin"].object_id, **changes())
    refused = Api(token).get("requests/")
    assert refused.status_code == 401
    assert reason in refused.json()["detail"]
    assert not User.objects.filter(entra_object_id=people["admin"].object_id).exists()


def test_a_token_without_an_app_role_is_refused(people, entra_mode):
    refused = Api(_token(entra_mode, people["nobody"].object_id)).get("requests/")
    assert refused.status_code == 401 and "no app role" in refused.json()["detail"]


def test_a_role_removed_in_entra_is_gone_at_the_next_call(policy, people, entra_mode):
    object_id = people["admin"].object_id
    assert Api(_token(entra_mode, object_id)).get("capacity/").status_code == 200
    demoted = _token(entra_mode, object_id, claims={"roles": ["Portal.TeamLead"]})
    assert Api(demoted).get("capacity/").status_code == 403
