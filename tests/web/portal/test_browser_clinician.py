"""In the browser, as the demo clinician: find a resident, open the record and a document, break the glass."""

from __future__ import annotations

import pytest

from rhip.security.masking import mask_id_number

from .browser import Tab, Ui, shared_ui
from .conftest import PortalSite, RunningPortal

pytestmark = pytest.mark.integration
SECTIONS = ("#summary", "#vitals", "#timeline", "#labs", "#documents", "#holders")


@pytest.fixture
def ui(portal_server: RunningPortal, portal_site: PortalSite) -> Ui:
    return shared_ui(portal_server, portal_site)


def search(tab: Tab, words: str) -> None:
    """Type ``words`` into the resident search and submit it with the Enter key."""
    tab.page.fill("#resident-search #q", words)
    with tab.page.expect_navigation(wait_until="load"):
        tab.page.press("#resident-search #q", "Enter")
    tab.settle()


def test_find_a_resident_by_name(ui: Ui) -> None:
    resident = ui.facts.cared
    with ui.tab("demo-doctor") as tab:
        tab.open("/portal/clinician", "clinician-search")
        label = tab.page.locator("label[for=q]").inner_text()
        assert "身份证号" in label, label
        search(tab, resident.name)
        links = tab.page.locator("table#residents a.resident")
        hrefs = [links.nth(i).get_attribute("href") for i in range(links.count())]
        assert f"/portal/clinician/patient/{resident.id}" in hrefs, hrefs
        tab.shot("clinician-results")


def test_find_a_resident_by_id_number(ui: Ui) -> None:
    resident = ui.facts.cared
    assert resident.id_number
    with ui.tab("demo-doctor") as tab:
        tab.open("/portal/clinician")
        search(tab, resident.id_number)
        links = tab.page.locator("table#residents a.resident")
        assert links.count() >= 1
        assert links.first.get_attribute("href") == f"/portal/clinician/patient/{resident.id}"
        # Results are masked whatever the role (a name search must not list a region's ID numbers);
        # the record page, which the policy lets the clinician open, shows the whole number.
        listed = tab.page.locator("table#residents").inner_text()
        assert mask_id_number(resident.id_number) in listed and resident.id_number not in listed
        links.first.click()
        tab.page.wait_for_load_state()
        assert resident.id_number in tab.page.locator("main").inner_text()


def test_open_the_record(ui: Ui) -> None:
    resident = ui.facts.cared
    with ui.tab("demo-doctor") as tab:
        tab.open("/portal/clinician")
        search(tab, resident.name)
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.locator(f"a.resident[href$='/patient/{resident.id}']").first.click()
        tab.settle()
        assert tab.page.url.endswith(f"/portal/clinician/patient/{resident.id}")
        assert resident.name in tab.page.locator("h1").inner_text()
        for section in SECTIONS:
            assert tab.page.locator(section).is_visible(), f"{section} is not shown"
        chart = tab.page.locator("#vitals .chart")
        assert chart.count() >= 1 and chart.first.get_attribute("aria-label")
        assert chart.first.locator("svg").count() >= 1, "the blood-pressure chart was not drawn"
        assert tab.page.locator("#documents a.document").count() >= 1
        assert tab.page.locator("#timeline").inner_text().strip()
        tab.shot("clinician-record")


def test_open_a_document(ui: Ui) -> None:
    resident, document = ui.facts.cared, ui.facts.document
    with ui.tab("demo-doctor") as tab:
        tab.open(f"/portal/clinician/patient/{resident.id}")
        link = tab.page.locator(f"#documents a.document[href$='/document/{document}']")
        if not link.count():
            link = tab.page.locator("#documents a.document")
        with tab.page.expect_navigation(wait_until="load"):
            link.first.click()
        tab.settle()
        assert "/document/" in tab.page.url
        cda = tab.page.locator(".cda")
        assert cda.is_visible() and cda.inner_text().strip(), "the CDA document is not rendered"
        tab.shot("clinician-document")


def test_break_the_glass(ui: Ui) -> None:
    stranger = ui.facts.strangers[0]
    with ui.tab("demo-doctor") as tab:
        tab.allow(r"status of 403")  # the refusal is the point
        tab.open(f"/portal/clinician/patient/{stranger.id}", "clinician-glass", status=403)
        assert tab.page.locator("form#glass-form").is_visible()
        assert stranger.name not in tab.page.locator("main").inner_text()  # nothing shown before
        tab.page.fill("#glass-reason", "急诊抢救，患者昏迷无法表达意愿")
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.locator("#glass-submit").click()
        tab.settle()
        assert stranger.name in tab.page.locator("h1").inner_text()
        assert tab.page.locator(".notice").first.is_visible()
        assert tab.page.locator("#summary").is_visible()
        tab.shot("clinician-glass-record")


def test_the_glass_needs_a_reason(ui: Ui) -> None:
    stranger = ui.facts.strangers[1]
    with ui.tab("demo-doctor") as tab:
        tab.allow(r"status of 4\d\d")
        tab.open(f"/portal/clinician/patient/{stranger.id}", status=403)
        # An empty reason (refused by the browser or by the server) opens nothing.
        tab.page.locator("#glass-submit").click()
        tab.page.wait_for_load_state("load")
        tab.page.wait_for_timeout(300)
        assert stranger.name not in tab.page.locator("main").inner_text()
        assert not tab.page.locator("#summary").count()
