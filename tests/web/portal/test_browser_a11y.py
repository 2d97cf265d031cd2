"""Every portal page, in the browser: basic accessibility (labels, names, headings, language, axe-core's
serious and critical rules including colour contrast), the keyboard, and the phone layout."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from .browser import Tab, Ui, accessibility_problems, shared_ui, tab_to
from .browser_region import near_duplicates
from .conftest import PortalSite, RunningPortal

pytestmark = pytest.mark.integration
PHONE = (390, 844)  # an iPhone's viewport, in CSS pixels


@pytest.fixture
def ui(portal_server: RunningPortal, portal_site: PortalSite) -> Ui:
    return shared_ui(portal_server, portal_site)


@dataclass(frozen=True)
class Page:
    """A page to check: who looks at it, where it is, the status it answers with."""

    name: str
    username: str | None
    path: Callable[[Ui], str]
    status: int = 200


_CASES: dict[str, int] = {}


def open_case(ui: Ui) -> str:
    """A review case left open for the checks (made once)."""
    if ui.base not in _CASES:
        _CASES[ui.base] = near_duplicates(ui.base, "张", "伟", "11010519491231002X")[1]
    return f"/portal/admin/review/{_CASES[ui.base]}"


PAGES = [
    Page("signin", None, lambda ui: "/portal/signin"),
    Page("clinician-search", "demo-doctor", lambda ui: "/portal/clinician"),
    Page("clinician-record", "demo-doctor", lambda ui: f"/portal/clinician/patient/{ui.facts.cared.id}"),
    Page(
        "clinician-document",
        "demo-doctor",
        lambda ui: f"/portal/clinician/patient/{ui.facts.cared.id}/document/{ui.facts.document}",
    ),
    Page(
        "clinician-glass",
        "demo-doctor",
        lambda ui: f"/portal/clinician/patient/{ui.facts.strangers[-1].id}",
        403,
    ),
    Page("me", "demo-resident", lambda ui: "/portal/me"),
    Page("me-viewers", "demo-resident", lambda ui: "/portal/me/viewers"),
    Page("me-consent", "demo-resident", lambda ui: "/portal/me/consent"),
    Page("admin-review", "demo-admin", lambda ui: "/portal/admin/review"),
    Page("admin-review-case", "demo-admin", open_case),
    Page("admin-exchange", "demo-admin", lambda ui: "/portal/admin/exchange"),
    Page("admin-audit", "demo-admin", lambda ui: "/portal/admin/audit"),
    Page("admin-accounts", "demo-admin", lambda ui: "/portal/admin/accounts"),
    Page("admin-institutions", "demo-admin", lambda ui: "/portal/admin/institutions"),
    Page("admin-health", "demo-admin", lambda ui: "/portal/admin/health"),
    Page("admin-quality", "demo-admin", lambda ui: "/portal/admin/quality"),
    Page("admin-dictionaries", "demo-admin", lambda ui: "/portal/admin/dictionaries"),
]


def check(tab: Tab, page: Page, ui: Ui) -> None:
    if page.status >= 400:
        tab.allow(rf"status of {page.status}")
    tab.open(page.path(ui), status=page.status)
    problems = accessibility_problems(tab)
    assert not problems, f"{page.name}:\n" + "\n".join(problems)


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_accessibility(ui: Ui, page: Page) -> None:
    if page.username is None:
        context = ui.context()
        try:
            check(Tab(context.new_page(), ui.base), page, ui)
        finally:
            context.close()
    else:
        with ui.tab(page.username) as tab:
            check(tab, page, ui)


@pytest.mark.parametrize("lang", ["en"])
def test_accessibility_in_english(ui: Ui, lang: str) -> None:
    context = ui.context()
    try:
        tab = Tab(context.new_page(), ui.base)
        tab.open(f"/portal/lang?to={lang}&next=/portal/signin")
        assert tab.html_lang() == lang
        problems = accessibility_problems(tab)
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def test_the_resident_search_works_with_the_keyboard(ui: Ui) -> None:
    with ui.tab("demo-doctor") as tab:
        tab.open("/portal/clinician")
        tab_to(tab, "#q")
        tab.page.keyboard.type(ui.facts.cared.name)
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.keyboard.press("Enter")
        tab.settle()
        tab_to(tab, "table#residents a.resident", limit=60)
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.keyboard.press("Enter")
        tab.settle()
        assert "/portal/clinician/patient/" in tab.page.url


def no_horizontal_scroll(tab: Tab) -> None:
    widths = tab.page.evaluate(
        "({doc: document.documentElement.scrollWidth, body: document.body.scrollWidth, view: window.innerWidth})"
    )
    assert widths["doc"] <= widths["view"] and widths["body"] <= widths["view"], widths


def test_the_record_on_a_phone(ui: Ui) -> None:
    with ui.tab("demo-doctor", viewport=PHONE) as tab:
        tab.open(f"/portal/clinician/patient/{ui.facts.cared.id}")
        assert tab.page.locator("#vitals .chart svg").count() >= 1
        no_horizontal_scroll(tab)
        tab.shot("clinician-record-phone")


def test_my_record_on_a_phone(ui: Ui) -> None:
    with ui.tab("demo-resident", viewport=PHONE) as tab:
        tab.open("/portal/me")
        no_horizontal_scroll(tab)
        tab.shot("me-phone")
