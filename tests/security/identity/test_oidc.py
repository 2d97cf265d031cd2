"""Trust in an external OpenID provider: its tokens, verified with its JWKS, become principals."""

from __future__ import annotations

from pathlib import Path

import jwt
import orjson
import pytest

from rhip.core.errors import Unauthenticated
from rhip.db.engine import Database
from rhip.security.identity.config import OidcConfig
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Role
from rhip.security.scopes import parse_scopes

from .support import FHIR_BASE, ClientKey, Clock, identity_config

SSO = "https://sso.commission.example"


@pytest.fixture
def provider(tmp_path: Path) -> ClientKey:
    key = ClientKey("RS256", kid="sso-1")
    (tmp_path / "sso-jwks.json").write_bytes(orjson.dumps(key.jwks()))
    return key


@pytest.fixture
def trusting(db: Database, clock: Clock, tmp_path: Path, provider: ClientKey) -> IdentityService:
    oidc = OidcConfig(issuer=SSO, jwks_url=str(tmp_path / "sso-jwks.json"), institution_claim="org_code")
    return IdentityService(db, identity_config(tmp_path / "keys", oidc=oidc), clock=clock)


def _token(key: ClientKey, clock: Clock, **claims: object) -> str:
    body: dict[str, object] = {
        "iss": SSO,
        "sub": "8f3c2e",
        "aud": FHIR_BASE,
        "iat": int(clock()),
        "exp": int(clock()) + 300,
        "jti": "sso-jti-1",
        "rhip_role": "public-health",
        "org_code": "CDC-510104",
        "rhip_district": "510104",
    }
    body.update(claims)
    return jwt.encode(
        {k: v for k, v in body.items() if v is not None},
        key.private,
        algorithm=key.alg,
        headers={"kid": key.kid},
    )


def test_external_token_becomes_a_principal(
    trusting: IdentityService, provider: ClientKey, clock: Clock
) -> None:
    principal = trusting.authenticate(_token(provider, clock), address="10.2.2.2")
    assert principal.subject == "user:oidc:8f3c2e"
    assert principal.role is Role.PUBLIC_HEALTH
    assert principal.institution == "CDC-510104" and principal.district == "510104"
    assert principal.scopes == parse_scopes("user/*.rs")  # the role's maximum when no scope claim
    assert principal.address == "10.2.2.2"


def test_scope_claim_is_cut_to_the_role(trusting: IdentityService, provider: ClientKey, clock: Clock) -> None:
    token = _token(provider, clock, scope="user/Patient.cruds system/*.cruds", rhip_role="statistician")
    assert trusting.authenticate(token).scopes == parse_scopes("user/Patient.s")
    token = _token(provider, clock, jti="j2", scope="user/Observation.rs")
    assert trusting.authenticate(token).scopes == parse_scopes("user/Observation.rs")


def test_external_tokens_refused(trusting: IdentityService, provider: ClientKey, clock: Clock) -> None:
    cases = [
        _token(provider, clock, aud="https://elsewhere/fhir"),
        _token(provider, clock, exp=int(clock()) - 600),
        _token(provider, clock, rhip_role="platform"),
        _token(provider, clock, rhip_role=None),
        _token(ClientKey("RS256", kid="sso-1"), clock),  # not the provider's key
        _token(provider, clock, iss="https://other-sso.example"),
    ]
    for token in cases:
        with pytest.raises(Unauthenticated):
            trusting.authenticate(token)
    hs = jwt.encode(
        {"iss": SSO, "sub": "x", "aud": FHIR_BASE, "exp": int(clock()) + 60, "iat": int(clock())},
        "k" * 32,
        algorithm="HS256",
    )
    with pytest.raises(Unauthenticated):
        trusting.authenticate(hs)


def test_without_oidc_external_tokens_are_untrusted(
    identity: IdentityService, provider: ClientKey, clock: Clock
) -> None:
    with pytest.raises(Unauthenticated, match="issuer"):
        identity.authenticate(_token(provider, clock))
