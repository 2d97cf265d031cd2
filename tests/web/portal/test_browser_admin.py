"""In the browser, as the demo administrator: the review queue, exchange errors, audit, accounts,
institutions and the platform's health."""

from __future__ import annotations

import pytest

from .browser import Ui, shared_ui
from .browser_region import Fhir, near_duplicates
from .conftest import PortalSite, RunningPortal

pytestmark = pytest.mark.integration


@pytest.fixture
def ui(portal_server: RunningPortal, portal_site: PortalSite) -> Ui:
    return shared_ui(portal_server, portal_site)


def test_decide_a_review_case(ui: Ui) -> None:
    _patient, case = near_duplicates(ui.base, "王", "芳", "110105194912310038")
    with ui.tab("demo-admin") as tab:
        tab.open("/portal/admin/review", "admin-review")
        links = tab.page.locator("table#review-cases a.case")
        assert links.count() >= 1, "the review queue shows no case"
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert f"/portal/admin/review/{case}" in hrefs, hrefs
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.locator(f"a.case[href$='/review/{case}']").first.click()
        tab.settle()
        compare = tab.page.locator("table#compare")
        assert compare.is_visible()
        assert compare.locator("tr.agree").count() >= 1, "no field agrees (name, birth date, gender do)"
        assert compare.locator("tr.disagree").count() >= 1, "no field disagrees (phone, address do)"
        assert tab.page.locator("#score").inner_text().strip()
        tab.shot("admin-review-case")
        tab.submit("form#decide button[name=decision][value=link]")
        tab.shot("admin-review-decided")
    admin = Fhir(ui.base)
    try:
        done = admin.get("Patient/$empi-review-list", status="all")
    finally:
        admin.close()
    decided = [
        {p["name"]: next((v for k, v in p.items() if k.startswith("value")), None) for p in item["part"]}
        for item in done.get("parameter", [])
        if item.get("name") == "item"
    ]
    mine = [d for d in decided if str(d.get("id")) == str(case)]
    assert mine and mine[0].get("status") in ("link", "linked"), mine


def test_exchange_errors(ui: Ui) -> None:
    with ui.tab("demo-admin") as tab:
        tab.open("/portal/admin/exchange", "admin-exchange")
        table = tab.page.locator("table#rejects")
        assert table.is_visible() and table.locator("th").count() >= 2
        replay = table.locator("button.replay")
        for i in range(replay.count()):
            assert replay.nth(i).inner_text().strip()


def test_audit_search(ui: Ui) -> None:
    with ui.tab("demo-admin") as tab:
        tab.open("/portal/admin/audit")
        form = tab.page.locator("form#audit-search")
        assert form.is_visible()
        with tab.page.expect_navigation(wait_until="load"):
            form.locator("button[type=submit], input[type=submit]").first.click()
        tab.settle()
        rows = tab.page.locator("table#audit-results tbody tr")
        assert rows.count() >= 1, "the audit log has entries (sign-ins, reads) but none is listed"
        tab.shot("admin-audit")


def test_accounts(ui: Ui) -> None:
    with ui.tab("demo-admin") as tab:
        tab.open("/portal/admin/accounts", "admin-accounts")
        users = tab.page.locator("table#users").inner_text()
        for username in ("demo-admin", "demo-doctor", "demo-resident"):
            assert username in users
        assert tab.page.locator("table#clients").count() == 1
        assert tab.page.locator("form#add-user").is_visible()


def test_institutions(ui: Ui) -> None:
    with ui.tab("demo-admin") as tab:
        tab.open("/portal/admin/institutions", "admin-institutions")
        rows = tab.page.locator("table#institutions tbody tr")
        assert rows.count() >= 1
        assert tab.page.locator("form#import-csv").count() == 1


def test_platform_health(ui: Ui) -> None:
    with ui.tab("demo-admin") as tab:
        tab.open("/portal/admin/health", "admin-health")
        charts = tab.page.locator(".chart")
        assert charts.count() >= 1
        for i in range(charts.count()):
            assert charts.nth(i).get_attribute("aria-label")
            assert charts.nth(i).locator("svg").count() >= 1, "a chart was not drawn"
        assert tab.page.locator("table#health-institutions").is_visible()
