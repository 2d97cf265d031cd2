"""In the browser, as the demo resident: my record, who has viewed it, my consent settings."""

from __future__ import annotations

import time

import httpx
import pytest

from .browser import Ui, shared_ui
from .browser_region import Fhir
from .conftest import PortalSite, RunningPortal

pytestmark = pytest.mark.integration


@pytest.fixture
def ui(portal_server: RunningPortal, portal_site: PortalSite) -> Ui:
    return shared_ui(portal_server, portal_site)


def test_my_record(ui: Ui) -> None:
    with ui.tab("demo-resident") as tab:
        tab.open("/portal/me", "me")
        assert tab.page.locator("#summary").is_visible()
        assert tab.page.locator("#documents").is_visible()
        assert tab.page.locator("h1").inner_text().strip()


def test_who_viewed_my_record(ui: Ui) -> None:
    me = ui.site.resident_patient
    for username in ("demo-admin", "demo-doctor"):  # others read the resident's record (audited)
        other = Fhir(ui.base, username)
        try:
            other.client.get(f"Patient/{me}")
            other.client.get("Encounter", params={"patient": me, "_count": "5"})
        finally:
            other.close()
    with ui.tab("demo-resident") as tab:
        rows = tab.page.locator("table#viewers tbody tr")
        deadline = time.monotonic() + 10  # reads reach the audit log in batches
        while True:
            tab.open("/portal/me/viewers")
            if rows.count() >= 1 or time.monotonic() > deadline:
                break
            tab.page.wait_for_timeout(1000)
        tab.shot("me-viewers")
        assert rows.count() >= 1, "nobody is listed, though demo-admin and demo-doctor just read the record"
        assert "demo-" in tab.page.locator("table#viewers").inner_text()


def test_consent_settings_are_saved(ui: Ui) -> None:
    with ui.tab("demo-resident") as tab:
        tab.open("/portal/me/consent", "me-consent")
        form = tab.page.locator("form#consent-form")
        assert form.is_visible()
        boxes = form.locator("input[name=deny_category]")
        assert boxes.count() >= 1
        box = boxes.first
        value = box.get_attribute("value")
        was = box.is_checked()
        try:
            box.set_checked(not was)
            tab.submit("#consent-save")
            tab.open("/portal/me/consent")
            again = tab.page.locator(f"form#consent-form input[name=deny_category][value='{value}']")
            assert again.is_checked() is (not was), "the consent setting was not saved"
        finally:
            # Put it back, so that the clinician's flows see what they expect.
            tab.open("/portal/me/consent")
            again = tab.page.locator(f"form#consent-form input[name=deny_category][value='{value}']")
            if again.count() and again.is_checked() is not was:
                again.set_checked(was)
                tab.submit("#consent-save")


def test_a_resident_cannot_open_the_workbench(ui: Ui) -> None:
    with ui.tab("demo-resident") as tab:
        tab.allow(r"status of 403")
        response = tab.page.goto(ui.base + "/portal/clinician")
        assert response is not None and response.status in (403, 404)
        assert response.status == 403, "the workbench is not built yet"
        tab.check()


def test_httpx_is_not_signed_in(ui: Ui) -> None:
    # The pages are the browser's: a bare client is sent to sign in.
    response = httpx.get(ui.base + "/portal/me", follow_redirects=False)
    assert response.status_code == 303 and "/portal/signin" in response.headers["location"]
