"""The portal's browser harness: Playwright driving the system Chromium against a real ``rhip serve``.

One browser per test process, and one browser context per demo account, signed in once through the
sign-in form (the form's attempts are throttled per address, and a refresh-token family must not be
shared between contexts). Each test opens its own tab (:class:`Tab`), which records console errors and
page errors, fails on any, and saves full-page screenshots under ``var/test-artifacts/portal/`` (the
pictures of docs/portal.md).

Playwright's own browser downloads are never used: Debian's ``chromium`` (``/usr/bin/chromium``,
installed by ``make test``); without it the browser tests are skipped with a message saying so.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .browser_region import RegionFacts, region_facts
from .conftest import PortalSite, RunningPortal, password_of

ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "var" / "test-artifacts" / "portal"
CHROMIUM = Path(os.environ.get("RHIP_TEST_CHROMIUM", "/usr/bin/chromium"))
AXE = Path(__file__).parent / "assets" / "axe.min.js"
# Headless Chromium as root in a container: no sandbox (needs user namespaces), no /dev/shm, no GPU.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--hide-scrollbars"]
TIMEOUT_MS = 15_000


class Tab:
    """One page of a browser context, with what went wrong on it recorded."""

    def __init__(self, page: Any, base: str) -> None:
        self.page = page
        self.base = base
        self.errors: list[str] = []
        self.allowed: list[re.Pattern[str]] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on("dialog", lambda dialog: dialog.accept())  # data-confirm buttons: the user says yes
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type == "error":
            where = (message.location or {}).get("url") or self.page.url
            self.errors.append(f"console error on {self.page.url}: {message.text} ({where})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:  # named, since the console's "Failed to load resource" names no address
            self.errors.append(f"status of {response.status} for {response.request.method} {response.url}")

    def allow(self, pattern: str) -> None:
        """Accept console errors matching ``pattern`` (e.g. the 403 of a refused page, on purpose)."""
        self.allowed.append(re.compile(pattern))

    def open(self, path: str, shot: str | None = None, *, status: int = 200) -> Any:
        """Go to ``path`` (under the server), expect ``status``, check it is error-free, screenshot it."""
        response = self.page.goto(self.base + path, wait_until="load")
        assert response is not None, path
        got = response.status
        assert got == status, f"GET {path} → {got}, wanted {status}" + (
            " (page not built yet?)" if got == 404 else ""
        )
        self.settle()
        if shot:
            self.shot(shot)
        return response

    def settle(self) -> None:
        """Wait for scripts and charts: the network idle, and every declared chart drawn."""
        self.page.wait_for_load_state("networkidle")
        if self.page.locator(".chart[data-figure]").count():
            self.page.wait_for_function(
                "() => [...document.querySelectorAll('.chart[data-figure]')].every(c => c.dataset.drawn)"
            )
        self.check()

    def shot(self, name: str) -> Path:
        """Save a full-page screenshot as ``var/test-artifacts/portal/<name>.png``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def check(self) -> None:
        """Fail on any console or page error seen so far (the allowed ones aside)."""
        bad = [e for e in self.errors if not any(p.search(e) for p in self.allowed)]
        self.errors.clear()
        assert not bad, "errors in the browser:\n" + "\n".join(bad)

    def submit(self, button: str, *, status: int = 200) -> Any:
        """Click a submit ``button`` of a plain form and wait for the page it leads to."""
        with self.page.expect_navigation(wait_until="load") as navigation:
            self.page.locator(button).first.click()
        response = navigation.value
        assert response is not None and response.status == status, (
            f"{button} → {response.status if response else None}, wanted {status}"
        )
        self.settle()
        return response

    def html_lang(self) -> str:
        """The ``lang`` of the document."""
        return str(self.page.evaluate("document.documentElement.lang"))


@dataclass
class Ui:
    """The browser, the signed-in contexts by account, and facts of the region the tests look for."""

    server: RunningPortal
    site: PortalSite
    playwright: Any
    browser: Any
    contexts: dict[str, Any] = field(default_factory=dict)
    _facts: RegionFacts | None = None

    @property
    def base(self) -> str:
        """The server's address."""
        return self.server.url

    @property
    def facts(self) -> RegionFacts:
        """Residents and cases to use (found through the FHIR API as demo-admin, once)."""
        if self._facts is None:
            self._facts = region_facts(self.base, self.site)
        return self._facts

    def context(self, **options: Any) -> Any:
        """A fresh browser context (nobody signed in), closed with the browser."""
        return self.browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai", **options)

    def sign_in(self, context: Any, username: str) -> Tab:
        """Sign ``username`` in through the form in ``context``; the tab, on the home page."""
        tab = Tab(context.new_page(), self.base)
        tab.open("/portal/signin")
        tab.page.fill("#username", username)
        tab.page.fill("#password", password_of(username))
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.locator("form[action$='/signin'] button[type=submit]").click()
        assert "/portal/signin" not in tab.page.url, f"{username} could not sign in: {tab.page.url}"
        return tab

    def signed_in(self, username: str) -> Any:
        """The browser context of ``username``, signed in once per test process."""
        if username not in self.contexts:
            context = self.context()
            tab = self.sign_in(context, username)
            tab.page.close()
            self.contexts[username] = context
        return self.contexts[username]

    @contextmanager
    def tab(self, username: str, *, viewport: tuple[int, int] | None = None) -> Iterator[Tab]:
        """A new tab of ``username``'s context (closed afterwards)."""
        page = self.signed_in(username).new_page()
        if viewport:
            page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
        try:
            yield Tab(page, self.base)
        finally:
            page.close()

    def close(self) -> None:
        """Close the contexts, the browser and Playwright."""
        for context in self.contexts.values():
            context.close()
        self.contexts.clear()
        self.browser.close()
        self.playwright.stop()


_UIS: dict[str, Ui] = {}


def shared_ui(server: RunningPortal, site: PortalSite) -> Ui:
    """The test process's browser for ``server`` (started on first use; skipped without Chromium)."""
    if server.url in _UIS:
        return _UIS[server.url]
    if not CHROMIUM.exists():
        pytest.skip(
            f"the browser tests need the system Chromium at {CHROMIUM} (Debian: apt-get install chromium; "
            "`make test` installs it when run as root)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - a test dependency
        pytest.skip("the browser tests need the playwright package (pip install -e '.[test]')")
    for stale in list(_UIS.values()):  # another server (another test session): close its browser
        stale.close()
    _UIS.clear()
    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    ui = Ui(server, site, playwright, browser)
    _UIS[server.url] = ui
    return ui


@atexit.register
def close_shared() -> None:
    """Close the shared browser, if one is open (Playwright's sync API runs an event loop in this thread:
    other tests calling ``asyncio.run`` fail while it is open)."""
    for ui in _UIS.values():
        with contextlib.suppress(Exception):  # a browser that died is closed anyway
            ui.close()
    _UIS.clear()


# Basic accessibility, checked in the page: what axe-core reports aside, the plan's own rules.
CHECKS_JS = r"""() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const named = (el) => {
    if ((el.getAttribute("aria-label") || "").trim() || (el.getAttribute("title") || "").trim()) return true;
    const by = el.getAttribute("aria-labelledby");
    if (by && by.split(/\s+/).some((id) => (document.getElementById(id)?.textContent || "").trim())) return true;
    return false;
  };
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (el.getAttribute("name") ? `[name=${el.getAttribute("name")}]` : "");
  if (!(document.documentElement.getAttribute("lang") || "").trim()) problems.push("<html> has no lang");
  if (!document.title.trim()) problems.push("the page has no <title>");
  const h1 = document.querySelectorAll("h1");
  if (h1.length !== 1) problems.push(`${h1.length} <h1> elements (one wanted)`);
  let last = 0;
  for (const h of document.querySelectorAll("h1, h2, h3, h4, h5, h6")) {
    const level = Number(h.tagName[1]);
    if (level > last + 1) problems.push(`heading ${h.tagName} "${h.textContent.trim().slice(0, 30)}" skips a level after h${last}`);
    last = level;
  }
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (el.type === "hidden") continue;
    if (!(el.labels && el.labels.length) && !named(el)) problems.push(`${describe(el)} has no label`);
  }
  for (const el of document.querySelectorAll("img")) {
    if (!el.hasAttribute("alt")) problems.push(`img ${el.src} has no alt`);
  }
  for (const el of document.querySelectorAll(".chart")) {
    if (!named(el)) problems.push(`chart ${describe(el)} has no aria-label`);
  }
  for (const el of document.querySelectorAll("button, a[href], [role=button]")) {
    if (!visible(el) || el.closest(".chart")) continue;
    const text = (el.innerText || el.textContent || "").trim() || (el.querySelector("img[alt]")?.alt || "").trim();
    if (!text && !named(el)) problems.push(`${describe(el)} has no accessible name`);
  }
  return problems;
}"""

SERIOUS = ("serious", "critical")


def accessibility_problems(tab: Tab) -> list[str]:
    """The page's accessibility problems: the basic checks, then axe-core's serious and critical ones."""
    page = tab.page
    problems: list[str] = list(page.evaluate(CHECKS_JS))
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, not a <script> tag: the page policy forbids inline scripts.
        page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate(
        """async () => {
          const r = await axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
            resultTypes: ["violations"],
          });
          return r.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ") + ": " + (n.failureSummary || "").split("\\n")[1])}));
        }"""
    )
    for violation in result:
        if violation["impact"] in SERIOUS:
            problems.append(
                f"axe {violation['id']} ({violation['impact']}): {violation['help']} — "
                + "; ".join(violation["nodes"])
            )
    return problems


def tab_to(tab: Tab, selector: str, limit: int = 40) -> int:
    """Press Tab from the top of the page until ``selector`` has the focus; how many presses it took."""
    page = tab.page
    page.evaluate("document.activeElement && document.activeElement.blur()")
    target = page.locator(selector).first
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if target.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{selector} is not reached with the Tab key ({limit} presses)")
