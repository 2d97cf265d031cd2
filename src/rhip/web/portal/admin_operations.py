"""Portal pages of the operators area: the identity review queue, exchange errors, platform health (being built)."""

from __future__ import annotations

from starlette.routing import Route

from rhip.web.portal.core import Portal


def routes(portal: Portal) -> list[Route]:
    """The area's routes."""
    return []
