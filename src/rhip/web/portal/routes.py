"""The portal's routes: sign-in, static files, and each area's pages (an explicit registry)."""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from rhip.bootstrap.container import Platform
from rhip.bootstrap.settings import Settings
from rhip.security.identity.service import IdentityService
from rhip.web.auth import AttemptThrottle
from rhip.web.authn import RequestAuthenticator
from rhip.web.portal import admin_directory, admin_operations, clinician, resident
from rhip.web.portal.assets import asset_routes
from rhip.web.portal.core import Portal, guarded, home_of
from rhip.web.portal.nav import PREFIX
from rhip.web.portal.session import session_routes

# Each area's routes, given the portal; the order is the order of registration.
AREAS: dict[str, Callable[[Portal], list[Route]]] = {
    "clinician": clinician.routes,
    "resident": resident.routes,
    "admin_directory": admin_directory.routes,
    "admin_operations": admin_operations.routes,
}


def portal_routes(
    current: Callable[[], Platform],
    identity: Callable[[], IdentityService],
    auth: RequestAuthenticator,
    settings: Settings,
    limiter: anyio.CapacityLimiter,
    throttle: AttemptThrottle | None = None,
) -> list[Route]:
    """Every route of the portal under ``/portal`` (``throttle``: the sign-in attempts' budget)."""
    portal = Portal(current, identity, auth, settings, limiter)

    async def home(request: Request) -> Response:
        """The viewer's home page by role, or the sign-in page."""
        viewer = await portal.signed_in(request)
        return RedirectResponse(home_of(viewer), status_code=303)

    routes = [
        *session_routes(portal, throttle),
        *asset_routes(),
        Route(PREFIX, guarded(portal, home)),
        Route(PREFIX + "/", guarded(portal, home)),
    ]
    for area in AREAS.values():
        routes += area(portal)
    return routes
