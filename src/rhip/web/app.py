"""The ASGI application: the FHIR API at /fhir (bearer tokens, security headers, rate limits), the token
endpoint at /auth, HL7 v3 at /hl7v3, health and readiness probes, Prometheus metrics."""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rhip import __version__
from rhip.bootstrap.container import Platform, build_platform, settle_heap
from rhip.bootstrap.logging import configure_logging
from rhip.bootstrap.settings import Settings
from rhip.core.errors import InvalidRequest, Issue, PayloadTooLarge, RhipError
from rhip.exchange.hl7v3.registry import GROUPS as V3_GROUPS
from rhip.exchange.hl7v3.service import V3Service
from rhip.fhir.definitions import structure
from rhip.fhir.events import ResourceChanged
from rhip.fhir.rest.messages import FHIR_JSON, FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, outcome
from rhip.fhir.rest.service import error_response
from rhip.security.context import acting_as
from rhip.security.identity.service import IdentityService
from rhip.web.auth import AttemptThrottle, auth_routes
from rhip.web.authn import RequestAuthenticator, glass_reason, rate_key
from rhip.web.hardening import hardening_middleware
from rhip.web.hl7v3 import hl7v3_routes
from rhip.web.mllp import V2Listener, start_v2_listener
from rhip.web.portal import portal_routes
from rhip.web.quality import QualityApi

log = logging.getLogger("rhip.web")
FHIR_CONTENT_TYPE = "application/fhir+json; charset=utf-8"


class Metrics:
    """The Prometheus metrics of one application instance.

    With ``multiprocess_dir`` (``PROMETHEUS_MULTIPROC_DIR``, set by ``rhip serve`` for several workers)
    every worker writes its values to files there and a scrape of any worker sums them all
    (prometheus_client's multiprocess mode); otherwise the values live in this process.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        # prometheus_client picks file-backed values when it is imported with the variable set; an
        # application built without it (tests, one worker) keeps its own registry.
        self.multiprocess_dir = (
            multiprocess_dir if multiprocess_dir and values.ValueClass is not values.MutexValue else None
        )
        if multiprocess_dir and self.multiprocess_dir is None:
            log.warning(
                "PROMETHEUS_MULTIPROC_DIR was set after prometheus_client was imported; metrics are per process"
            )
        self.registry = CollectorRegistry()
        own: CollectorRegistry | None = self.registry
        if self.multiprocess_dir is not None:
            multiprocess.MultiProcessCollector(self.registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
            own = None  # the collector reads every process's files, this one's included
        self.requests = Counter(
            "rhip_http_requests", "HTTP requests", ["method", "route", "status"], registry=own
        )
        self.latency = Histogram(
            "rhip_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=own,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.writes = Counter(
            "rhip_fhir_writes", "Resources written", ["resource_type", "event"], registry=own
        )
        # Summed over the live workers; a worker's share is dropped when it stops (close()).
        self.in_flight = Gauge(
            "rhip_http_in_flight", "Requests being served", registry=own, multiprocess_mode="livesum"
        )

    def close(self) -> None:
        """Forget this process's live gauges (the worker is stopping)."""
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


# Labels and log fields are built from these only, so that a path's ids, names or other text never reach
# them (and the number of label values stays bounded).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
PROBES = frozenset({"healthz", "readyz", "metrics"})
SYSTEM_PATHS = frozenset({"metadata", "_history"})
PATH_WORDS = frozenset({"_history", "_search"})
OPERATIONS = frozenset({"$everything", "$validate"})
_ERROR_CODE = re.compile(rb'"system":"urn:rhip:error-code","code":"(RHIP-[A-Z]+-[0-9]+)"')
OBSERVED = "rhip.observe"  # scope key of the middleware's per-request record


# First path segments of the portal's pages (metrics label them; anything else is "portal").
PORTAL_AREAS = frozenset({"signin", "signout", "lang", "static", "clinician", "me", "admin"})


def _word(segment: str, resource_types: frozenset[str]) -> str:
    if segment in PATH_WORDS or segment in OPERATIONS or segment in resource_types:
        return segment
    if segment.startswith("$"):
        return "$other"
    return "*"


def classify(path: str) -> tuple[str, str | None]:
    """The route kind of a path (a low-cardinality label, never an id or other text from the path) and its
    resource type (None when it names none)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/", None
    if parts[0] == "hl7v3":
        group = parts[1] if len(parts) == 2 and parts[1] in V3_GROUPS else ""
        return (f"hl7v3:{group}" if group else "hl7v3"), None
    if parts[0] == "portal":
        area = parts[1] if len(parts) > 1 and parts[1] in PORTAL_AREAS else ""
        return (f"portal:{area}" if area else "portal"), None
    if parts[0] != "fhir":
        return ("/" + parts[0] if parts[0] in PROBES and len(parts) == 1 else "other"), None
    if len(parts) == 1:
        return "fhir:base", None
    head = parts[1]
    types = structure().resource_types
    if head not in types:
        if len(parts) == 2 and head in SYSTEM_PATHS:
            return f"fhir:{head}", None
        return ("fhir:$other" if head.startswith("$") else "fhir:other"), None
    tail = parts[2:]
    if not tail:
        kind = "type"
    elif len(tail) == 1 and not tail[0].startswith(("_", "$")):
        kind = "instance"
    else:
        kind = "/".join(_word(t, types) for t in tail)
    return f"fhir:{head}:{kind}", head


def error_code(body: bytes | None) -> str | None:
    """The first ``RHIP-…`` code of an OperationOutcome body."""
    found = _ERROR_CODE.search(body) if body else None
    return found.group(1).decode() if found else None


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"The body is larger than the limit of {limit // (1024 * 1024)} MB")
        except ValueError as exc:
            raise InvalidRequest("Content-Length is not a number") from exc
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is larger than the limit of {limit // (1024 * 1024)} MB")
        chunks.append(chunk)
    return b"".join(chunks)


def _to_response(result: FhirResponse) -> Response:
    headers = dict(result.headers)
    if result.body is None:
        return Response(status_code=result.status, headers=headers)
    media = FHIR_CONTENT_TYPE if result.content_type == FHIR_JSON else result.content_type
    return Response(result.body, status_code=result.status, headers=headers, media_type=media)


def create_app(
    settings: Settings | None = None,
    platform: Platform | None = None,
    *,
    metrics_dir: str | None = None,
    mllp: bool = False,
) -> Starlette:
    """The application; builds the platform from the environment unless one is given.

    ``metrics_dir``: the directory of prometheus_client's multiprocess mode, for several workers.
    ``mllp``: also listen for HL7 v2 over MLLP while the application runs (``rhip serve``; when the
    settings enable it).
    """
    settings = settings or (platform.settings if platform else Settings())
    state: dict[str, Platform] = {}

    def identity() -> IdentityService:
        security = current().security
        assert security is not None
        return security.identity

    auth = RequestAuthenticator(identity, enabled=settings.security.enabled)
    metrics = Metrics(metrics_dir)
    limit = settings.server.max_body_mb * 1024 * 1024
    # Requests run in threads; more CPU-bound threads than this per process only fight over the GIL.
    limiter = anyio.CapacityLimiter(settings.server.threads)

    def current() -> Platform:
        if "platform" not in state:
            state["platform"] = platform or build_platform(settings)

            def count_write(event: object) -> None:
                if isinstance(event, ResourceChanged):
                    metrics.writes.labels(event.resource_type, type(event).__name__).inc()

            for cls in ResourceChanged.__subclasses__():
                state["platform"].events.subscribe(cls, count_write)
            if platform is None:
                settle_heap()
        return state["platform"]

    async def fhir(request: Request) -> Response:
        path = request.path_params.get("path", "")
        base = settings.server.public_base_url or f"{request.url.scheme}://{request.url.netloc}/fhir"
        try:
            body = await _read_body(request, limit)
            req = FhirRequest(
                method=request.method,
                path=path,
                query=request.query_params.multi_items(),
                headers={k.lower(): v for k, v in request.headers.items()},
                body=body,
                base_url=base.rstrip("/"),
            )
            service = current().fhir
            credentials = auth.credentials(request)
            glass = glass_reason(request)
            public = request.method in ("GET", "HEAD") and path.strip("/") == "metadata"

            def work() -> FhirResponse:
                if public:
                    return service.handle(req)  # the CapabilityStatement names no resident
                # Refused credentials are audited by the identity service (as an anonymous caller).
                principal = auth.principal(credentials)
                with acting_as(principal, break_glass_reason=glass):
                    response = service.handle(req)
                platform = current()
                if platform.security is not None and platform.store is not None:
                    # Flag a document whose signature no longer matches it (X-Rhip-Signature).
                    platform.security.signatures.annotate(platform.store, req, response)
                return response

            result = await anyio.to_thread.run_sync(work, limiter=limiter)
        except RhipError as error:
            result = error_response(error)
        if result.status == 401:
            result.headers["WWW-Authenticate"] = 'Bearer realm="rhip", error="invalid_token"'

        if result.status >= 400:
            observed = request.scope.get(OBSERVED)
            if observed is not None:
                observed["error"] = error_code(result.body)
        return _to_response(result)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    async def readyz(_: Request) -> Response:
        try:
            ok, detail = await run_in_threadpool(lambda: current().readiness())
        except Exception as exc:  # readiness must answer, whatever is wrong
            return JSONResponse({"status": "unavailable", "detail": type(exc).__name__}, status_code=503)
        return JSONResponse(
            {"status": "ready" if ok else "schema-out-of-date", "detail": detail},
            status_code=200 if ok else 503,
        )

    async def prometheus(_: Request) -> Response:
        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def home(_: Request) -> Response:
        return RedirectResponse("/portal/", status_code=303)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        listener: V2Listener | None = None
        try:
            await run_in_threadpool(current)
            if mllp:
                listener = await start_v2_listener(current(), settings)
                await run_in_threadpool(quality.follow)  # `rhip serve`: score data as it arrives
        except Exception:
            # Starlette hands the failure's text to uvicorn, which logs it as is; exception messages can hold
            # settings or data. The redacting formatters log it here, and uvicorn gets a plain message.
            log.exception("the platform could not start")
            raise RuntimeError("the platform could not start; the log has the details") from None
        yield
        try:
            await run_in_threadpool(quality.stop)
            if listener is not None:
                await listener.stop()
        finally:
            metrics.close()
            if "platform" in state and platform is None:
                # Writes the buffered audit entries, then releases the database.
                state["platform"].close()

    def hl7v3() -> V3Service:
        doors = current().exchange
        if doors is None:
            raise RuntimeError("the platform was built without its exchange doors")
        return doors.hl7v3

    quality = QualityApi(current, auth, limiter)
    public_root = (settings.server.public_base_url or "").rstrip("/").removesuffix("/fhir") or None
    # One budget of sign-in attempts for the token endpoint and the portal's form.
    throttle = AttemptThrottle(
        settings.security.signin_attempts_per_minute, settings.security.signin_attempt_burst
    )
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    return Starlette(
        routes=[
            # Their own small thread pool: slow password hashing never holds up the FHIR API.
            *auth_routes(identity, public_base_url=public_root, throttle=throttle),
            *hl7v3_routes(
                hl7v3, max_body_bytes=limit, limiter=limiter, public_base_url=public_root, auth=auth
            ),
            # The portal's pages run on their own threads: a busy API never holds up a clinician's page.
            *portal_routes(
                current, identity, auth, settings, anyio.CapacityLimiter(settings.server.threads), throttle
            ),
            *quality.routes(),
            Route("/", home),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
            Route("/fhir", fhir, methods=methods),
            Route("/fhir/{path:path}", fhir, methods=methods),
        ],
        middleware=hardening_middleware(
            settings.security,
            rate_key=rate_key(auth),
            inner=[Middleware(ObserveMiddleware, metrics=metrics)],
        ),
        lifespan=lifespan,
    )


access = logging.getLogger("rhip.access")
INTERNAL_ERROR = "RHIP-CORE-0000"


class ObserveMiddleware:
    """Counts, times and logs every request by route kind; turns an unexpected exception into a 500
    OperationOutcome.

    The access line (logger ``rhip.access``, INFO) holds the method, route kind, status, error code,
    duration and resource type; never the path's ids, the query string or the body.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, observing it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        kind, resource_type = classify(scope.get("path", ""))
        method = scope.get("method", "")
        if method not in METHODS:
            method = "other"
        observed: dict[str, Any] = {"status": 500, "sent": False, "error": None}
        scope[OBSERVED] = observed

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                observed["status"] = message["status"]
                observed["sent"] = True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            # The formatters of rhip.bootstrap.logging write the traceback without exception messages.
            log.exception("unhandled error", extra={"route": kind, "method": method})
            if not observed["sent"]:
                body = dumps(
                    outcome(
                        [
                            Issue(
                                "fatal", "exception", "Internal error; it has been logged", (), INTERNAL_ERROR
                            )
                        ]
                    )
                )
                await Response(body, status_code=500, media_type=FHIR_CONTENT_TYPE)(scope, receive, send)
            observed["status"] = 500
            observed["error"] = INTERNAL_ERROR
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            status = observed["status"]
            self.metrics.requests.labels(method, kind, str(status)).inc()
            self.metrics.latency.labels(kind).observe(elapsed)
            if access.isEnabledFor(logging.INFO):
                access.info(
                    "request",
                    extra={
                        "method": method,
                        "route": kind,
                        "status": status,
                        "error_code": observed["error"],
                        "duration_ms": round(elapsed * 1000, 3),
                        "resource_type": resource_type,
                    },
                )


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory rhip.web.app:create_app_from_env`` (reads RHIP_* settings)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    # Set by `rhip serve` when it runs several workers: their metrics are then summed on every scrape.
    return create_app(settings, metrics_dir=os.environ.get("PROMETHEUS_MULTIPROC_DIR"), mllp=True)
