"""Portal pages of the clinician area (being built)."""

from __future__ import annotations

from starlette.routing import Route

from rhip.web.portal.core import Portal


def routes(portal: Portal) -> list[Route]:
    """The area's routes."""
    return []
