"""The stand-in's sign-in endpoints, spoken to as a browser and as a confidential client would."""

from __future__ import annotations

import base64
import hashlib
import secrets
from typing import Any

import jwt
import pytest
import requests

from provisioning.standin import StandIn
from provisioning.standin.state import App
from tests.accounts.conftest import CALLBACK, SIGNED_OUT, answer_of


def _challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Browser:
    """Authorization requests and code redemptions made by hand."""

    def __init__(self, standin: StandIn, app: App) -> None:
        self.standin, self.app = standin, app
        self.base = f"{standin.base_url}/{standin.tenant_id}"
        self.verifier = secrets.token_urlsafe(48)

    def authorize(self, method: str = "GET", **overrides: str) -> requests.Response:
        params = {
            "client_id": self.app.client_id,
            "response_type": "code",
            "redirect_uri": CALLBACK,
            "scope": "openid profile email",
            "state": "s-1",
            "nonce": "n-1",
            "code_challenge": _challenge(self.verifier),
            "code_challenge_method": "S256",
            **overrides,
        }
        params = {k: v for k, v in params.items() if v}
        url = f"{self.base}/oauth2/v2.0/authorize"
        if method == "POST":
            return requests.post(url, data=params, allow_redirects=False, timeout=10)
        return requests.get(url, params=params, allow_redirects=False, timeout=10)

    def code(self, upn: str) -> str:
        return answer_of(self.authorize(login_hint=upn).headers["Location"])["code"]

    def redeem(self, code: str, **overrides: str) -> requests.Response:
        form = {
            "grant_type": "authorization_code",
            "client_id": self.app.client_id,
            "client_secret": self.app.secret,
            "code": code,
            "redirect_uri": CALLBACK,
            "code_verifier": self.verifier,
            **overrides,
        }
        return requests.post(f"{self.base}/oauth2/v2.0/token", data=form, timeout=10)


@pytest.fixture
def browser(standin: StandIn, portal_app: App, loopback_only: list[str]) -> Browser:
    return Browser(standin, portal_app)


@pytest.fixture
def lead(standin: StandIn) -> str:
    return standin.add_user("lead@contoso.com", display_name="Lena Lead", roles=["Portal.TeamLead"])


def _aadsts(response: requests.Response) -> list[int]:
    body: dict[str, Any] = response.json()
    return list(body["error_codes"])


def test_discovery_names_the_sign_in_endpoints(browser: Browser, standin: StandIn) -> None:
    config = requests.get(f"{browser.base}/v2.0/.well-known/openid-configuration", timeout=10).json()

    assert config["issuer"] == f"{standin.base_url}/{standin.tenant_id}/v2.0"
    assert config["authorization_endpoint"] == f"{browser.base}/oauth2/v2.0/authorize"
    assert config["jwks_uri"] == f"{browser.base}/discovery/v2.0/keys"
    assert config["end_session_endpoint"] == f"{browser.base}/oauth2/v2.0/logout"


def test_the_authorize_page_lists_the_directory_users(browser: Browser, lead: str, standin: StandIn) -> None:
    standin.add_user("nobody@contoso.com")

    page = browser.authorize()

    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Lena Lead" in page.text and "lead@contoso.com · Portal.TeamLead" in page.text
    assert "nobody@contoso.com · no app role" in page.text
    assert "<form method='post'" in page.text and "value='s-1'" in page.text


def test_picking_a_user_on_the_page_redirects_back_with_a_code(browser: Browser, lead: str) -> None:
    picked = browser.authorize("POST", login_hint="lead@contoso.com")

    assert picked.status_code == 302
    answer = answer_of(picked.headers["Location"])
    assert picked.headers["Location"].startswith(CALLBACK + "?")
    assert answer["state"] == "s-1" and answer["code"]


def test_an_unregistered_redirect_uri_or_app_gets_an_error_page(browser: Browser, lead: str) -> None:
    wrong_uri = browser.authorize(redirect_uri="https://evil.example/cb", login_hint="lead@contoso.com")
    wrong_app = browser.authorize(client_id="11111111-2222-4333-8444-555555555555")

    assert wrong_uri.status_code == 400 and "AADSTS50011" in wrong_uri.text
    assert "Location" not in wrong_uri.headers
    assert wrong_app.status_code == 400 and "AADSTS700016" in wrong_app.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_mode": "form_post"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_malformed_requests_are_answered_at_the_redirect_uri(
    browser: Browser, lead: str, overrides: dict[str, str], error: str
) -> None:
    answer = answer_of(browser.authorize(login_hint="lead@contoso.com", **overrides).headers["Location"])

    assert answer["error"] == error and answer["state"] == "s-1" and "code" not in answer


def test_a_code_redeems_for_a_signed_id_token_with_the_users_claims(
    browser: Browser, lead: str, standin: StandIn, portal_app: App
) -> None:
    response = browser.redeem(browser.code("lead@contoso.com"))

    assert response.status_code == 200
    body = response.json()
    assert "refresh_token" not in body and body["access_token"] in standin.state.tokens
    keys = requests.get(f"{browser.base}/discovery/v2.0/keys", timeout=10).json()["keys"]
    header = jwt.get_unverified_header(body["id_token"])
    (jwk,) = [k for k in keys if k["kid"] == header["kid"]]
    claims = jwt.decode(
        body["id_token"],
        jwt.PyJWK(jwk, algorithm="RS256").key,
        algorithms=["RS256"],
        audience=portal_app.client_id,
        issuer=f"{standin.base_url}/{standin.tenant_id}/v2.0",
    )
    assert header["alg"] == "RS256"
    assert (claims["tid"], claims["oid"], claims["nonce"]) == (standin.tenant_id, lead, "n-1")
    assert (claims["preferred_username"], claims["name"]) == ("lead@contoso.com", "Lena Lead")
    assert claims["roles"] == ["Portal.TeamLead"]
    assert claims["nbf"] <= claims["iat"] < claims["exp"]


def test_a_code_is_single_use(browser: Browser, lead: str) -> None:
    code = browser.code("lead@contoso.com")

    first, second = browser.redeem(code), browser.redeem(code)

    assert first.status_code == 200
    assert second.status_code == 400 and _aadsts(second) == [54005]


@pytest.mark.parametrize("verifier", ["not-the-verifier", ""])
def test_the_pkce_verifier_must_match_the_challenge(browser: Browser, lead: str, verifier: str) -> None:
    response = browser.redeem(browser.code("lead@contoso.com"), code_verifier=verifier)

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant" and _aadsts(response) == [501481]


def test_a_code_is_bound_to_its_client_and_redirect_uri(
    browser: Browser, lead: str, standin: StandIn
) -> None:
    other_uri = browser.redeem(browser.code("lead@contoso.com"), redirect_uri=SIGNED_OUT)
    other_client = browser.redeem(
        browser.code("lead@contoso.com"), client_id=standin.client_id, client_secret=standin.client_secret
    )
    wrong_secret = browser.redeem(browser.code("lead@contoso.com"), client_secret="nope")

    assert (other_uri.status_code, other_client.status_code, wrong_secret.status_code) == (400, 400, 401)


def test_logout_returns_only_to_a_registered_uri(browser: Browser) -> None:
    url = f"{browser.base}/oauth2/v2.0/logout"

    registered = requests.get(
        url, params={"post_logout_redirect_uri": SIGNED_OUT}, allow_redirects=False, timeout=10
    )
    elsewhere = requests.get(
        url, params={"post_logout_redirect_uri": "https://evil.example/"}, allow_redirects=False, timeout=10
    )

    assert (registered.status_code, registered.headers["Location"]) == (302, SIGNED_OUT)
    assert elsewhere.status_code == 200 and "signed out" in elsewhere.text


def test_the_browser_listener_serves_only_the_sign_in_pages_over_http(loopback_only: list[str]) -> None:
    with StandIn(browser_http=True) as standin:
        app = standin.register_app("web", redirect_uris=[CALLBACK])
        standin.add_user("lead@contoso.com")
        config = requests.get(
            f"{standin.base_url}/{standin.tenant_id}/v2.0/.well-known/openid-configuration",
            verify=standin.ca_pem_path,
            timeout=10,
        ).json()
        authorize = config["authorization_endpoint"]
        picked = requests.get(
            authorize,
            params={
                "client_id": app.client_id,
                "response_type": "code",
                "redirect_uri": CALLBACK,
                "scope": "openid",
                "login_hint": "lead@contoso.com",
            },
            allow_redirects=False,
            timeout=10,
        )
        arm = requests.get(f"{standin.browser_base_url}/subscriptions?api-version=2022-12-01", timeout=10)

    assert authorize == f"{standin.browser_base_url}/{standin.tenant_id}/oauth2/v2.0/authorize"
    assert authorize.startswith("http://127.0.0.1:")
    assert config["token_endpoint"].startswith("https://")
    assert picked.status_code == 302 and "code" in answer_of(picked.headers["Location"])
    assert arm.status_code == 404
    assert loopback_only == []
