"""Bearer tokens: what authenticate() accepts and what it refuses (forged, expired, foreign, confused)."""

from __future__ import annotations

import base64
import time

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rhip.core.errors import Unauthenticated
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Role
from rhip.security.scopes import parse_scopes

from .support import FHIR_BASE, ISSUER, PASSWORD, Clock


@pytest.fixture
def token(identity: IdentityService) -> str:
    identity.accounts.add_user(
        "mother", PASSWORD, "resident", patients=["p-mother", "p-child"], district="510104"
    )
    form = {"grant_type": "password", "username": "mother", "password": PASSWORD}
    return str(identity.token(form)["access_token"])


def _claims(token: str) -> dict[str, object]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def _resign(claims: dict[str, object], identity: IdentityService, **header: object) -> str:
    """A token with ``claims`` signed by a key of the platform (as a key thief or a bug would)."""
    signer = identity.keys.signer()
    return jwt.encode(
        claims, signer.private, algorithm="ES256", headers={"kid": signer.kid, "typ": "at+jwt", **header}
    )


def test_a_valid_token_gives_its_principal(identity: IdentityService, token: str) -> None:
    principal = identity.authenticate(token, address="10.0.0.7")
    assert principal.subject == "user:mother"
    assert principal.role is Role.RESIDENT
    assert principal.scopes == parse_scopes("patient/*.rs patient/Consent.cu")
    assert principal.patients == ("p-mother", "p-child")
    assert principal.district == "510104"
    assert principal.address == "10.0.0.7"
    assert principal.token_id and principal.session
    claims = _claims(token)
    assert claims["iss"] == ISSUER and claims["aud"] == FHIR_BASE
    assert claims["exp"] == claims["iat"] + 15 * 60  # type: ignore[operator]
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    # The cached answer keeps each caller's own address.
    assert identity.authenticate(token, address="10.0.0.8").address == "10.0.0.8"
    assert identity.authenticate(token).address is None


def test_expired_token(identity: IdentityService, token: str, clock: Clock) -> None:
    identity.authenticate(token)
    clock.advance(15 * 60 + identity.config.leeway_seconds + 1)
    with pytest.raises(Unauthenticated, match="expired"):
        identity.authenticate(token)


def test_expiry_within_the_leeway_still_works(identity: IdentityService, token: str, clock: Clock) -> None:
    clock.advance(15 * 60 + identity.config.leeway_seconds - 1)
    assert identity.authenticate(token).subject == "user:mother"


def test_forged_signature(identity: IdentityService, token: str) -> None:
    head, body, signature = token.split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["rhip_role"] = "admin"
    forged_body = base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=").decode()
    with pytest.raises(Unauthenticated):
        identity.authenticate(f"{head}.{forged_body}.{signature}")
    # Signed by a key of the attacker's own under the platform's kid.
    own = ec.generate_private_key(ec.SECP256R1())
    kid = jwt.get_unverified_header(token)["kid"]
    forged = jwt.encode(claims, own, algorithm="ES256", headers={"kid": kid, "typ": "at+jwt"})
    with pytest.raises(Unauthenticated):
        identity.authenticate(forged)


def test_wrong_audience(identity: IdentityService, token: str) -> None:
    claims = {**_claims(token), "aud": "https://other.example/fhir", "jti": "a1"}
    with pytest.raises(Unauthenticated):
        identity.authenticate(_resign(claims, identity))


def test_another_configured_audience_is_accepted(identity: IdentityService, token: str) -> None:
    claims = {**_claims(token), "aud": "http://127.0.0.1:8080/fhir", "jti": "a2"}
    assert identity.authenticate(_resign(claims, identity)).subject == "user:mother"


def test_wrong_issuer(identity: IdentityService, token: str) -> None:
    claims = {**_claims(token), "iss": "https://evil.example", "jti": "a3"}
    with pytest.raises(Unauthenticated, match="issuer"):
        identity.authenticate(_resign(claims, identity))


def test_alg_none(identity: IdentityService, token: str) -> None:
    unsigned = jwt.encode(_claims(token), key=None, algorithm="none", headers={"typ": "at+jwt"})
    with pytest.raises(Unauthenticated):
        identity.authenticate(unsigned)
    # Also with the platform's kid, and with a trailing signature-less dot only.
    head = base64.urlsafe_b64encode(b'{"alg":"none","typ":"at+jwt","kid":"x"}').rstrip(b"=").decode()
    body = token.split(".")[1]
    with pytest.raises(Unauthenticated):
        identity.authenticate(f"{head}.{body}.")


def test_hs256_signed_with_the_public_key_is_refused(identity: IdentityService, token: str) -> None:
    """Algorithm confusion: an HMAC keyed with the published public key must not verify."""
    kid = jwt.get_unverified_header(token)["kid"]
    public = identity.keys.signer().private.public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    jwk_json = orjson.dumps(identity.jwks()["keys"][0])
    claims = {**_claims(token), "rhip_role": "admin", "scope": "user/*.cruds"}
    for secret in (pem, jwk_json):
        header = {"alg": "HS256", "kid": kid, "typ": "at+jwt"}
        signing_input = (
            base64.urlsafe_b64encode(orjson.dumps(header)).rstrip(b"=")
            + b"."
            + base64.urlsafe_b64encode(orjson.dumps(claims)).rstrip(b"=")
        )
        import hashlib
        import hmac

        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        confused = (signing_input + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode()
        with pytest.raises(Unauthenticated):
            identity.authenticate(confused)


def test_unknown_kid_and_wrong_type(identity: IdentityService, token: str) -> None:
    claims = {**_claims(token), "jti": "a4"}
    signer = identity.keys.signer()
    with pytest.raises(Unauthenticated):
        identity.authenticate(
            jwt.encode(claims, signer.private, algorithm="ES256", headers={"kid": "nope", "typ": "at+jwt"})
        )
    with pytest.raises(Unauthenticated):  # an ID token or a client assertion is no access token
        identity.authenticate(
            jwt.encode(claims, signer.private, algorithm="ES256", headers={"kid": signer.kid, "typ": "JWT"})
        )


def test_not_yet_valid_and_issued_in_the_future(identity: IdentityService, token: str, clock: Clock) -> None:
    claims = _claims(token)
    later = int(clock()) + 3600
    with pytest.raises(Unauthenticated, match="not valid yet"):
        identity.authenticate(_resign({**claims, "jti": "a5", "nbf": later}, identity))
    with pytest.raises(Unauthenticated, match="not valid yet"):
        identity.authenticate(_resign({**claims, "jti": "a6", "iat": later, "nbf": later - 7200}, identity))


def test_garbage_tokens(identity: IdentityService) -> None:
    for junk in ("", "abc", "a.b.c", "x" * 20000, "Bearer abc.def.ghi"):
        with pytest.raises(Unauthenticated):
            identity.authenticate(junk)


def test_token_claims_of_unknown_roles_are_refused(identity: IdentityService, token: str) -> None:
    for role in ("platform", "superuser"):
        with pytest.raises(Unauthenticated):
            identity.authenticate(
                _resign({**_claims(token), "jti": f"r-{role}", "rhip_role": role}, identity)
            )


def test_revoked_access_token(identity: IdentityService, token: str) -> None:
    identity.authenticate(token)
    identity.revoke({"token": token})
    with pytest.raises(Unauthenticated, match="revoked"):
        identity.authenticate(token)
    identity.revoke({"token": "not-a-token"})  # RFC 7009: unknown tokens are no error


def test_revocation_reaches_another_process(
    identity: IdentityService, token: str, db: object, clock: Clock, tmp_path: object
) -> None:
    from .support import identity_config

    other = IdentityService(identity.db, identity_config(tmp_path / "keys"), clock=clock)  # type: ignore[operator]
    assert other.authenticate(token).subject == "user:mother"
    identity.revoke({"token": token})
    with pytest.raises(Unauthenticated, match="revoked"):
        other.authenticate(token)


def test_disabled_user_token_stops_working(identity: IdentityService, token: str) -> None:
    identity.authenticate(token)
    identity.accounts.set_user_disabled("mother", True)
    with pytest.raises(Unauthenticated, match=r"disabled|revoked"):
        identity.authenticate(token)
    identity.accounts.set_user_disabled("mother", False)
    # Disabling ended the session: that token's session stays revoked.
    with pytest.raises(Unauthenticated, match="revoked"):
        identity.authenticate(token)


def test_disabled_account_without_a_session(identity: IdentityService, token: str) -> None:
    """An operator-issued token has no session: the disabled-accounts check alone stops it."""
    issued = identity.issue_token(username="mother", minutes=60)
    assert identity.authenticate(issued).subject == "user:mother"
    identity.accounts.set_user_disabled("mother", True)
    with pytest.raises(Unauthenticated, match="disabled"):
        identity.authenticate(issued)
    identity.accounts.set_user_disabled("mother", False)
    assert identity.authenticate(issued).subject == "user:mother"


def test_cached_authentication_is_fast(identity: IdentityService, token: str, db: object) -> None:
    fast = IdentityService(
        identity.db,
        type(identity.config)(
            **{**identity.config.__dict__, "revocation_ttl_seconds": 5.0, "account_ttl_seconds": 30.0}
        ),
        clock=identity.clock,
    )
    fast.authenticate(token)
    rounds = 20000
    started = time.perf_counter()
    for _ in range(rounds):
        fast.authenticate(token, address="10.0.0.1")
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 100e-6  # microseconds (about 5 on a laptop); generous for a loaded CI machine
