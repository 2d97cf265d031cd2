"""In the browser: signing in (in Chinese, the default), with the keyboard only, and the language switch."""

from __future__ import annotations

import httpx
import pytest

from .browser import Tab, Ui, shared_ui, tab_to
from .conftest import PortalSite, RunningPortal, password_of

pytestmark = pytest.mark.integration


@pytest.fixture
def ui(portal_server: RunningPortal, portal_site: PortalSite) -> Ui:
    return shared_ui(portal_server, portal_site)


def test_the_sign_in_page_is_chinese_and_signs_in(ui: Ui) -> None:
    context = ui.context()
    try:
        tab = Tab(context.new_page(), ui.base)
        tab.open("/portal/signin", "signin")
        assert tab.html_lang() == "zh-CN"
        assert tab.page.locator("h1").inner_text() == "登录"
        tab.page.fill("#username", "demo-doctor")
        tab.page.fill("#password", password_of("demo-doctor"))
        tab.submit("form[action$='/signin'] button[type=submit]")
        assert tab.page.url == ui.base + "/portal/clinician"
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["rhip_at"]["httpOnly"] and cookies["rhip_rt"]["httpOnly"]
        assert tab.page.evaluate("document.cookie").find("rhip_at") < 0  # scripts never see the session
    finally:
        context.close()


def test_a_wrong_password_shows_one_message(ui: Ui) -> None:
    context = ui.context()
    try:
        tab = Tab(context.new_page(), ui.base)
        tab.open("/portal/signin")
        tab.page.fill("#username", "demo-doctor")
        tab.page.fill("#password", "not-the-password")
        tab.allow(r"status of 401")
        tab.submit("form[action$='/signin'] button[type=submit]", status=401)
        assert tab.page.get_by_role("alert").inner_text().startswith("用户名、密码或验证码不正确")
        tab.shot("signin-refused")
    finally:
        context.close()


def test_sign_in_with_the_keyboard_only(ui: Ui) -> None:
    context = ui.context()
    try:
        tab = Tab(context.new_page(), ui.base)
        tab.open("/portal/signin")
        tab_to(tab, "#username")
        tab.page.keyboard.type("demo-stats")
        tab.page.keyboard.press("Tab")
        assert tab.page.evaluate("document.activeElement.id") == "password"
        tab.page.keyboard.type(password_of("demo-stats"))
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.keyboard.press("Enter")
        assert tab.page.url.startswith(ui.base + "/portal/admin/health"), tab.page.url
        # The skip link is the first stop and leads to the page's main content.
        tab.page.evaluate("document.activeElement && document.activeElement.blur()")
        tab.page.keyboard.press("Tab")
        assert tab.page.evaluate("document.activeElement.getAttribute('href')") == "#main"
    finally:
        context.close()


def test_switching_to_english_and_back(ui: Ui) -> None:
    context = ui.context()
    try:
        tab = Tab(context.new_page(), ui.base)
        tab.open("/portal/signin")
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.get_by_role("link", name="English").click()
        tab.settle()
        assert tab.html_lang() == "en" and tab.page.locator("h1").inner_text() == "Sign in"
        tab.shot("signin-en")
        # Signed in, the switch keeps its place: the clinician's workbench in English, then in Chinese.
        tab.page.fill("#username", "demo-cdc")
        tab.page.fill("#password", password_of("demo-cdc"))
        tab.submit("form[action$='/signin'] button[type=submit]")
        assert tab.page.url == ui.base + "/portal/clinician" and tab.html_lang() == "en"
        assert "Sign out" in tab.page.locator("header").inner_text()
        tab.shot("clinician-en")
        with tab.page.expect_navigation(wait_until="load"):
            tab.page.get_by_role("link", name="中文").click()
        tab.settle()
        assert tab.page.url == ui.base + "/portal/clinician" and tab.html_lang() == "zh-CN"
        assert "退出" in tab.page.locator("header").inner_text()
    finally:
        context.close()


def test_the_portal_has_an_icon(ui: Ui) -> None:
    # Browsers ask for an icon on a first visit: without one, every new visitor's console shows a 404.
    context = ui.context()
    try:
        tab = Tab(context.new_page(), ui.base)
        tab.open("/portal/signin")
        icon = tab.page.locator("link[rel~=icon]")
        if icon.count():
            href = str(icon.first.evaluate("el => el.href"))
            assert href.startswith("data:") or httpx.get(href, timeout=10).status_code == 200, href
        else:
            answer = httpx.get(ui.base + "/favicon.ico", timeout=10)
            assert answer.status_code == 200, "no <link rel=icon> in base.html and /favicon.ico is a 404"
    finally:
        context.close()
