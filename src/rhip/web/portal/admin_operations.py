"""Portal pages of the operators area (平台管理): the identity review queue (主索引待审), exchange errors
(交换错误) and platform health (平台运行); each concept in its own ``admin_ops_*`` module."""

from __future__ import annotations

from starlette.routing import Route

from rhip.web.portal import admin_ops_exchange, admin_ops_health, admin_ops_quality, admin_ops_review
from rhip.web.portal.core import Portal


def routes(portal: Portal) -> list[Route]:
    """The area's routes."""
    return [
        *admin_ops_review.routes(portal),
        *admin_ops_exchange.routes(portal),
        *admin_ops_health.routes(portal),
        *admin_ops_quality.routes(portal),
    ]
