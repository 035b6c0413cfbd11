"""A browser tab that checks and photographs every page a journey shows.

``Tour.check(name)`` is called once per page of a journey (and once more when a page changes in place,
as htmx pages do). It saves a screenshot, runs axe-core in the page and fails on any violation of
impact serious or critical, and fails when the page does not fit a laptop screen (1366x768 and
1280x720) without scrolling sideways. The tab also records every request the browser makes, what the
console printed and the page errors, so a test can assert that nothing left 127.0.0.1 (no CDN) and
that the Content-Security-Policy refused nothing.

axe-core is evaluated into the page through the DevTools protocol (``page.evaluate``), which the page's
Content-Security-Policy does not govern: a ``<script>`` added to the page (``page.add_script_tag``) is
refused by the portal's strict policy, and switching the policy off (``bypass_csp``) would hide exactly
the violations these tests look for.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Locator, Page, Response

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LAPTOP = {"width": 1366, "height": 768}
SMALL_LAPTOP = {"width": 1280, "height": 720}
# Where screenshots go: every page of every journey. README's images: PORTAL_SCREENSHOTS_DIR=docs/screenshots.
SCREENSHOTS_DIR = ROOT / os.environ.get("PORTAL_SCREENSHOTS_DIR", "var/screenshots")
TIMEOUT_MS = 15_000
BENIGN_CONSOLE_ERRORS = ("Failed to load resource", "htmx:sendAbort", "htmx:afterRequest")

AXE_RUN = """async () => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({target: n.target.join(" "), html: n.html, summary: n.failureSummary})),
    }));
}"""
# Wider than the viewport means the page scrolls sideways. Elements that scroll inside themselves
# (tables in .table-responsive, code blocks) are fine: their overflow stays inside them.
OVERFLOW = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"


def missing_tools() -> str:
    """Why the browser tests cannot run here ("" when they can): CI installs both."""
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if not AXE.exists():
        return f"no axe-core at {AXE.relative_to(ROOT)} (npm ci)"
    return ""


def describe_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"- {v['id']} ({v['impact']}): {v['help']}")
        for node in v["nodes"][:8]:
            lines.append(f"    {node['target']}: {node['html'][:160]}")
            lines.append("      " + node["summary"].replace("\n", "\n      "))
    return "\n".join(lines)


class Tour:
    """One journey's browser, one person at a time, with what it requested and printed."""

    def __init__(self, browser: Browser, *, name: str, allowed_origins: frozenset[str]) -> None:
        self.browser = browser
        self.name = name
        self.allowed_origins = allowed_origins
        self.requests: list[str] = []
        self.failed_responses: list[str] = []
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.screens: list[Path] = []
        self._context: BrowserContext | None = None
        self.page = self.new_person()

    def new_person(self) -> Page:
        """A fresh browser profile (no cookies): the next person, at their own laptop."""
        self.close()
        self._context = self.browser.new_context(viewport=LAPTOP, accept_downloads=True, locale="en-GB")
        self._context.set_default_timeout(TIMEOUT_MS)
        page = self._context.new_page()
        page.on("request", lambda request: self.requests.append(request.url))
        page.on("response", self._record_response)
        page.on("console", self._record_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))
        self.page = page
        return page

    def close(self) -> None:
        if self._context is not None:
            self._context.close()
            self._context = None

    def _record_response(self, response: Response) -> None:
        if response.status >= 400:
            self.failed_responses.append(f"{response.status} {response.url}")

    def _record_console(self, message: ConsoleMessage) -> None:
        # Failed loads are in failed_responses, with their URL. htmx reports a poll that a page change
        # aborted (sendAbort, then afterRequest) as an error: that is the browser leaving, not a fault.
        if message.type == "error" and not message.text.startswith(BENIGN_CONSOLE_ERRORS):
            self.console_errors.append(message.text)

    # --- each page ----

    def check(self, name: str, *, focus: Locator | None = None) -> Path:
        """Photograph the page (scrolled to ``focus``), then check its accessibility and its width."""
        self.page.wait_for_load_state("load")
        if focus is not None:
            focus.scroll_into_view_if_needed()
        path = self.screenshot(name)
        self.assert_accessible(name)
        self.assert_fits_laptops(name)
        return path

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
        if not self.screens:  # an earlier tour's photographs, perhaps numbered otherwise, make way
            for stale in SCREENSHOTS_DIR.glob(f"{self.name}-[0-9][0-9]-*.png"):
                stale.unlink()
        path = SCREENSHOTS_DIR / f"{self.name}-{len(self.screens) + 1:02d}-{name}.png"
        self.page.screenshot(path=path, animations="disabled", caret="hide")
        self.screens.append(path)
        return path

    def assert_accessible(self, name: str) -> None:
        """No axe-core violation of impact serious or critical on the page as it is now."""
        if not self.page.evaluate("() => typeof axe !== 'undefined'"):
            self.page.evaluate(AXE.read_text(encoding="utf-8"))
        violations = self.page.evaluate(AXE_RUN)
        assert not violations, (
            f"axe-core: serious or critical violations on {name} ({self.page.url}):\n"
            + describe_violations(violations)
        )

    def assert_fits_laptops(self, name: str) -> None:
        """The page needs no sideways scrolling at 1366x768 nor at 1280x720."""
        try:
            for size in (LAPTOP, SMALL_LAPTOP):
                self.page.set_viewport_size(size)
                overflow = self.page.evaluate(OVERFLOW)
                assert overflow <= 0, (
                    f"{name} ({self.page.url}) is {overflow}px wider than a {size['width']}x{size['height']} screen"
                )
        finally:
            self.page.set_viewport_size(LAPTOP)

    # --- the whole journey ----

    def assert_stayed_local(self) -> None:
        """Every request went to the portal or the stand-in's sign-in pages (no CDN, nothing outside)."""
        elsewhere = [
            url
            for url in self.requests
            if urlsplit(url).scheme in ("http", "https")
            and f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" not in self.allowed_origins
        ]
        assert self.requests, "the browser made no request at all"
        assert elsewhere == [], f"requests beyond the portal and the stand-in: {elsewhere}"

    def assert_no_errors(self, *, expected_failures: tuple[str, ...] = ()) -> None:
        """No JavaScript error, nothing refused by the Content-Security-Policy, no failed load but these."""
        assert self.page_errors == [], f"JavaScript errors: {self.page_errors}"
        assert self.console_errors == [], f"console errors: {json.dumps(self.console_errors, indent=2)}"
        failed = [f for f in self.failed_responses if not any(f.endswith(e) for e in expected_failures)]
        assert failed == [], f"failed loads: {failed}"
