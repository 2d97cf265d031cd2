"""HTTP hardening: security headers, CORS (off unless origins are listed) and per-client rate limits.

Pure ASGI middlewares (no ``BaseHTTPMiddleware``: they neither buffer bodies nor move the request to
another task). ``hardening_middleware`` puts them in order around the application's own middlewares.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rhip.core.errors import TooManyRequests
from rhip.fhir.rest.outcome import dumps, outcome_for_error

FHIR_CONTENT_TYPE = "application/fhir+json; charset=utf-8"
PROBE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Responses under these paths carry resident data or credentials: no cache may keep them.
NO_STORE_PREFIXES = ("/fhir", "/auth", "/hl7v3")
OBSERVED = "rhip.observe"  # rhip.web.app.OBSERVED: the access log's per-request record

RateKey = Callable[[Scope], str | None]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


# -- security headers -----------------------------------------------------------------------------------
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'"
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=()"
)
_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    # A response that sets its own policy keeps it (the $html page allows its inline style).
    ("content-security-policy", DEFAULT_CSP),
    ("permissions-policy", PERMISSIONS_POLICY),
)


class SecurityHeadersMiddleware:
    """Adds the browser security headers a response has not set itself.

    HSTS only on requests that came over HTTPS (``scope["scheme"]``, which uvicorn sets from
    ``X-Forwarded-Proto`` for trusted proxies); ``Cache-Control: no-store`` under /fhir, /auth and /hl7v3.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        hsts_max_age: int = 31_536_000,
        no_store_prefixes: Sequence[str] = NO_STORE_PREFIXES,
    ) -> None:
        self.app = app
        self.hsts = f"max-age={hsts_max_age}" if hsts_max_age > 0 else None
        self.no_store_prefixes = tuple(p.rstrip("/") for p in no_store_prefixes)

    def _no_store(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in self.no_store_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request, adding headers to its response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_ALWAYS)
        if self.hsts and scope.get("scheme") == "https":
            extra.append(("strict-transport-security", self.hsts))
        if self._no_store(scope.get("path", "")):
            # Pragma for HTTP/1.0 caches; OAuth token responses must carry both (RFC 6749 5.1).
            extra += [("cache-control", "no-store"), ("pragma", "no-cache")]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                for name, value in extra:
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)


# -- CORS -------------------------------------------------------------------------------------------------
CORS_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
CORS_HEADERS = (
    "Authorization",
    "Content-Type",
    "Accept",
    "Accept-Language",
    "If-Match",
    "If-None-Match",
    "If-None-Exist",
    "If-Modified-Since",
    "Prefer",
)
CORS_EXPOSE = ("ETag", "Location", "Content-Location", "Last-Modified", "Retry-After", "WWW-Authenticate")
_ORIGIN = re.compile(r"https?://[^\s/?#@]+")


def normalise_origin(origin: str) -> str:
    """An allowed origin as browsers send it (``https://portal.example.cn``); ValueError when it is none."""
    value = origin.strip().rstrip("/").lower()
    if not _ORIGIN.fullmatch(value):
        raise ValueError(
            f"CORS origin {origin!r} is not scheme://host[:port]; list each origin ('*' is not accepted)"
        )
    return value


class CorsMiddleware:
    """CORS for the listed origins only; with none listed it adds nothing and answers no preflight.

    The allowed origin is echoed, never ``*``; ``Access-Control-Allow-Credentials`` only when
    ``allow_credentials`` (bearer tokens need no credentials mode: it is for cookies and client
    certificates). Preflights from other origins, or asking for other methods or headers, get 403.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        origins: Iterable[str] = (),
        allow_credentials: bool = False,
        allow_methods: Sequence[str] = CORS_METHODS,
        allow_headers: Sequence[str] = CORS_HEADERS,
        expose_headers: Sequence[str] = CORS_EXPOSE,
        max_age: int = 600,
    ) -> None:
        self.app = app
        self.origins = frozenset(normalise_origin(o) for o in origins)
        self.credentials = allow_credentials
        self.methods = frozenset(m.upper() for m in allow_methods)
        self.headers = frozenset(h.lower() for h in allow_headers)
        self._preflight_headers = {
            "access-control-allow-methods": ", ".join(allow_methods),
            "access-control-allow-headers": ", ".join(allow_headers),
            "access-control-max-age": str(max_age),
            "vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        }
        self._expose = ", ".join(expose_headers)

    def allowed(self, origin: str | None) -> bool:
        """Whether ``origin`` is one of the listed origins."""
        return origin is not None and origin.rstrip("/").lower() in self.origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request: answer a preflight, or add CORS headers to the response."""
        if scope["type"] != "http" or not self.origins:
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        requested = _header(scope, b"access-control-request-method")
        if scope.get("method") == "OPTIONS" and origin is not None and requested is not None:
            await self._preflight(scope, origin, requested)(scope, receive, send)
            return
        allowed = self.allowed(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                # The answer depends on Origin, with or without one: shared caches must keep them apart.
                headers.add_vary_header("Origin")
                if allowed and origin is not None:
                    headers["access-control-allow-origin"] = origin
                    headers["access-control-expose-headers"] = self._expose
                    if self.credentials:
                        headers["access-control-allow-credentials"] = "true"
            await send(message)

        await self.app(scope, receive, send_with_cors)

    def _preflight(self, scope: Scope, origin: str, method: str) -> Response:
        asked = _header(scope, b"access-control-request-headers") or ""
        names = {h.strip().lower() for h in asked.split(",") if h.strip()}
        vary = {"vary": self._preflight_headers["vary"]}
        if not self.allowed(origin) or method.upper() not in self.methods or not names <= self.headers:
            return PlainTextResponse("CORS preflight refused", status_code=403, headers=vary)
        headers = {**self._preflight_headers, "access-control-allow-origin": origin}
        if self.credentials:
            headers["access-control-allow-credentials"] = "true"
        return Response(status_code=204, headers=headers)


# -- rate limits ------------------------------------------------------------------------------------------
class TokenBuckets:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst``; a request takes one.

    Memory stays bounded: buckets are kept least recently used first, a bucket untouched for
    ``burst / rate`` seconds is full again (forgetting it changes nothing) and is dropped, and past
    ``max_keys`` the least recently used bucket goes.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate must be > 0, burst >= 1 and max_keys >= 1")
        self.rate = rate
        self.burst = float(burst)
        self.max_keys = max_keys
        self.clock = clock
        self._idle = self.burst / rate
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key → (tokens, when)

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when there was one, else the seconds until there is one."""
        now = self.clock()
        self._forget_idle(now)
        held = self._buckets.pop(key, None)
        tokens = self.burst if held is None else min(self.burst, held[0] + (now - held[1]) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[key] = (tokens, now)  # re-inserted: now the most recently used
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def _forget_idle(self, now: float) -> None:
        buckets = self._buckets
        while buckets:
            oldest = next(iter(buckets))
            if now - buckets[oldest][1] < self._idle:
                return
            del buckets[oldest]


class RateLimitMiddleware:
    """Answers 429 (OperationOutcome RHIP-SEC-0003 and ``Retry-After``) to a client over its rate.

    The client is ``key(scope)`` (the caller's identity: a token subject or client id) and, when that
    gives None, the connecting IP address. Probes (/healthz, /readyz, /metrics) are never limited. The
    buckets live in the process: with several worker processes each limits on its own.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        rate: float,
        burst: int,
        key: RateKey | None = None,
        max_keys: int = 100_000,
        exempt: Iterable[str] = PROBE_PATHS,
    ) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst, max_keys=max_keys)
        self.key = key
        self.exempt = frozenset(exempt)

    def client_key(self, scope: Scope) -> str:
        """The bucket of a request: the caller's key, else its IP address."""
        if self.key is not None:
            try:
                own = self.key(scope)
            except Exception:  # a broken key must not fail the request: fall back to the address
                own = None
            if own:
                return f"k:{own}"
        client = scope.get("client")
        return f"ip:{client[0]}" if client else "ip:?"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve a request, or refuse it when its client is over the limit."""
        if scope["type"] != "http" or scope.get("path") in self.exempt:
            await self.app(scope, receive, send)
            return
        wait = self.buckets.take(self.client_key(scope))
        if wait <= 0.0:
            await self.app(scope, receive, send)
            return
        observed = scope.get(OBSERVED)
        if isinstance(observed, dict):
            observed["error"] = TooManyRequests.code
        await too_many_requests(wait)(scope, receive, send)


def too_many_requests(wait: float) -> Response:
    """The 429 response: an OperationOutcome and ``Retry-After`` in whole seconds."""
    seconds = max(1, math.ceil(wait))
    error = TooManyRequests(f"Too many requests; try again in {seconds} s")
    return Response(
        dumps(outcome_for_error(error)),
        status_code=TooManyRequests.http_status,
        headers={"retry-after": str(seconds)},
        media_type=FHIR_CONTENT_TYPE,
    )


# -- assembly ---------------------------------------------------------------------------------------------
class HardeningSettings(Protocol):
    """What the middlewares need of the settings (``rhip.bootstrap.settings.SecuritySettings``)."""

    @property
    def rate_per_second(self) -> float:
        """Requests a second per client."""

    @property
    def rate_burst(self) -> int:
        """Requests a client may send at once."""

    @property
    def cors_origins(self) -> Sequence[str]:
        """Browser origins allowed."""


def hardening_middleware(
    settings: HardeningSettings,
    *,
    rate_key: RateKey | None = None,
    inner: Sequence[Middleware] = (),
    cors_allow_credentials: bool = False,
) -> list[Middleware]:
    """The middleware list of the application: headers, CORS, then ``inner``, then the rate limit.

    Headers and CORS are outermost so that every response has them, errors and 429s included (a browser
    can read a 429 only with its CORS headers); preflights are answered before the rate limit counts.
    """
    return [
        Middleware(SecurityHeadersMiddleware),
        Middleware(CorsMiddleware, origins=settings.cors_origins, allow_credentials=cors_allow_credentials),
        *inner,
        Middleware(
            RateLimitMiddleware, rate=settings.rate_per_second, burst=settings.rate_burst, key=rate_key
        ),
    ]
