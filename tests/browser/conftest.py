"""Fixtures of the browser journeys: Chromium, the live portal signing in with Entra ID, the stand-in, a worker.

- ``chromium`` (package): Debian's Chromium driven by Playwright, headless; the tests are skipped with the
  reason when Chromium or axe-core is missing (CI installs both).
- ``browser_standin`` (package): a stand-in of its own that also serves its sign-in pages over plain HTTP
  (``browser_http``), since a browser does not trust the stand-in's throwaway CA; the portal's app
  registration accepts the live server's callback and signed-out URLs.
- ``portal`` (function): the live server (pytest-django's, in-process and threaded, on the test database)
  with AUTH_MODE=entra and the Azure settings pointing at that stand-in, the tutorial's policy, and a
  directory of named people; fails if the test process connected anywhere beyond 127.0.0.1.
- ``tour`` (function): a fresh browser profile at 1366x768 whose pages ``Tour`` checks and photographs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from django.db import connections
from playwright.sync_api import Browser, sync_playwright

from accounts import entra
from provisioning.standin import StandIn
from provisioning.standin.state import App
from tests import factories
from tests.browser.tour import CHROMIUM, CHROMIUM_ARGS, Tour, missing_tools

# The directory the journeys sign in from: (UPN, display name, app roles).
PEOPLE = (
    ("lead@contoso.com", "Lena Lead", ["Portal.TeamLead"]),
    ("lead2@contoso.com", "Leo Lead", ["Portal.TeamLead"]),
    ("admin@contoso.com", "Ada Admin", ["Portal.Admin"]),
    ("scientist@contoso.com", "Sam Scientist", ["Portal.DataScientist"]),
    ("user1@contoso.com", "Uma User", []),
    ("user2@contoso.com", "Ulf User", []),
)
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


@pytest.fixture(scope="package")
def chromium() -> Iterator[Browser]:
    """Chromium for this package's tests only.

    Playwright's sync API keeps an asyncio loop running in this thread while it is started. Django then
    refuses database calls (it sees a running loop), and its per-context connections are new objects:
    the copy of the migrated data that ``serialized_rollback`` restores is kept on the connection made
    when the test database was created. So, while Playwright runs: the async check is off (the test
    code is synchronous all the same), the new connections get that copy, and they are closed at the
    end (an open one would keep PostgreSQL from dropping the test database).
    """
    reason = missing_tools()
    if reason:
        pytest.skip(reason)
    serialized = {c.alias: getattr(c, "_test_serialized_contents", None) for c in connections.all()}
    saved = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            for alias, contents in serialized.items():
                if contents is not None:
                    connections[alias]._test_serialized_contents = contents  # type: ignore[attr-defined]
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
            connections.close_all()
    finally:
        if saved is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = saved


@dataclass(frozen=True)
class BrowserStandIn:
    standin: StandIn
    app: App
    ca_bundle: str


@pytest.fixture(scope="package")
def browser_standin(live_server) -> Iterator[BrowserStandIn]:  # type: ignore[no-untyped-def]
    """A stand-in whose sign-in pages a browser can open, registered for the live server's URLs."""
    standin = StandIn(browser_http=True)
    standin.start()
    app = standin.register_app(
        "azureml-portal-web",
        redirect_uris=[f"{live_server.url}/accounts/callback/", f"{live_server.url}/accounts/signed-out/"],
    )
    try:
        yield BrowserStandIn(standin, app, standin.write_ca_bundle())
    finally:
        standin.stop()


@dataclass(frozen=True)
class Portal:
    """The running portal and the stand-in it uses, as the browser sees them."""

    url: str
    standin: StandIn
    signin_url: str  # the stand-in's plain-HTTP listener (authorize, logout)

    def origins(self) -> frozenset[str]:
        return frozenset(f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in (self.url, self.signin_url))


@pytest.fixture
def portal(  # type: ignore[no-untyped-def]
    live_server, browser_standin: BrowserStandIn, settings, monkeypatch, rq_queue, loopback_only
) -> Iterator[Portal]:
    """The live portal signing in through the stand-in's Entra ID, with the tutorial's policy."""
    standin = browser_standin.standin
    for name, value in standin.environment().items():
        setattr(settings, name, value == "true" if name.endswith("INSTANCE_DISCOVERY") else value)
    for name, value in standin.sign_in_environment(browser_standin.app).items():
        setattr(settings, name, value == "true" if name.endswith("INSTANCE_DISCOVERY") else value)
    for name in CA_VARIABLES:  # the portal (MSAL) and the workers trust the stand-in's CA
        monkeypatch.setenv(name, browser_standin.ca_bundle)
    entra.reset_caches()
    standin.reset()
    for upn, display_name, roles in PEOPLE:
        standin.add_user(upn, display_name=display_name, roles=roles)
    standin.add_group("datasciencegroup")
    factories.allow_tutorial_policy()
    yield Portal(url=live_server.url, standin=standin, signin_url=standin.browser_base_url)
    entra.reset_caches()
    standin.reset()
    assert loopback_only == [], f"the portal reached beyond 127.0.0.1: {loopback_only}"


@pytest.fixture
def tour(chromium: Browser, portal: Portal, request: pytest.FixtureRequest) -> Iterator[Tour]:
    """A fresh browser (no cookies) at laptop size; screenshots are named after the test unless it says."""
    tour = Tour(chromium, name=request.node.name.removeprefix("test_"), allowed_origins=portal.origins())
    try:
        yield tour
    finally:
        tour.close()
