"""Signing in and out of the portal, the language switch, static files and the page policy."""

from __future__ import annotations

from collections.abc import Callable

from starlette.testclient import TestClient

from .conftest import PortalSite, sign_in


def test_a_visitor_is_sent_to_sign_in(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app(None)
    response = client.get("/portal/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/portal/signin?next=")
    page = client.get("/portal/signin")
    assert "登录" in page.text and 'lang="zh-CN"' in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_sign_in_lands_on_the_role_home_and_sets_http_only_cookies(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    client = portal_app(None)
    response = sign_in(client, "demo-doctor")
    assert response.history and response.history[0].status_code == 303
    assert response.history[0].headers["location"] == "/portal/clinician"
    cookies = response.history[0].headers.get_list("set-cookie")
    session = [c for c in cookies if c.startswith(("rhip_at=", "rhip_rt="))]
    assert len(session) == 2 and all("HttpOnly" in c and "SameSite=strict" in c for c in session)


def test_a_wrong_password_is_refused_with_one_message(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app(None)
    wrong = sign_in(client, "demo-doctor", "not-the-password")
    unknown = sign_in(client, "nobody-here", "whatever-it-is")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名、密码或验证码不正确" in wrong.text and "用户名、密码或验证码不正确" in unknown.text
    assert client.cookies.get("rhip_at") is None


def test_sign_in_needs_the_forms_csrf_token(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app(None)
    client.get("/portal/signin")
    response = client.post(
        "/portal/signin",
        data={"username": "demo-doctor", "password": "demo-doctor-Pw!2026", "csrf": "forged"},
    )
    assert response.status_code == 403 and client.cookies.get("rhip_at") is None


def test_next_never_leaves_the_portal(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app(None)
    client.get("/portal/signin?next=https://evil.example/")
    csrf = client.cookies.get("rhip_csrf") or ""
    response = client.post(
        "/portal/signin",
        data={
            "username": "demo-admin",
            "password": "demo-admin-Pw!2026",
            "csrf": csrf,
            "next": "//evil.example/x",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"].startswith("/portal/")


def test_sign_out_revokes_the_session(
    portal_app: Callable[[str | None], TestClient], portal_site: PortalSite
) -> None:
    client = portal_app("demo-resident")
    access, refresh = client.cookies.get("rhip_at"), client.cookies.get("rhip_rt")
    assert access and refresh
    csrf = client.cookies.get("rhip_csrf") or ""
    out = client.post("/portal/signout", data={"csrf": csrf}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/portal/signin"
    # The old cookies, replayed, open nothing: the refresh token family and the access token are revoked.
    replay = portal_app(None)
    replay.cookies.set("rhip_at", access)
    replay.cookies.set("rhip_rt", refresh)
    response = replay.get("/portal/", follow_redirects=False)
    assert response.status_code == 303 and "/portal/signin" in response.headers["location"]


def test_the_language_switch_is_remembered(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app(None)
    switched = client.get("/portal/lang?to=en&next=/portal/signin", follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/portal/signin"
    page = client.get("/portal/signin")
    assert 'lang="en"' in page.text and "Sign in" in page.text
    assert (
        client.get("/portal/lang?to=xx&next=https://evil.example/", follow_redirects=False).headers[
            "location"
        ]
        == "/portal/"
    )


def test_static_files_come_from_the_package(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app(None)
    for name in ("portal.css", "portal.js", "vendor/htmx.min.js", "plotly.min.js"):
        response = client.get(f"/portal/static/v/{name}", headers={"accept-encoding": "gzip"})
        assert response.status_code == 200, name
        assert response.headers["cache-control"].startswith("public")
    assert client.get("/portal/static/v/../core.py").status_code == 404
    assert client.get("/portal/static/v/nothing.js").status_code == 404


def test_an_expired_access_token_is_renewed_once_for_racing_requests(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    client = portal_app("demo-cdc")
    refresh = client.cookies.get("rhip_rt")
    assert refresh
    # Two requests of one page, both carrying the same unusable access token and the same refresh token.
    # (one browser: one address; a copied refresh token used from elsewhere is not given the tokens)
    first, second = portal_app(None, "10.9.9.9"), portal_app(None, "10.9.9.9")  # type: ignore[call-arg]
    for racing in (first, second):
        racing.cookies.set("rhip_at", "expired.or.garbage")
        racing.cookies.set("rhip_rt", refresh)
    a = first.get("/portal/", follow_redirects=False)
    b = second.get("/portal/", follow_redirects=False)
    assert a.status_code == b.status_code == 303
    assert a.headers["location"] == b.headers["location"] == "/portal/clinician"
    set_a = [c for c in a.headers.get_list("set-cookie") if c.startswith("rhip_rt=")]
    set_b = [c for c in b.headers.get_list("set-cookie") if c.startswith("rhip_rt=")]
    assert len(set_a) == 1 and set_a == set_b  # one refresh, shared by both requests
    renewed = set_a[0].split(";")[0].removeprefix("rhip_rt=")
    assert renewed != refresh  # rotated
    # The session lives on with the new refresh token (the race was not taken for a stolen token's reuse).
    later = portal_app(None, "10.9.9.9")  # type: ignore[call-arg]
    later.cookies.set("rhip_rt", renewed)
    assert later.get("/portal/", follow_redirects=False).headers["location"] == "/portal/clinician"


def test_a_refresh_race_from_another_address_is_not_given_the_tokens(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    client = portal_app("demo-cdc")
    refresh = client.cookies.get("rhip_rt")
    assert refresh
    owner, thief = portal_app(None, "10.7.7.7"), portal_app(None, "10.8.8.8")  # type: ignore[call-arg]
    for c in (owner, thief):
        c.cookies.set("rhip_at", "expired.or.garbage")
        c.cookies.set("rhip_rt", refresh)
    assert owner.get("/portal/", follow_redirects=False).headers["location"] == "/portal/clinician"
    # The copied token, used again from elsewhere: reuse, so the session ends (sign in again).
    assert "/portal/signin" in thief.get("/portal/", follow_redirects=False).headers["location"]


def test_sign_out_without_its_csrf_token_is_refused_not_an_error(
    portal_app: Callable[[str | None], TestClient],
) -> None:
    visitor = portal_app(None)
    assert visitor.post("/portal/signout", data={"csrf": "forged"}).status_code == 403
    client = portal_app("demo-stats")
    assert client.post("/portal/signout", data={"csrf": "forged"}).status_code == 403
    assert client.get("/portal/", follow_redirects=False).headers["location"] == "/portal/admin/health"


def test_sign_out_forgets_break_the_glass_reasons(portal_app: Callable[[str | None], TestClient]) -> None:
    client = portal_app("demo-doctor")
    client.cookies.set("rhip_glass_abc", "sealed-reason", domain="testserver.local")
    csrf = client.cookies.get("rhip_csrf") or ""
    out = client.post("/portal/signout", data={"csrf": csrf}, follow_redirects=False)
    cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith("rhip_glass_abc=")]
    assert cleared and ("Max-Age=0" in cleared[0] or "expires=" in cleared[0].lower())
