"""rhip.web.hardening: security headers, CORS off by default and by allowlist, per-client rate limits."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from rhip.web.hardening import (
    DEFAULT_CSP,
    CorsMiddleware,
    RateLimitMiddleware,
    SecurityHeadersMiddleware,
    TokenBuckets,
    hardening_middleware,
    normalise_origin,
)

with warnings.catch_warnings():  # starlette asks for httpx2, which is not installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PORTAL = "https://portal.example.cn"
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'"


@dataclass
class Limits:
    """What hardening_middleware reads from SecuritySettings."""

    rate_per_second: float = 100.0
    rate_burst: int = 200
    cors_origins: list[str] = field(default_factory=list)


async def _json(_: Request) -> Response:
    return JSONResponse({"resourceType": "Patient", "id": "1"})


async def _html(_: Request) -> Response:
    return Response(
        "<p>record</p>",
        media_type="text/html",
        headers={"content-security-policy": HTML_CSP, "cache-control": "private, no-store"},
    )


async def _probe(_: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _boom(_: Request) -> Response:
    raise RuntimeError("boom")


async def _asgi(scope: Scope, receive: Receive, send: Send) -> None:
    await JSONResponse({"status": "ok"})(scope, receive, send)


def _app(limits: Limits | None = None, rate_key: Callable[[Scope], str | None] | None = None) -> Starlette:
    return Starlette(
        routes=[
            Route("/fhir/Patient/1", _json, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/fhir/Composition/1/$html", _html),
            Route("/auth/token", _json, methods=["POST"]),
            Route("/healthz", _probe),
            Route("/readyz", _probe),
            Route("/metrics", _probe),
            Route("/", _probe),
        ],
        middleware=hardening_middleware(limits or Limits(), rate_key=rate_key),
    )


def _client(app: Starlette, base_url: str = "http://testserver") -> TestClient:
    return TestClient(app, base_url=base_url, raise_server_exceptions=False)


# -- security headers -----------------------------------------------------------------------------------
def test_every_response_gets_the_security_headers() -> None:
    response = _client(_app()).get("/fhir/Patient/1")
    assert response.status_code == 200
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["content-security-policy"] == DEFAULT_CSP
    assert "camera=()" in headers["permissions-policy"]
    assert headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in headers  # plain HTTP: HSTS would be ignored


def test_hsts_only_over_https() -> None:
    response = _client(_app(), base_url="https://testserver").get("/healthz")
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_an_operation_keeps_its_own_policy_and_cache_control() -> None:
    response = _client(_app()).get("/fhir/Composition/1/$html")
    assert response.headers.get_list("content-security-policy") == [HTML_CSP]
    assert response.headers.get_list("cache-control") == ["private, no-store"]
    assert response.headers.get_list("x-content-type-options") == ["nosniff"]


def test_no_store_only_where_data_is() -> None:
    client = _client(_app())
    assert client.post("/auth/token").headers["cache-control"] == "no-store"
    assert client.post("/auth/token").headers["pragma"] == "no-cache"
    assert "cache-control" not in client.get("/healthz").headers
    assert "cache-control" not in client.get("/").headers


def test_errors_get_the_headers_too() -> None:
    app = Starlette(routes=[Route("/fhir/x", _boom)], middleware=[Middleware(SecurityHeadersMiddleware)])
    response = _client(app).get("/fhir/missing")
    assert response.status_code == 404
    assert response.headers["x-frame-options"] == "DENY"


# -- CORS -------------------------------------------------------------------------------------------------
def test_cors_is_off_by_default() -> None:
    client = _client(_app())
    response = client.get("/fhir/Patient/1", headers={"Origin": PORTAL})
    assert response.status_code == 200
    assert not [h for h in response.headers if h.startswith("access-control-")]
    assert "vary" not in response.headers
    preflight = client.options(
        "/fhir/Patient/1", headers={"Origin": PORTAL, "Access-Control-Request-Method": "GET"}
    )
    assert preflight.status_code == 405  # no preflight is answered: the route knows no OPTIONS
    assert not [h for h in preflight.headers if h.startswith("access-control-")]


def test_listed_origin_gets_its_own_origin_back() -> None:
    client = _client(_app(Limits(cors_origins=[PORTAL + "/"])))
    response = client.get("/fhir/Patient/1", headers={"Origin": PORTAL})
    assert response.headers["access-control-allow-origin"] == PORTAL
    assert "Origin" in response.headers["vary"]
    assert "ETag" in response.headers["access-control-expose-headers"]
    assert "access-control-allow-credentials" not in response.headers


def test_other_origins_get_no_cors_headers() -> None:
    client = _client(_app(Limits(cors_origins=[PORTAL])))
    response = client.get("/fhir/Patient/1", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in client.get("/fhir/Patient/1").headers


def test_preflight_of_a_listed_origin() -> None:
    client = _client(_app(Limits(cors_origins=[PORTAL])))
    response = client.options(
        "/fhir/Patient/1",
        headers={
            "Origin": PORTAL,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "authorization, content-type, if-match",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == PORTAL
    assert "PUT" in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert int(response.headers["access-control-max-age"]) > 0
    assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize(
    ("origin", "method", "asked"),
    [
        ("https://evil.example", "GET", ""),
        (PORTAL, "TRACE", ""),
        (PORTAL, "GET", "x-forwarded-host"),
        ("null", "GET", ""),
    ],
)
def test_refused_preflights(origin: str, method: str, asked: str) -> None:
    client = _client(_app(Limits(cors_origins=[PORTAL])))
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked:
        headers["Access-Control-Request-Headers"] = asked
    response = client.options("/fhir/Patient/1", headers=headers)
    assert response.status_code == 403
    assert "access-control-allow-origin" not in response.headers


def test_credentials_never_with_a_wildcard() -> None:
    with pytest.raises(ValueError, match="not accepted"):
        CorsMiddleware(_asgi, origins=["*"], allow_credentials=True)
    for bad in ("portal.example.cn", "https://portal.example.cn/app", "null", ""):
        with pytest.raises(ValueError):
            normalise_origin(bad)
    app = Starlette(
        routes=[Route("/fhir/Patient/1", _json)],
        middleware=[Middleware(CorsMiddleware, origins=[PORTAL], allow_credentials=True)],
    )
    response = _client(app).get("/fhir/Patient/1", headers={"Origin": PORTAL})
    assert response.headers["access-control-allow-origin"] == PORTAL
    assert response.headers["access-control-allow-credentials"] == "true"


def test_a_429_carries_cors_headers_so_the_browser_can_read_it() -> None:
    client = _client(_app(Limits(rate_per_second=0.001, rate_burst=1, cors_origins=[PORTAL])))
    client.get("/fhir/Patient/1", headers={"Origin": PORTAL})
    refused = client.get("/fhir/Patient/1", headers={"Origin": PORTAL})
    assert refused.status_code == 429
    assert refused.headers["access-control-allow-origin"] == PORTAL
    assert "Retry-After" in refused.headers["access-control-expose-headers"]


# -- rate limits ------------------------------------------------------------------------------------------
def test_over_the_limit_gets_429_with_an_operation_outcome() -> None:
    client = _client(_app(Limits(rate_per_second=0.5, rate_burst=3)))
    assert [client.get("/fhir/Patient/1").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/fhir/Patient/1")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"  # one token every 2 s
    assert refused.headers["content-type"].startswith("application/fhir+json")
    body = orjson.loads(refused.content)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "throttled"
    assert body["issue"][0]["details"]["coding"][0]["code"] == "RHIP-SEC-0003"
    assert refused.headers["x-content-type-options"] == "nosniff"


def test_probes_are_never_limited() -> None:
    client = _client(_app(Limits(rate_per_second=0.001, rate_burst=1)))
    assert client.get("/fhir/Patient/1").status_code == 200
    assert client.get("/fhir/Patient/1").status_code == 429
    for path in ("/healthz", "/readyz", "/metrics") * 5:
        assert client.get(path).status_code == 200


def test_each_caller_has_its_own_bucket_and_the_address_is_the_fallback() -> None:
    def by_token(scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                return str(value.decode()).removeprefix("Bearer ")
        return None

    client = _client(_app(Limits(rate_per_second=0.001, rate_burst=2), rate_key=by_token))
    alice, bob = {"Authorization": "Bearer alice"}, {"Authorization": "Bearer bob"}
    assert [client.get("/fhir/Patient/1", headers=alice).status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/fhir/Patient/1", headers=bob).status_code == 200
    # Without a key the client's address counts; alice's use does not count against it.
    assert [client.get("/fhir/Patient/1").status_code for _ in range(3)] == [200, 200, 429]


def test_a_failing_key_falls_back_to_the_address() -> None:
    def broken(_: Scope) -> str | None:
        raise RuntimeError("token store down")

    client = _client(_app(Limits(rate_per_second=0.001, rate_burst=1), rate_key=broken))
    assert client.get("/fhir/Patient/1").status_code == 200
    assert client.get("/fhir/Patient/1").status_code == 429


def test_the_observer_learns_the_error_code() -> None:
    sent: list[Message] = []
    observed: dict[str, object] = {"error": None}
    limiter = RateLimitMiddleware(_asgi, rate=0.001, burst=1)
    limiter.buckets.take("ip:10.0.0.1")
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/fhir/Patient",
        "headers": [],
        "client": ("10.0.0.1", 5000),
        "rhip.observe": observed,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(limiter(scope, receive, send))
    assert sent[0]["status"] == 429
    assert observed["error"] == "RHIP-SEC-0003"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=2, clock=clock)
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    assert buckets.take("a") == pytest.approx(0.5)
    clock.now += 10
    assert [buckets.take("a") for _ in range(3)][:2] == [0.0, 0.0]  # never more than the burst


def test_idle_buckets_are_forgotten_and_memory_is_bounded() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=10.0, burst=5, max_keys=100, clock=clock)
    for n in range(50):
        buckets.take(f"ip:{n}")
    assert len(buckets) == 50
    clock.now += 0.6  # a bucket idle for burst/rate = 0.5 s is full again: nothing is lost by forgetting it
    buckets.take("ip:new")
    assert len(buckets) == 1
    for n in range(1000):
        buckets.take(f"ip:flood-{n}")
    assert len(buckets) == 100


def test_forgetting_an_idle_bucket_changes_no_answer() -> None:
    clock = Clock()
    kept = TokenBuckets(rate=1.0, burst=3, max_keys=10**6, clock=clock)
    forgetful = TokenBuckets(rate=1.0, burst=3, clock=clock)
    steps = [0.0, 0.1, 0.1, 0.1, 0.2, 3.5, 0.0, 0.0, 0.0, 0.0, 1.0, 7.0, 0.0]
    for step in steps:
        clock.now += step
        assert kept.take("k") == forgetful.take("k")
        forgetful.take("other")  # lets the forgetful one sweep
        kept.take("other")
