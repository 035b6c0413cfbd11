"""Sign-in with Entra ID through real MSAL against the stand-in: personas, sessions, redirects, sign-out."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from django.contrib.auth import SESSION_KEY
from django.test import Client

from accounts.models import User
from provisioning.models import AuditEvent
from tests.accounts.conftest import QUERY_MODE_WARNING, SIGNED_OUT, answer_of, authorize, sign_in, start

pytestmark = [pytest.mark.django_db, QUERY_MODE_WARNING]

LANDING = {
    "admin": "/approvals/",
    "lead": "/requests/",
    "scientist": "/access/",
}


@pytest.mark.parametrize("who", ["admin", "lead", "scientist"])
def test_each_persona_signs_in_and_lands_on_its_page(client, people, entra_mode, who):
    person = people[who]

    response = sign_in(client, person.upn)

    assert (response.status_code, response["Location"]) == (302, "/")
    user = User.objects.get(entra_object_id=person.object_id)
    assert client.session[SESSION_KEY] == str(user.pk)
    assert user.entra_tenant_id == entra_mode.tenant_id
    assert user.username == f"entra.{entra_mode.tenant_id}.{person.object_id}"
    assert (user.upn, user.email) == (person.upn, person.upn)
    assert not user.has_usable_password()
    assert user.is_staff is (who == "admin")
    home = client.get("/")
    assert home.status_code == 302 and home["Location"].startswith(LANDING[who])
    event = AuditEvent.objects.get(action="user.signed_in")
    assert event.actor == user.username and event.object_id == str(user.pk)


def test_the_authorization_request_uses_pkce_query_mode_and_no_offline_access(client, people, entra_mode):
    auth_uri = start(client, upn=people["lead"].upn)

    query = answer_of(auth_uri)
    assert query["code_challenge_method"] == "S256" and query["code_challenge"]
    assert query["response_mode"] == "query"
    assert set(query["scope"].split()) == {"openid", "profile", "email"}
    assert query["state"] and query["nonce"]
    assert auth_uri.startswith(f"{entra_mode.base_url}/{entra_mode.tenant_id}/oauth2/v2.0/authorize?")


def test_users_are_keyed_by_object_id_not_by_email(client, people, entra_mode):
    local = User.objects.create_user("lead", email=people["lead"].upn, upn=people["lead"].upn)

    sign_in(client, people["lead"].upn)

    signed_in = User.objects.get(pk=client.session[SESSION_KEY])
    assert signed_in.pk != local.pk
    assert signed_in.entra_object_id == people["lead"].object_id


def test_the_session_key_changes_at_sign_in(client, people):
    callback = authorize(start(client, upn=people["scientist"].upn))
    before = client.session.session_key

    client.get(callback)

    assert before and client.session.session_key != before
    assert SESSION_KEY in client.session


def test_the_session_cookie_is_httponly_lax_and_bounded(client, people):
    response = sign_in(client, people["scientist"].upn)

    cookie = response.cookies["sessionid"]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie["max-age"] == 8 * 3600


@pytest.mark.parametrize(
    "next_url", ["https://evil.example", "//evil.example", "/\\evil.example", "javascript:alert(1)", ""]
)
def test_a_next_off_the_site_falls_back_to_the_home_page(client, people, next_url):
    response = sign_in(client, people["lead"].upn, next_url=next_url)

    assert (response.status_code, response["Location"]) == (302, "/")


def test_a_next_on_the_site_is_kept(client, people):
    response = sign_in(client, people["lead"].upn, next_url="/workspaces/?page=2")

    assert response["Location"] == "/workspaces/?page=2"


def test_a_callback_without_a_flow_in_the_session_is_refused(client, people, entra_mode):
    other = Client()
    callback = authorize(start(other, upn=people["admin"].upn))

    response = client.get(callback)

    assert response.status_code == 400
    assert SESSION_KEY not in client.session
    assert not User.objects.exists()


def test_a_state_that_does_not_match_is_refused(client, people):
    callback = authorize(start(client, upn=people["admin"].upn))

    response = client.get(callback.replace("state=", "state=x"))

    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_a_replayed_callback_is_refused(client, people):
    callback = authorize(start(client, upn=people["admin"].upn))
    assert client.get(callback).status_code == 302

    replay = client.get(callback)
    elsewhere = Client().get(callback)

    assert replay.status_code == 400
    assert elsewhere.status_code == 400


def test_an_attackers_code_in_a_victims_session_is_refused(client, people):
    attacker = answer_of(authorize(start(Client(), upn=people["admin"].upn)))
    victim = answer_of(authorize(start(client, upn=people["scientist"].upn)))

    response = client.get("/accounts/callback/", {"code": attacker["code"], "state": victim["state"]})

    assert response.status_code == 400
    assert SESSION_KEY not in client.session
    assert not User.objects.filter(entra_object_id=people["admin"].object_id).exists()


def test_an_id_token_for_another_sign_in_is_refused(client, people, entra_mode):
    entra_mode.tamper_next_id_token(claims={"nonce": "another-sign-in"})

    response = sign_in(client, people["admin"].upn)

    assert response.status_code == 400
    assert SESSION_KEY not in client.session


def test_an_error_from_entra_is_refused_without_echoing_its_text(client, people):
    state = answer_of(start(client, upn=people["admin"].upn))["state"]

    response = client.get(
        "/accounts/callback/",
        {"state": state, "error": "access_denied", "error_description": "Call +1 555 0100 now"},
    )

    assert response.status_code == 400
    assert "555" not in response.content.decode()


def test_no_app_role_gives_a_page_that_says_how_to_get_access(client, people):
    response = sign_in(client, people["nobody"].upn)

    assert response.status_code == 403
    page = response.content.decode()
    for role in ("Portal.Admin", "Portal.TeamLead", "Portal.DataScientist"):
        assert role in page
    assert "enterprise application" in page
    assert SESSION_KEY not in client.session
    assert AuditEvent.objects.filter(action="user.sign_in_refused").count() == 1


def test_a_removed_role_is_gone_at_the_next_sign_in(client, people, entra_mode):
    admin = people["admin"]
    sign_in(client, admin.upn)
    user = User.objects.get(entra_object_id=admin.object_id)
    assert user.is_staff and set(user.groups.values_list("name", flat=True)) == {"Admin"}

    entra_mode.set_roles(admin.object_id, ["Portal.DataScientist"])
    sign_in(Client(), admin.upn)
    user.refresh_from_db()
    assert not user.is_staff and set(user.groups.values_list("name", flat=True)) == {"Data Scientist"}

    entra_mode.set_roles(admin.object_id, [])
    assert sign_in(Client(), admin.upn).status_code == 403
    assert not user.groups.exists()


def test_an_admin_can_open_the_policy_settings(client, people):
    sign_in(client, people["admin"].upn)

    assert client.get("/admin/provisioning/allowedregion/").status_code == 200


def test_the_django_admins_sign_in_is_the_portals_not_a_password_form(client, people):
    response = client.get("/admin/provisioning/allowedregion/", follow=True)

    assert response.redirect_chain[-1][0] == "/accounts/login/?next=/admin/provisioning/allowedregion/"
    page = response.content.decode()
    assert 'type="password"' not in page and "Sign in with Microsoft" in page
    assert client.post("/admin/login/", {"username": "admin", "password": "x"}).status_code == 302
    sign_in(client, people["admin"].upn, next_url="/admin/provisioning/allowedregion/")
    assert client.get("/admin/login/?next=/admin/")["Location"] == "/admin/"


def test_the_django_admin_refuses_a_signed_in_team_lead_with_the_portals_403(client, people):
    sign_in(client, people["lead"].upn)

    response = client.get("/admin/login/?next=/admin/")

    assert response.status_code == 403
    assert 'type="password"' not in response.content.decode()


def test_the_django_admins_log_out_signs_out_of_entra_too(client, people, entra_mode):
    sign_in(client, people["admin"].upn)

    response = client.post("/admin/logout/")

    assert response.status_code == 200 and SESSION_KEY not in client.session
    assert f"{entra_mode.base_url}/{entra_mode.tenant_id}/oauth2/v2.0/logout?" in response.content.decode()
    assert client.get("/admin/logout/").status_code == 405


def test_a_disabled_user_is_refused(client, people):
    sign_in(Client(), people["lead"].upn)
    User.objects.filter(entra_object_id=people["lead"].object_id).update(is_active=False)

    response = sign_in(client, people["lead"].upn)

    assert response.status_code == 403
    assert SESSION_KEY not in client.session


def test_logout_is_post_only(client, people):
    sign_in(client, people["lead"].upn)

    assert client.get("/accounts/logout/").status_code == 405
    assert SESSION_KEY in client.session


def test_logout_ends_the_session_and_signs_out_of_entra(client, people, entra_mode):
    sign_in(client, people["lead"].upn)
    old_key = client.session.session_key

    response = client.post("/accounts/logout/")

    # A page of the portal moves the browser on (a cross-origin redirect of the POST would break CSP form-action)
    end_session = (
        f"{entra_mode.base_url}/{entra_mode.tenant_id}/oauth2/v2.0/logout?"
        "post_logout_redirect_uri=http%3A%2F%2Ftestserver%2Faccounts%2Fsigned-out%2F"
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<meta http-equiv="refresh" content="0;url={end_session.replace("&", "&amp;")}">' in page
    assert SESSION_KEY not in client.session and client.session.session_key != old_key
    back = requests.get(end_session, allow_redirects=False, timeout=10)
    assert back.headers["Location"] == SIGNED_OUT
    assert client.get("/accounts/signed-out/").status_code == 200


def test_no_token_or_code_reaches_the_logs(client, people, portal_app, caplog):
    caplog.set_level(logging.DEBUG)
    callback = authorize(start(client, upn=people["lead"].upn))
    (pending,) = client.session["entra_flows"].values()

    assert client.get(callback).status_code == 302

    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records, "the sign-in logged nothing at all: the check would prove nothing"
    assert not re.search(r"eyJ[\w-]+\.eyJ[\w-]+\.", logged), "a JWT was logged"
    for secret in (answer_of(callback)["code"], pending["flow"]["code_verifier"], portal_app.secret):
        assert secret not in logged


def test_local_mode_keeps_the_password_form_and_has_no_entra_routes(client, settings, db):
    settings.AUTH_MODE = "local"
    User.objects.create_user("dev", password="a long local password")

    assert client.get("/accounts/signin/").status_code == 404
    assert 'type="password"' in client.get("/accounts/login/").content.decode()
    response = client.post("/accounts/login/", {"username": "dev", "password": "a long local password"})
    assert response.status_code == 302 and SESSION_KEY in client.session
    assert client.get("/accounts/logout/").status_code == 405
    assert client.post("/accounts/logout/")["Location"] == "/accounts/login/"
    assert 'type="password"' in client.get("/admin/login/").content.decode()  # Django's own admin sign-in


def test_the_entra_login_page_offers_the_microsoft_button(client, entra_mode):
    page = client.get("/accounts/login/", {"next": "/access/"}).content.decode()

    assert "Sign in with Microsoft" in page
    assert "/accounts/signin/?next=/access/" in page
    assert 'type="password"' not in page


def test_an_unreachable_entra_gives_a_502_page(client, entra_mode):
    entra_mode.fail_next("entra.openid_configuration", status=503, times=3)

    response = client.get("/accounts/signin/")

    assert response.status_code == 502
    assert "could not be reached" in response.content.decode()
