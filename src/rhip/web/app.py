"""The ASGI application: the FHIR API at /fhir, health and readiness probes, Prometheus metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
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
from rhip.fhir.events import ResourceChanged
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.fhir.rest.outcome import dumps, outcome
from rhip.fhir.rest.service import error_response

log = logging.getLogger("rhip.web")
FHIR_CONTENT_TYPE = "application/fhir+json; charset=utf-8"


class Metrics:
    """The Prometheus metrics of one application instance."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "rhip_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "rhip_http_request_seconds",
            "HTTP request latency",
            ["route"],
            registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.writes = Counter(
            "rhip_fhir_writes", "Resources written", ["resource_type", "event"], registry=self.registry
        )
        self.in_flight = Gauge("rhip_http_in_flight", "Requests being served", registry=self.registry)


def route_kind(path: str) -> str:
    """A low-cardinality label for a path (never an id)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "/"
    if parts[0] != "fhir":
        return "/" + parts[0]
    if len(parts) == 1:
        return "fhir:base"
    tail = parts[2:]
    kind = (
        "type"
        if not tail
        else (
            "instance" if len(tail) == 1 else "/".join(t if t.startswith(("_", "$")) else "*" for t in tail)
        )
    )
    return f"fhir:{parts[1]}:{kind}" if parts[1][:1].isupper() else f"fhir:{parts[1]}"


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
    return Response(result.body, status_code=result.status, headers=headers, media_type=FHIR_CONTENT_TYPE)


def create_app(settings: Settings | None = None, platform: Platform | None = None) -> Starlette:
    """The application; builds the platform from the environment unless one is given."""
    settings = settings or (platform.settings if platform else Settings())
    state: dict[str, Platform] = {}
    metrics = Metrics()
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
            result = await anyio.to_thread.run_sync(service.handle, req, limiter=limiter)
        except RhipError as error:
            result = error_response(error)
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
        return RedirectResponse("/fhir/metadata")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(current)
        yield
        if "platform" in state and platform is None:
            state["platform"].close()

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]
    return Starlette(
        routes=[
            Route("/", home),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
            Route("/fhir", fhir, methods=methods),
            Route("/fhir/{path:path}", fhir, methods=methods),
        ],
        middleware=[Middleware(ObserveMiddleware, metrics=metrics)],
        lifespan=lifespan,
    )


class ObserveMiddleware:
    """Counts and times every request by route kind; turns an unexpected exception into a 500 OperationOutcome."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, observing it."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        kind = route_kind(scope.get("path", ""))
        status = {"code": 500, "sent": False}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                status["sent"] = True
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            log.exception("unhandled error", extra={"route": kind, "method": scope.get("method")})
            if not status["sent"]:
                body = dumps(
                    outcome(
                        [
                            Issue(
                                "fatal",
                                "exception",
                                "Internal error; it has been logged",
                                (),
                                "RHIP-CORE-0000",
                            )
                        ]
                    )
                )
                await Response(body, status_code=500, media_type=FHIR_CONTENT_TYPE)(scope, receive, send)
            status["code"] = 500
        finally:
            self.metrics.in_flight.dec()
            elapsed = time.perf_counter() - started
            self.metrics.requests.labels(scope.get("method", ""), kind, str(status["code"])).inc()
            self.metrics.latency.labels(kind).observe(elapsed)


def create_app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory rhip.web.app:create_app_from_env`` (reads RHIP_* settings)."""
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return create_app(settings)
