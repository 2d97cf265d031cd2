"""client_credentials with private_key_jwt (SMART Backend Services): what a client assertion must be."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from rhip.security.identity.errors import OAuthError
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Role
from rhip.security.scopes import parse_scopes

from .support import TOKEN_URL, ClientKey, Clock


@pytest.fixture
def key() -> ClientKey:
    return ClientKey("ES384")


@pytest.fixture
def his(identity: IdentityService, key: ClientKey) -> IdentityService:
    identity.accounts.add_client(
        "his-h001",
        scopes="system/Patient.cruds system/Observation.rs",
        institution="H001",
        organization="org-h001",
        jwks=orjson.dumps(key.jwks()).decode(),
    )
    return identity


def _refused(
    identity: IdentityService, form: dict[str, str], error: str, match: str | None = None
) -> OAuthError:
    with pytest.raises(OAuthError, match=match) as caught:
        identity.token(form)
    assert caught.value.error == error
    assert caught.value.status == (401 if error == "invalid_client" else 400)
    return caught.value


@pytest.mark.parametrize("alg", ["ES384", "ES256", "RS384", "RS256"])
def test_each_algorithm_gets_a_token(identity: IdentityService, clock: Clock, alg: str) -> None:
    key = ClientKey(alg, kid=f"k-{alg}")
    identity.accounts.add_client("lis-1", scopes="system/*.rs", jwks=orjson.dumps(key.jwks()).decode())
    answer = identity.token(key.form("lis-1", clock()))
    assert answer["token_type"] == "Bearer" and answer["expires_in"] == 900
    assert "refresh_token" not in answer
    principal = identity.authenticate(answer["access_token"])
    assert principal.subject == "client:lis-1" and principal.client_id == "lis-1"


def test_token_carries_the_clients_institution(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    answer = his.token(key.form("his-h001", clock(), scope="system/Patient.rs"))
    assert answer["scope"] == "system/Patient.rs"
    principal = his.authenticate(answer["access_token"])
    assert principal.role is Role.SYSTEM
    assert principal.institution == "H001" and principal.organization == "org-h001"
    assert principal.scopes == parse_scopes("system/Patient.rs")


def test_scope_escalation_is_cut_to_the_client_and_role(
    his: IdentityService, key: ClientKey, clock: Clock
) -> None:
    asked = "system/*.cruds user/*.cruds patient/*.rs"
    answer = his.token(key.form("his-h001", clock(), scope=asked))
    assert answer["scope"] == "system/Observation.rs system/Patient.cruds"
    _refused(his, key.form("his-h001", clock(), scope="system/Condition.rs"), "invalid_scope")
    _refused(his, key.form("his-h001", clock(), scope="user/Patient.rs"), "invalid_scope")
    _refused(his, key.form("his-h001", clock(), scope="system/Patient.rs?gender=male"), "invalid_scope")


def test_scope_omitted_means_what_the_client_is_registered_for(
    his: IdentityService, key: ClientKey, clock: Clock
) -> None:
    answer = his.token(key.form("his-h001", clock(), scope=None))
    assert answer["scope"] == "system/Observation.rs system/Patient.cruds"


def test_replayed_assertion_is_refused(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    form = key.form("his-h001", clock())
    his.token(form)
    _refused(his, form, "invalid_client", "used before")
    # Another client may use the same jti: jtis are single-use per client.
    other = ClientKey("ES256", kid="o")
    his.accounts.add_client("other", scopes="system/*.rs", jwks=orjson.dumps(other.jwks()).decode())
    jti = orjson.loads(__import__("base64").urlsafe_b64decode(form["client_assertion"].split(".")[1] + "=="))[
        "jti"
    ]
    his.token(other.form("other", clock(), jti=jti))


def test_assertion_claims(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    now = clock()
    _refused(his, key.form("his-h001", now, aud="https://other.example/token"), "invalid_client", "aud")
    _refused(his, key.form("his-h001", now, sub="someone-else"), "invalid_client", "iss and sub")
    _refused(his, key.form("his-h001", now, exp=int(now) + 3600), "invalid_client", "at most 5 minutes")
    _refused(his, key.form("his-h001", now, exp=int(now) - 120), "invalid_client", "expired")
    _refused(his, key.form("his-h001", now, jti=None), "invalid_client")
    _refused(
        his,
        key.form("his-h001", now, iat=int(now) + 600, exp=int(now) + 200),
        "invalid_client",
        "not valid yet",
    )
    _refused(his, key.form("his-h001", now, jti="x" * 200), "invalid_client", "jti")


def test_assertions_name_a_configured_token_url(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    # The configured token URL and one under each audience's root (the server's own names) ...
    assert his.token_urls == {TOKEN_URL, "http://127.0.0.1:8080/auth/token"}
    form = key.form("his-h001", clock(), aud="http://127.0.0.1:8080/auth/token")
    assert his.token(form)["access_token"]
    # ... and nothing a request could bring (an assertion made for another server is no good here).
    _refused(
        his, key.form("his-h001", clock(), aud="http://10.1.1.1:8080/auth/token"), "invalid_client", "aud"
    )


def test_signed_by_an_unregistered_key(his: IdentityService, clock: Clock) -> None:
    impostor = ClientKey("ES384")  # same kid, different key
    _refused(his, impostor.form("his-h001", clock()), "invalid_client", "signature")
    stranger = ClientKey("ES384", kid="unknown")
    _refused(his, stranger.form("his-h001", clock()), "invalid_client", "kid")


def test_algorithm_outside_the_list(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    import jwt

    claims = {"iss": "his-h001", "sub": "his-h001", "aud": TOKEN_URL, "exp": int(clock()) + 60, "jti": "j"}
    for alg, secret in (("HS256", "secret-secret-secret-secret-secret"), ("none", None)):
        form = key.form("his-h001", clock())
        form["client_assertion"] = jwt.encode(claims, secret, algorithm=alg, headers={"kid": key.kid})
        _refused(his, form, "invalid_client")


def test_unknown_and_disabled_clients(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    _refused(his, key.form("nobody", clock()), "invalid_client", "unknown or disabled")
    his.accounts.set_client_disabled("his-h001", True)
    _refused(his, key.form("his-h001", clock()), "invalid_client", "unknown or disabled")
    his.accounts.set_client_disabled("his-h001", False)
    assert his.token(key.form("his-h001", clock()))["access_token"]


def test_disabled_client_tokens_stop_working(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    token = his.token(key.form("his-h001", clock()))["access_token"]
    his.authenticate(token)
    his.accounts.set_client_disabled("his-h001", True)
    from rhip.core.errors import Unauthenticated

    with pytest.raises(Unauthenticated, match="disabled"):
        his.authenticate(token)


def test_request_shape(his: IdentityService, key: ClientKey, clock: Clock) -> None:
    form = key.form("his-h001", clock())
    _refused(his, {**form, "client_assertion_type": "urn:other"}, "invalid_client")
    _refused(his, {"grant_type": "client_credentials"}, "invalid_client", "private_key_jwt")
    _refused(his, {**form, "client_id": "another"}, "invalid_client", "differs")
    _refused(his, {k: v for k, v in form.items() if k != "grant_type"}, "invalid_request")
    _refused(his, {**form, "grant_type": "authorization_code"}, "unsupported_grant_type")
    _refused(his, {**form, "client_assertion": "not-a-jwt"}, "invalid_client")


def test_jwks_url_as_a_file_follows_the_clients_key_rotation(
    identity: IdentityService, clock: Clock, tmp_path: Path
) -> None:
    first = ClientKey("RS384", kid="2026-01")
    jwks_file = tmp_path / "client-jwks.json"
    jwks_file.write_bytes(orjson.dumps(first.jwks()))
    identity.accounts.add_client("cdc-1", scopes="system/*.rs", jwks_url=str(jwks_file))
    assert identity.token(first.form("cdc-1", clock()))["access_token"]
    second = ClientKey("ES384", kid="2026-02")
    jwks_file.write_bytes(orjson.dumps({"keys": [first.public_jwk, second.public_jwk]}))
    identity.grants.assertions._sources["cdc-1"][1].refetch_interval = 0.0  # no waiting in the test
    assert identity.token(second.form("cdc-1", clock()))["access_token"]


def test_registration_checks(identity: IdentityService, key: ClientKey, tmp_path: Path) -> None:
    from rhip.core.errors import InvalidRequest

    jwks = orjson.dumps(key.jwks()).decode()
    with pytest.raises(InvalidRequest, match="private"):
        private = {"keys": [{**key.public_jwk, "d": "secret"}]}
        identity.accounts.add_client("c1", scopes="system/*.rs", jwks=orjson.dumps(private).decode())
    with pytest.raises(InvalidRequest, match="https"):
        identity.accounts.add_client("c2", scopes="system/*.rs", jwks_url="http://example.org/jwks")
    with pytest.raises(InvalidRequest, match="scope"):
        identity.accounts.add_client("c3", scopes="openid", jwks=jwks)
    with pytest.raises(InvalidRequest, match="role"):
        identity.accounts.add_client("c4", scopes="system/*.rs", role="resident", jwks=jwks)
    with pytest.raises(InvalidRequest, match="not both"):
        identity.accounts.add_client("c5", scopes="system/*.rs", jwks=jwks, jwks_url=str(tmp_path))
    with pytest.raises(InvalidRequest, match="client id"):
        identity.accounts.add_client("bad id", scopes="system/*.rs", jwks=jwks)
    identity.accounts.add_client("c6", scopes="system/*.rs", jwks=jwks)
    with pytest.raises(InvalidRequest, match="registered already"):
        identity.accounts.add_client("c6", scopes="system/*.rs", jwks=jwks)
