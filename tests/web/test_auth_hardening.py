"""The identity routes under load and failure: attempt throttling, their own threads, OAuth errors for every
outage; the rate limiter's key from the verified-token cache only."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from rhip.core.errors import StorageUnavailable, Unauthenticated
from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Principal, Role
from rhip.web.auth import AUTH_THREADS, AttemptThrottle, auth_routes
from rhip.web.authn import Credentials, RequestAuthenticator, rate_key
from security.identity.support import PASSWORD, ClientKey, Clock, identity_config


class Ticks:
    """A monotonic clock moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("auth-hardening-template")
    db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{folder}/rhip.db")))
    upgrade(db.engine)
    db.dispose()
    return folder / "rhip.db"


@pytest.fixture
def identity(template: Path, tmp_path: Path) -> Iterator[IdentityService]:
    import shutil

    shutil.copyfile(template, tmp_path / "rhip.db")
    db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{tmp_path}/rhip.db")))
    try:
        yield IdentityService(db, identity_config(tmp_path / "keys"), clock=Clock())
    finally:
        db.dispose()


def _http(
    identity: IdentityService, throttle: AttemptThrottle | None = None, ip: str = "10.1.1.1"
) -> TestClient:
    routes = auth_routes(lambda: identity, throttle=throttle)
    return TestClient(Starlette(routes=routes), client=(ip, 4444))


def _password(username: str, password: str = "wrong password") -> dict[str, str]:
    return {"grant_type": "password", "username": username, "password": password}


def test_password_attempts_are_throttled_per_address_and_per_username(identity: IdentityService) -> None:
    identity.accounts.add_user("dr-li", PASSWORD, "clinician")
    ticks = Ticks()
    throttle = AttemptThrottle(10, 10, clock=ticks)
    first = _http(identity, throttle, "10.1.1.1")
    for i in range(10):
        assert first.post("/auth/token", data=_password(f"user-{i}")).status_code == 400
    over = first.post("/auth/token", data=_password("dr-li", PASSWORD))
    assert over.status_code == 429 and over.json()["error"] == "temporarily_unavailable"
    assert int(over.headers["retry-after"]) >= 1 and over.headers["cache-control"] == "no-store"
    # Refresh grants and revocations are not credential guesses: not throttled.
    refresh = first.post("/auth/token", data={"grant_type": "refresh_token", "refresh_token": "rt.x"})
    assert refresh.status_code == 400
    # One username from many addresses: its own bucket.
    for i in range(10):
        other = _http(identity, throttle, f"10.2.0.{i}")
        assert other.post("/auth/token", data=_password("dr-li")).status_code == 400
    late = _http(identity, throttle, "10.3.0.1").post("/auth/token", data=_password("dr-li", PASSWORD))
    assert late.status_code == 429
    ticks.now += 60  # the buckets refill
    identity.accounts.unlock_user("dr-li")  # (the wrong passwords locked it meanwhile)
    assert first.post("/auth/token", data=_password("dr-li", PASSWORD)).status_code == 200


def test_client_assertions_are_throttled(identity: IdentityService) -> None:
    key = ClientKey("ES256")
    throttle = AttemptThrottle(10, 2, clock=Ticks())
    http = _http(identity, throttle)
    codes = [http.post("/auth/token", data=key.form("ghost", identity.clock())).status_code for _ in range(3)]
    assert codes == [401, 401, 429]


def test_the_routes_run_on_their_own_small_limiter(
    identity: IdentityService, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    real = anyio.to_thread.run_sync

    async def spy(func: Any, *args: Any, limiter: Any = None, **kwargs: Any) -> Any:
        seen.append(limiter)
        return await real(func, *args, limiter=limiter, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", spy)
    http = _http(identity)
    http.get("/.well-known/jwks.json")
    http.get("/.well-known/smart-configuration")
    http.post("/auth/token", data=_password("x"))
    http.post("/auth/revoke", data={"token": "x"})
    assert len(seen) == 4 and len({id(limiter) for limiter in seen}) == 1
    assert isinstance(seen[0], anyio.CapacityLimiter) and seen[0].total_tokens == AUTH_THREADS == 2


@pytest.mark.parametrize(
    "failure",
    [
        StorageUnavailable("database unavailable: OperationalError"),
        OSError(2, "No such file or directory", "/secret/keys/kid.pem"),
        RuntimeError("-----BEGIN PRIVATE KEY----- something broke"),
    ],
)
def test_every_outage_is_an_oauth_503(
    identity: IdentityService, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object, **__: object) -> Any:
        raise failure

    for name in ("token", "revoke", "jwks", "smart_configuration"):
        setattr(identity, name, broken)
    http = _http(identity)
    caplog.set_level(logging.WARNING, logger="rhip.web.auth")
    for response in (
        http.post("/auth/token", data={"grant_type": "client_credentials"}),
        http.post("/auth/revoke", data={"token": "x"}),
        http.get("/.well-known/jwks.json"),
        http.get("/.well-known/smart-configuration"),
        http.get("/fhir/.well-known/smart-configuration"),
    ):
        assert response.status_code == 503, response.text
        assert response.json()["error"] == "temporarily_unavailable"
        assert response.headers["content-type"].startswith("application/json")
    assert type(failure).__name__ in caplog.text
    assert "secret" not in caplog.text and "BEGIN" not in caplog.text


def test_an_outage_building_the_service_is_an_oauth_503() -> None:
    def unbuilt() -> IdentityService:
        raise RuntimeError("the platform could not start")

    http = TestClient(Starlette(routes=auth_routes(unbuilt)))
    assert http.post("/auth/token", data={"grant_type": "password"}).status_code == 503
    assert http.get("/.well-known/smart-configuration").json()["error"] == "temporarily_unavailable"


# --- the rate limiter's key and anonymous refusals (rhip.web.authn) ---------------------------------------


class Authority:
    """A token authority that knows one verified token and must never verify anything on the event loop."""

    def __init__(self) -> None:
        self.principal = Principal("user:dr-li", Role.CLINICIAN, frozenset())
        self.refused: list[tuple[str | None, str]] = []

    def authenticate(self, bearer_token: str, *, address: str | None = None) -> Principal:
        raise AssertionError("rate_key must not authenticate (I/O, signature checks) on the event loop")

    def principal_for_certificate(self, sha256_fingerprint_hex: str) -> Principal | None:
        return None

    def peek(self, bearer_token: str) -> Principal | None:
        return self.principal if bearer_token == "known" else None

    def refuse_anonymous(self, address: str | None, reason: str) -> None:
        self.refused.append((address, reason))


def _scope(authorization: str | None) -> dict[str, Any]:
    headers = [] if authorization is None else [(b"authorization", authorization.encode())]
    return {"type": "http", "headers": headers, "client": ("10.0.0.1", 1)}


def test_rate_key_uses_only_the_verified_token_cache() -> None:
    authority = Authority()
    key = rate_key(RequestAuthenticator(lambda: authority))
    assert key(_scope("Bearer known")) == "user:dr-li"
    assert key(_scope("Bearer forged")) is None  # unknown: the address's bucket
    assert key(_scope(None)) is None and key(_scope("Basic abc")) is None


def test_rate_key_falls_back_to_the_address_when_the_service_is_not_there() -> None:
    def unbuilt() -> Authority:
        raise RuntimeError("not built yet")

    assert rate_key(RequestAuthenticator(unbuilt))(_scope("Bearer known")) is None


def test_requests_without_credentials_are_audited() -> None:
    authority = Authority()
    authenticator = RequestAuthenticator(lambda: authority)
    with pytest.raises(Unauthenticated):
        authenticator.principal(Credentials(None, "10.0.0.9"))
    assert authority.refused == [("10.0.0.9", "no bearer token")]
