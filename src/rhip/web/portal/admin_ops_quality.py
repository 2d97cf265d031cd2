"""Data quality (数据质控): a month's figures for the region or one institution — the same figures as
``GET /api/quality/report`` and the spreadsheet (docs/data-quality.md), for administrators.

Who sees what is the API's rule (:func:`rhip.web.quality.allowed_institution`): a platform administrator any
institution or the region, an institution's administrator its own. Counts, rule ids and resource keys only.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rhip.bootstrap.quality import build_quality
from rhip.quality.report import month_period
from rhip.quality.ruleset import FAMILIES
from rhip.quality.service import QualityService
from rhip.security.principal import Role
from rhip.web.portal.core import Portal, guarded
from rhip.web.portal.nav import PREFIX
from rhip.web.quality import allowed_institution

PAGE = "/admin/quality"
ZONE = ZoneInfo("Asia/Shanghai")


def routes(portal: Portal) -> list[Route]:
    """The data-quality page's route."""
    built: list[QualityService] = []
    lock = threading.Lock()

    def service() -> QualityService:
        with lock:
            if not built:
                built.append(build_quality(portal.current()))
            return built[0]

    async def quality(request: Request) -> Response:
        """Rates per family and rule, the daily trend, worst fields, delays and examples of a month."""
        viewer = await portal.signed_in(request)
        portal.require(viewer, Role.ADMIN)
        month = (request.query_params.get("month") or datetime.now(ZONE).strftime("%Y-%m")).strip()
        asked = (request.query_params.get("institution") or "").strip() or None

        def figures() -> dict[str, Any]:
            period = month_period(month, allowed_institution(viewer.principal, asked))
            return service().report(period).as_dict()

        report = await portal.run(viewer, figures)
        return portal.page(
            viewer,
            "admin_ops/quality.html",
            active=PAGE,
            here=request.url.path,
            month=month,
            institution=asked or "",
            fixed_institution=viewer.principal.institution,
            report=report,
            families=FAMILIES,
            percent=percent,
        )

    return [Route(PREFIX + PAGE, guarded(portal, quality))]


def percent(rate: float | None) -> str:
    """A rate as a percentage with one decimal ("–" when nothing was checked)."""
    return "–" if rate is None else f"{rate * 100:.1f}%"
