"""The identity routes over HTTP: token, revoke, JWKS and SMART discovery, on a migrated SQLite database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import anyio
import orjson
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.security.identity import totp
from rhip.security.identity.service import IdentityService
from rhip.web.auth import MAX_FORM_BYTES, auth_routes
from security.identity.support import PASSWORD, ClientKey, Clock, identity_config

PUBLIC = "https://rhip.test"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("auth-template")
    db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{folder}/rhip.db")))
    upgrade(db.engine)
    db.dispose()
    return folder / "rhip.db"


@pytest.fixture
def identity(template: Path, tmp_path: Path) -> Iterator[IdentityService]:
    shutil.copyfile(template, tmp_path / "rhip.db")
    db = Database(build_engine(DatabaseConfig(url=f"sqlite:///{tmp_path}/rhip.db")))
    try:
        yield IdentityService(db, identity_config(tmp_path / "keys"), clock=Clock())
    finally:
        db.dispose()


def _client(identity: IdentityService, public_base_url: str | None = PUBLIC) -> TestClient:
    routes = auth_routes(lambda: identity, limiter=anyio.CapacityLimiter(2), public_base_url=public_base_url)
    return TestClient(Starlette(routes=routes), client=("10.9.8.7", 5555))


@pytest.fixture
def http(identity: IdentityService) -> TestClient:
    return _client(identity)


@pytest.fixture
def key(identity: IdentityService) -> ClientKey:
    key = ClientKey("ES384")
    identity.accounts.add_client(
        "his-1", scopes="system/*.cruds", institution="H001", jwks=orjson.dumps(key.jwks()).decode()
    )
    return key


def test_client_credentials_over_http(http: TestClient, identity: IdentityService, key: ClientKey) -> None:
    response = http.post("/auth/token", data=key.form("his-1", identity.clock(), scope="system/Patient.rs"))
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/Patient.rs"
    assert identity.authenticate(body["access_token"]).institution == "H001"


def test_assertions_are_for_configured_token_urls_never_the_host(
    identity: IdentityService, key: ClientKey
) -> None:
    local = _client(identity, None)
    # The URL the request came in on (http://testserver) is no configured name of this server.
    form = key.form("his-1", identity.clock(), aud="http://testserver/auth/token")
    refused = local.post("/auth/token", data=form)
    assert refused.status_code == 401 and "aud" in refused.json()["error_description"]
    spoofed = local.post("/auth/token", data=form, headers={"host": "attacker.example"})
    assert spoofed.status_code == 401
    # The configured token URL and the ones under the configured audiences' roots are.
    for aud in ("https://rhip.test/auth/token", "http://127.0.0.1:8080/auth/token"):
        assert local.post("/auth/token", data=key.form("his-1", identity.clock(), aud=aud)).status_code == 200
    # A public base URL given to the routes is for discovery only: it widens nothing.
    other = _client(identity, "https://rhip.example.cn/fhir/")
    form = key.form("his-1", identity.clock(), aud="https://rhip.example.cn/auth/token")
    assert other.post("/auth/token", data=form).status_code == 401


def test_errors_are_rfc6749_json(http: TestClient, identity: IdentityService, key: ClientKey) -> None:
    form = key.form("his-1", identity.clock())
    assert http.post("/auth/token", data=form).status_code == 200
    replay = http.post("/auth/token", data=form)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_client"
    assert replay.headers["cache-control"] == "no-store"
    unsupported = http.post("/auth/token", data={"grant_type": "implicit"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    scope = http.post("/auth/token", data=key.form("his-1", identity.clock(), scope="patient/*.rs"))
    assert scope.status_code == 400 and scope.json()["error"] == "invalid_scope"


def test_malformed_requests(http: TestClient) -> None:
    as_json = http.post("/auth/token", json={"grant_type": "password"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    repeated = http.post(
        "/auth/token",
        content=b"grant_type=password&grant_type=client_credentials",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 400 and "repeated" in repeated.json()["error_description"]
    huge = http.post(
        "/auth/token",
        content=b"grant_type=password&x=" + b"a" * MAX_FORM_BYTES,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert huge.status_code == 400
    not_utf8 = http.post(
        "/auth/token",
        content=b"grant_type=%ff\xff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert not_utf8.status_code == 400
    assert http.get("/auth/token").status_code == 405


def test_password_refresh_revoke_over_http(http: TestClient, identity: IdentityService) -> None:
    uri = identity.accounts.add_user("res", PASSWORD, "resident", patients=["p1"], with_totp=True)
    assert uri is not None
    secret = uri.split("secret=")[1].split("&")[0]
    form = {"grant_type": "password", "username": "res", "password": PASSWORD}
    assert http.post("/auth/token", data=form).json()["error"] == "invalid_grant"
    signed_in = http.post("/auth/token", data={**form, "totp": totp.code_at(secret, identity.clock())})
    assert signed_in.status_code == 200
    body = signed_in.json()
    assert body["patient"] == "p1" and body["refresh_token"].startswith("rt.")
    refreshed = http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refreshed.status_code == 200
    revoked = http.post("/auth/revoke", data={"token": refreshed.json()["refresh_token"]})
    assert revoked.status_code == 200 and revoked.content == b""
    again = http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": refreshed.json()["refresh_token"]},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert http.post("/auth/revoke", data={"token": "whatever"}).status_code == 200
    missing = http.post("/auth/revoke", data={})
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"


def test_jwks_and_discovery(http: TestClient, identity: IdentityService) -> None:
    jwks = http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = jwks.json()["keys"]
    assert len(keys) == 1 and keys[0]["alg"] == "ES256" and "d" not in keys[0]
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        document = http.get(path).json()
        assert document["token_endpoint"] == f"{PUBLIC}/auth/token"
        assert document["jwks_uri"] == f"{PUBLIC}/.well-known/jwks.json"
        assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
        # Only what exists: no authorization endpoint, so no response types and no launch permissions.
        assert document["capabilities"] == [
            "client-confidential-asymmetric",
            "permission-v2",
            "permission-v1",
        ]
        assert "response_types_supported" not in document


def test_discovery_never_echoes_an_unknown_host(identity: IdentityService) -> None:
    local = _client(identity, None)
    unknown = local.get("/.well-known/smart-configuration", headers={"host": "attacker.example"}).json()
    assert unknown["token_endpoint"] == "https://rhip.test/auth/token"  # the issuer's
    own = local.get("/.well-known/smart-configuration", headers={"host": "127.0.0.1:8080"}).json()
    assert own["token_endpoint"] == "http://127.0.0.1:8080/auth/token"  # one of the configured names


def test_storage_failures_are_temporarily_unavailable(http: TestClient, identity: IdentityService) -> None:
    from rhip.core.errors import StorageUnavailable

    def broken(*_: object, **__: object) -> dict[str, object]:
        raise StorageUnavailable("database unavailable: OperationalError")

    identity.token = broken  # type: ignore[method-assign]
    response = http.post("/auth/token", data={"grant_type": "password"})
    assert response.status_code == 503 and response.json()["error"] == "temporarily_unavailable"
