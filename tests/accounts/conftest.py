"""Entra ID sign-in against the local stand-in: the portal's app registration, demo people, a sign-in helper.

The Django test client plays the browser on the portal's side; ``requests`` plays it on the stand-in's
(authorize with a ``login_hint``), exactly as a browser would follow the redirects.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.test import Client

from accounts import entra
from provisioning.standin import StandIn
from provisioning.standin.state import App

CALLBACK = "http://testserver/accounts/callback/"
SIGNED_OUT = "http://testserver/accounts/signed-out/"
# MSAL warns on every query-mode flow; the portal chooses query mode on purpose (see accounts.entra).
QUERY_MODE_WARNING = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended:UserWarning")
ROLES = {
    "admin": ["Portal.Admin"],
    "lead": ["Portal.TeamLead"],
    "scientist": ["Portal.DataScientist"],
    "nobody": [],
}


@pytest.fixture(scope="session")
def portal_app(azure_standin: StandIn) -> App:
    """The portal's own app registration (separate from the worker's identity)."""
    return azure_standin.register_app("azureml-portal-web", redirect_uris=[CALLBACK, SIGNED_OUT])


@pytest.fixture
def entra_mode(standin: StandIn, portal_app: App, settings, loopback_only: list[str]) -> Iterator[StandIn]:  # type: ignore[no-untyped-def]
    """AUTH_MODE=entra against the stand-in, with empty caches; fails if anything left 127.0.0.1."""
    for name, value in standin.sign_in_environment(portal_app).items():
        setattr(settings, name, value == "true" if name == "ENTRA_DISABLE_INSTANCE_DISCOVERY" else value)
    entra.reset_caches()
    yield standin
    entra.reset_caches()
    assert loopback_only == [], f"requests beyond 127.0.0.1: {loopback_only}"


@dataclass
class Person:
    upn: str
    object_id: str


@pytest.fixture
def people(entra_mode: StandIn) -> dict[str, Person]:
    """One directory user per persona, and one with no app role."""
    return {
        key: Person(f"{key}@contoso.com", entra_mode.add_user(f"{key}@contoso.com", roles=roles))
        for key, roles in ROLES.items()
    }


def start(client: Client, *, upn: str = "", next_url: str = "/") -> str:
    """Start a sign-in in this browser session; returns the stand-in's authorize URL."""
    query = {"next": next_url, **({"login_hint": upn} if upn else {})}
    response = client.get("/accounts/signin/", query)
    assert response.status_code == 302, response.content
    return str(response["Location"])


def authorize(auth_uri: str) -> str:
    """What the stand-in sends the browser back to (the callback URL with code and state)."""
    response = requests.get(auth_uri, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text
    return str(response.headers["Location"])


def answer_of(callback_url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(callback_url).query).items()}


def sign_in(client: Client, upn: str, *, next_url: str = "/"):  # type: ignore[no-untyped-def]
    """A whole sign-in; returns the portal's answer to the callback."""
    return client.get(authorize(start(client, upn=upn, next_url=next_url)))
