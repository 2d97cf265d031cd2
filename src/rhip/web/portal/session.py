"""Signing in and out of the portal, and the language switch.

A sign-in is the platform's own password grant (argon2 hashes, lock-out, optional TOTP, throttled like the
token endpoint): the access token and the refresh token are kept in HttpOnly, SameSite=Strict cookies, never
seen by scripts. Signing out revokes the session's refresh token family, so the cookies are dead even if
copied.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.security.identity.errors import OAuthError
from rhip.web.auth import AttemptThrottle
from rhip.web.portal.clinician_glass import COOKIE_PREFIX as GLASS_PREFIX
from rhip.web.portal.core import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    REFRESH_COOKIE,
    Portal,
    PortalError,
    Viewer,
    guarded,
    home_of,
    session_cookies,
)
from rhip.web.portal.i18n import LANG_COOKIE, LANGUAGES, language
from rhip.web.portal.nav import PREFIX

FORM_LIMIT = 64 * 1024


def safe_next(target: str | None) -> str | None:
    """A page of the portal to return to after signing in (never another site)."""
    if not target:
        return None
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not parsed.path.startswith(PREFIX + "/") or "\\" in target:
        return None
    return target


def session_routes(portal: Portal, throttle: AttemptThrottle | None = None) -> list[Route]:
    """Sign-in, sign-out and the language switch."""
    attempts = throttle or AttemptThrottle()

    async def signin_page(request: Request) -> Response:
        """The sign-in form (a signed-in viewer goes to their home page)."""
        viewer = await portal.run_plain(lambda: portal.viewer(request))
        if viewer is not None:
            return RedirectResponse(home_of(viewer), status_code=303)
        return _form(request, "", status=200)

    def _form(request: Request, error: str, status: int, username: str = "") -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        response = portal.page(
            None,
            "signin.html",
            status,
            lang=language(request.cookies.get(LANG_COOKIE)),
            csrf=csrf,
            error=error,
            username=username,
            next=safe_next(request.query_params.get("next")) or "",
        )
        portal.apply_cookies(response, [(CSRF_COOKIE, csrf, None)])
        return response

    async def signin(request: Request) -> Response:
        """Check the password (and second factor); set the session cookies."""
        form = await request.form(max_fields=10, max_part_size=FORM_LIMIT)
        fields = {k: str(v) for k, v in form.items()}
        sent, cookie = fields.get("csrf", ""), request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(sent, cookie):
            return _form(request, "error.csrf", status=403)
        username = fields.get("username", "").strip()
        grant = {"grant_type": "password", "username": username, "password": fields.get("password", "")}
        if fields.get("totp"):
            grant["totp"] = fields["totp"].strip()
        address = request.client.host if request.client else None
        if attempts.wait(grant, address) > 0.0:
            return _form(request, "signin.throttled", status=429, username=username)
        try:
            issued = await portal.run_plain(lambda: portal.identity().token(grant, address=address))
        except OAuthError:
            # The same words for every failure: wrong password, unknown user, locked, missing code.
            return _form(request, "signin.refused", status=401, username=username)
        viewer_principal = await portal.run_plain(
            lambda: portal.identity().authenticate(issued["access_token"], address=address)
        )
        viewer = Viewer(viewer_principal, language(request.cookies.get(LANG_COOKIE)), cookie, address)
        target = safe_next(fields.get("next")) or home_of(viewer)
        response = RedirectResponse(target, status_code=303)
        # A fresh CSRF token with the fresh session.
        portal.apply_cookies(
            response, [*session_cookies(issued), (CSRF_COOKIE, secrets.token_urlsafe(24), None)]
        )
        return response

    async def signout(request: Request) -> Response:
        """Revoke the session (its refresh token family) and clear the cookies."""
        form = await request.form(max_fields=10, max_part_size=FORM_LIMIT)
        sent, cookie = str(form.get("csrf", "")), request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not secrets.compare_digest(sent, cookie):
            raise PortalError(403, "error.csrf")
        address = request.client.host if request.client else None
        for name in (REFRESH_COOKIE, ACCESS_COOKIE):
            token = request.cookies.get(name)
            if token:
                await portal.run_plain(
                    lambda token=token: portal.identity().revoke({"token": token}, address=address)  # type: ignore[misc]
                )
        response = RedirectResponse(f"{PREFIX}/signin", status_code=303)
        # The session's cookies, and break-the-glass reasons stated in it (they must not outlive it on a
        # shared workstation).
        glass = [name for name in request.cookies if name.startswith(GLASS_PREFIX)]
        for name in (ACCESS_COOKIE, REFRESH_COOKIE, CSRF_COOKIE, *glass):
            response.delete_cookie(name, path="/")
        return response

    async def switch_language(request: Request) -> Response:
        """Set the page language (zh-CN or en) and go back to the page the switch was pressed on."""
        wanted = request.query_params.get("to", "")
        back = safe_next(request.query_params.get("next")) or f"{PREFIX}/"
        response = RedirectResponse(back, status_code=303)
        if wanted in LANGUAGES:
            portal.apply_cookies(response, [(LANG_COOKIE, wanted, 365 * 24 * 3600)])
        return response

    return [
        Route(f"{PREFIX}/signin", signin_page, methods=["GET"]),
        Route(f"{PREFIX}/signin", signin, methods=["POST"]),
        Route(f"{PREFIX}/signout", guarded(portal, signout), methods=["POST"]),
        Route(f"{PREFIX}/lang", switch_language, methods=["GET"]),
    ]
