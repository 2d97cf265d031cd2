"""What every portal page shares: who is looking (the session's principal), the page language, rendering
with Jinja2, and calls into the platform that pass the security layer like any FHIR request.

Pages never read the store directly: :meth:`Portal.fhir` runs a FHIR interaction through the platform's
``FhirService`` under the viewer's principal (``acting_as``), so the policy, consent, labels and the audit
log treat a page exactly like the API. Operator pages that manage accounts, the resident index or the
exchange use those services' own methods, after :meth:`Portal.require` has checked the role.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, TypeVar
from urllib.parse import urlencode

import anyio
import orjson
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from rhip import __version__
from rhip.bootstrap.container import Platform
from rhip.bootstrap.settings import Settings
from rhip.core.errors import Forbidden, RhipError, Unauthenticated
from rhip.fhir.rest.messages import FhirRequest
from rhip.security.context import acting_as
from rhip.security.identity.service import IdentityService
from rhip.security.masking import mask_id_number, mask_phone
from rhip.security.principal import Principal, Role
from rhip.web.authn import Credentials, RequestAuthenticator
from rhip.web.portal.i18n import LANG_COOKIE, Messages, language
from rhip.web.portal.nav import PREFIX, home, links

T = TypeVar("T")

ACCESS_COOKIE = "rhip_at"
REFRESH_COOKIE = "rhip_rt"
CSRF_COOKIE = "rhip_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
# The portal's pages load only their own scripts and styles; plotly sets inline styles on its charts.
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
)
NO_STORE = {"Cache-Control": "no-store"}
REFRESH_GRACE_S = 30.0  # how long requests racing a session refresh share its new tokens
# Roles that may see whole ID numbers and phone numbers on screen (others see them masked).
UNMASKED_ROLES = frozenset({Role.CLINICIAN, Role.PUBLIC_HEALTH, Role.RESIDENT})


class PortalError(Exception):
    """A page cannot be shown: ``status`` and a message key (shown in the viewer's language)."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(key)
        self.status, self.key, self.detail = status, key, detail


@dataclass
class Viewer:
    """The person looking at a page: their principal, language, CSRF token and cookies to set."""

    principal: Principal
    lang: str
    csrf: str
    address: str | None
    set_cookies: list[tuple[str, str, int | None]] = field(default_factory=list)
    glass: str | None = None  # a break-the-glass reason stated for this request

    @property
    def role(self) -> Role:
        """The viewer's platform role."""
        return self.principal.role

    @property
    def username(self) -> str:
        """The account name (``user:<name>`` without its prefix)."""
        return self.principal.subject.partition(":")[2] or self.principal.subject

    def sees_whole_ids(self) -> bool:
        """Whether ID and phone numbers are shown unmasked to this viewer."""
        return self.role in UNMASKED_ROLES


class Portal:
    """The portal's shared machinery (one per application)."""

    def __init__(
        self,
        current: Callable[[], Platform],
        identity: Callable[[], IdentityService],
        auth: RequestAuthenticator,
        settings: Settings,
        limiter: anyio.CapacityLimiter,
    ) -> None:
        self.current = current
        self.identity = identity
        self.auth = auth
        self.settings = settings
        self.limiter = limiter
        self.messages = Messages.load()
        self._refreshes: dict[bytes, tuple[float, Mapping[str, Any]]] = {}
        self._refresh_lock = threading.Lock()
        self.templates = Environment(
            loader=PackageLoader("rhip.web.portal", "templates"),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates.filters["mask_id"] = mask_id_number
        self.templates.filters["mask_phone"] = mask_phone
        self.templates.filters["json"] = lambda v: orjson.dumps(v).decode()
        self.templates.globals["asset_version"] = asset_version()
        # Cookies travel over HTTPS only when the portal is reached over HTTPS (directly or behind a proxy).
        public = settings.server.public_base_url or ""
        self.secure_cookies = settings.server.tls_cert is not None or public.startswith("https://")

    # --- who is looking -------------------------------------------------------------------------
    def viewer(self, request: Request) -> Viewer | None:
        """The signed-in viewer of ``request`` (in a worker thread: a refresh may reach the database).

        An expired access token is renewed with the session's refresh token (rotated); None when there is
        no session or it has ended.
        """
        address = request.client.host if request.client else None
        lang = language(request.cookies.get(LANG_COOKIE))
        csrf = request.cookies.get(CSRF_COOKIE) or ""
        if not self.auth.enabled:
            return Viewer(self.auth.principal(Credentials(None, address)), lang, csrf, address)
        token, refresh = request.cookies.get(ACCESS_COOKIE), request.cookies.get(REFRESH_COOKIE)
        viewer: Viewer | None = None
        if token:
            try:
                viewer = Viewer(self.auth.principal(Credentials(token, address)), lang, csrf, address)
            except Unauthenticated:
                viewer = None
        if viewer is None and refresh:
            try:
                issued = self._refreshed(refresh, address)
            except Exception:  # an ended session (revoked, reused, expired): sign in again
                return None
            principal = self.auth.principal(Credentials(issued["access_token"], address))
            viewer = Viewer(principal, lang, csrf, address)
            viewer.set_cookies += session_cookies(issued)
        return viewer

    def _refreshed(self, refresh: str, address: str | None) -> Mapping[str, Any]:
        """New tokens for a session's refresh token, the same for requests that race with it.

        A page loads its sections in parallel, each with the same expired access token: refreshing the
        rotated-away token again would look like reuse and end the whole session, so one refresh is shared
        by the requests that carry the same refresh token within a short grace period.
        """
        # Keyed by the address too: a copied refresh token presented from elsewhere is not given the tokens.
        key = hashlib.sha256(f"{address}\n{refresh}".encode()).digest()
        now = time.monotonic()
        with self._refresh_lock:
            for stale in [k for k, (at, _) in self._refreshes.items() if now - at > REFRESH_GRACE_S]:
                del self._refreshes[stale]
            known = self._refreshes.get(key)
            if known is not None:
                return known[1]
            issued = self.identity().token(
                {"grant_type": "refresh_token", "refresh_token": refresh}, address=address
            )
            self._refreshes[key] = (now, issued)
            return issued

    async def signed_in(self, request: Request) -> Viewer:
        """The viewer, or :class:`PortalError` 401 (the page handler redirects to sign-in)."""
        viewer = await self.run_plain(lambda: self.viewer(request))
        if viewer is None:
            raise PortalError(401, "error.signin_needed")
        request.scope["rhip.viewer"] = viewer  # for the error page, should the handler fail
        if not viewer.csrf:
            viewer.csrf = secrets.token_urlsafe(24)
            viewer.set_cookies.append((CSRF_COOKIE, viewer.csrf, None))
        return viewer

    @staticmethod
    def require(viewer: Viewer, *roles: Role) -> None:
        """Refuse the page (403) unless the viewer has one of ``roles`` (the platform's processes do too)."""
        if viewer.role not in roles and viewer.role is not Role.PLATFORM:
            raise PortalError(403, "error.forbidden")

    @staticmethod
    async def check_csrf(request: Request, viewer: Viewer, form: Mapping[str, Any] | None = None) -> None:
        """Refuse a state-changing request whose CSRF token (form field or htmx header) is not the cookie's."""
        sent = request.headers.get(CSRF_HEADER) or (str(form.get(CSRF_FIELD, "")) if form else "")
        if not viewer.csrf or not secrets.compare_digest(sent, viewer.csrf):
            raise PortalError(403, "error.csrf")

    # --- doing things ---------------------------------------------------------------------------
    async def run_plain(self, job: Callable[[], T]) -> T:
        """``job`` in the portal's worker threads (no principal)."""
        return await anyio.to_thread.run_sync(job, limiter=self.limiter)

    async def run(self, viewer: Viewer, job: Callable[[], T]) -> T:
        """``job`` in a worker thread acting as the viewer (what the security layer and the audit see)."""

        def acting() -> T:
            with acting_as(viewer.principal, break_glass_reason=viewer.glass):
                return job()

        return await anyio.to_thread.run_sync(acting, limiter=self.limiter)

    def fhir(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
        *,
        missing_ok: bool = False,
    ) -> dict[str, Any] | None:
        """A FHIR interaction as the current principal (call inside :meth:`run`); the resource or Bundle.

        Refusals and errors become :class:`PortalError` with the OperationOutcome's text;
        ``missing_ok``: a 404 is None.
        """
        request = FhirRequest(
            method=method,
            path=path.strip("/"),
            query=list(query),
            headers={"accept": "application/fhir+json", "content-type": "application/fhir+json"},
            body=orjson.dumps(body) if body is not None else b"",
            base_url=PREFIX + "/fhir",
        )
        response = self.current().fhir.handle(request)
        content: dict[str, Any] = orjson.loads(response.body) if response.body else {}
        if response.status == 404 and missing_ok:
            return None
        if response.status >= 400:
            raise PortalError(response.status, _error_key(response.status), outcome_text(content))
        return content

    def search(self, resource_type: str, **params: str | int) -> list[dict[str, Any]]:
        """The resources a search finds (its first page; ``_count`` sets the page size)."""
        bundle = self.fhir("GET", resource_type, [(k.replace("__", ":"), str(v)) for k, v in params.items()])
        return [
            e["resource"]
            for e in (bundle or {}).get("entry", [])
            if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
        ]

    # --- showing things -------------------------------------------------------------------------
    def page(
        self,
        viewer: Viewer | None,
        template: str,
        status: int = 200,
        *,
        lang: str | None = None,
        csrf: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """The rendered page (or htmx fragment) in the viewer's language (``lang``/``csrf`` for visitors)."""
        lang = viewer.lang if viewer else (lang or "zh-CN")
        html = self.templates.get_template(template).render(
            viewer=viewer,
            lang=lang,
            t=lambda key, **values: self.messages.text(key, lang, **values),
            prefix=PREFIX,
            nav=links(viewer.role if viewer is not None else None),
            csrf=viewer.csrf if viewer else (csrf or ""),
            **context,
        )
        # The viewer's cookies (a renewed session) are set by guarded(), whatever the handler answers.
        return HTMLResponse(
            html, status_code=status, headers={**NO_STORE, "Content-Security-Policy": PAGE_CSP}
        )

    def apply_cookies(self, response: Response, cookies: Iterable[tuple[str, str, int | None]]) -> None:
        """Set the session's cookies: HttpOnly, SameSite=Strict, Secure when the portal is served over TLS."""
        for name, value, max_age in cookies:
            response.set_cookie(
                name,
                value,
                max_age=max_age,
                path="/",
                httponly=name != LANG_COOKIE,
                samesite="strict",
                secure=self.secure_cookies,
            )

    def failure(self, request: Request, viewer: Viewer | None, error: PortalError) -> Response:
        """The answer to a page that failed: sign-in for 401, else an error page (or fragment for htmx)."""
        if error.status == 401:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            if request.headers.get("hx-request"):
                return Response(status_code=401, headers={"HX-Redirect": f"{PREFIX}/signin"})
            return RedirectResponse(f"{PREFIX}/signin?" + urlencode({"next": target}), status_code=303)
        template = "fragments/error.html" if request.headers.get("hx-request") else "error.html"
        return self.page(viewer, template, status=error.status, error=error)


def asset_version() -> str:
    """What static URLs carry so that browsers fetch them again after an upgrade."""
    try:
        plotly = metadata.version("plotly")
    except metadata.PackageNotFoundError:  # pragma: no cover - a dependency
        plotly = "0"
    return f"{__version__}-{plotly}"


def session_cookies(issued: Mapping[str, Any]) -> list[tuple[str, str, int | None]]:
    """The cookies of a token response: the access token for its lifetime, the refresh token for the session."""
    cookies: list[tuple[str, str, int | None]] = [
        (ACCESS_COOKIE, str(issued["access_token"]), int(issued.get("expires_in", 300)))
    ]
    if issued.get("refresh_token"):
        cookies.append((REFRESH_COOKIE, str(issued["refresh_token"]), None))
    return cookies


def outcome_text(content: Mapping[str, Any]) -> str:
    """The diagnostics of an OperationOutcome, joined (its codes and texts name no resident)."""
    texts = [
        str(i.get("diagnostics") or (i.get("details") or {}).get("text") or i.get("code", ""))
        for i in content.get("issue", [])
    ]
    return "; ".join(t for t in texts if t)


def _error_key(status: int) -> str:
    return {401: "error.signin_needed", 403: "error.forbidden", 404: "error.not_found"}.get(
        status, "error.request"
    )


def error_of(exc: BaseException) -> PortalError:
    """A platform error as a portal error (its stable code shown, never a stack trace)."""
    if isinstance(exc, PortalError):
        return exc
    if isinstance(exc, Unauthenticated):
        return PortalError(401, "error.signin_needed")
    if isinstance(exc, Forbidden):
        return PortalError(403, "error.forbidden", exc.message)
    if isinstance(exc, RhipError):
        return PortalError(exc.http_status, "error.request", f"{exc.code}: {exc.message}")
    raise exc


def home_of(viewer: Viewer) -> str:
    """Where a viewer lands after signing in."""
    return home(viewer.role)


def guarded(portal: Portal, handler: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """``handler`` with its failures answered as pages: sign-in for 401, an error page otherwise.

    Platform errors carry stable codes and no personal data; anything else is the server's fault and is
    left to the application's error middleware (a 500 with an OperationOutcome, logged without data).
    """

    async def run(request: Request) -> Response:
        started = time.perf_counter()
        try:
            response: Response = await handler(request)
        except (PortalError, RhipError) as exc:
            error = error_of(exc)
            viewer = request.scope.get("rhip.viewer")
            response = portal.failure(request, viewer if isinstance(viewer, Viewer) else None, error)
        viewer = request.scope.get("rhip.viewer")
        if isinstance(viewer, Viewer) and viewer.set_cookies:
            # A renewed session (or a first CSRF token) travels with whatever the page answered.
            portal.apply_cookies(response, viewer.set_cookies)
        # The server's own time for the page (bench/portal.py and browsers' developer tools read it).
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
        return response

    return run
