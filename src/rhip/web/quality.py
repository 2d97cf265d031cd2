"""The data-quality figures over HTTP for the portal: ``GET /api/quality/report?month=YYYY-MM[&institution=X]``.

The figures are aggregates (counts, rates, rule ids, resource keys), yet they describe institutions' work,
so only administrators see them: a platform administrator without an institution (the commission's, the
region's) any institution's or the region's; an administrator bound to an institution only that one's (the
institution omitted means its own). A bearer token is needed as for the FHIR API; errors are
OperationOutcomes with the platform's codes (bad month or institution: 400 RHIP-QUAL-0001/0002).

:class:`QualityApi` also owns the scoring follower of a server (``rhip serve``), started and stopped by the
application's lifespan.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from rhip.bootstrap.container import Platform
from rhip.bootstrap.quality import build_quality, follow_quality
from rhip.core.errors import Forbidden, RhipError
from rhip.fhir.rest.outcome import dumps, outcome_for_error
from rhip.quality.follower import QualityFollower
from rhip.quality.report import month_period
from rhip.quality.service import QualityService
from rhip.security.principal import Principal, Role
from rhip.web.authn import RequestAuthenticator

REPORT_PATH = "/api/quality/report"
_ADMINS = frozenset({Role.ADMIN, Role.PLATFORM})


def allowed_institution(principal: Principal, asked: str | None) -> str | None:
    """The institution whose figures ``principal`` gets for ``asked`` (None: the region); Forbidden otherwise."""
    if principal.role not in _ADMINS:
        raise Forbidden("the data-quality figures are for administrators", code="RHIP-QUAL-0003")
    own = principal.institution
    if own is None:
        return asked
    if asked is not None and asked != own:
        raise Forbidden(
            "an institution's administrator sees its own institution's figures", code="RHIP-QUAL-0004"
        )
    return own


class QualityApi:
    """The route of the figures, over a lazily built quality service, and the server's follower."""

    def __init__(
        self,
        platform: Callable[[], Platform],
        auth: RequestAuthenticator,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self.platform = platform
        self.auth = auth
        self.limiter = limiter
        self._service: QualityService | None = None
        self._follower: QualityFollower | None = None
        self._lock = threading.Lock()

    def service(self) -> QualityService:
        """The quality service (built at first use, in a worker thread)."""
        with self._lock:
            if self._service is None:
                self._service = build_quality(self.platform())
            return self._service

    def follow(self) -> None:
        """Score new data in the background while the server runs (RHIP_QUALITY__FOLLOW)."""
        self._follower = follow_quality(self.platform(), self.service())

    def stop(self) -> None:
        """Stop the follower, if any."""
        if self._follower is not None:
            self._follower.stop()

    async def report(self, request: Request) -> Response:
        """The figures of a month as JSON."""
        credentials = self.auth.credentials(request)
        month = request.query_params.get("month", "")
        asked = request.query_params.get("institution") or None

        def work() -> dict[str, object]:
            principal = self.auth.principal(credentials)
            period = month_period(month, allowed_institution(principal, asked))
            return self.service().report(period).as_dict()

        try:
            figures = await anyio.to_thread.run_sync(work, limiter=self.limiter)
        except RhipError as error:
            headers = {"WWW-Authenticate": 'Bearer realm="rhip"'} if error.http_status == 401 else None
            return Response(
                dumps(outcome_for_error(error)),
                status_code=error.http_status,
                media_type="application/fhir+json",
                headers=headers,
            )
        return JSONResponse(figures)

    def routes(self) -> list[Route]:
        """The API's routes."""
        return [Route(REPORT_PATH, self.report, methods=["GET"])]
