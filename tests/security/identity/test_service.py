"""The rest of the service: TLS client certificates, SMART discovery, revocation edge cases, operator tokens."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rhip.core.errors import InvalidRequest, ResourceNotFound, Unauthenticated
from rhip.security.identity.accounts import certificate_fingerprint
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.service import IdentityService
from rhip.security.principal import Role
from rhip.security.scopes import parse_scopes

from .support import PASSWORD, Clock


def _certificate() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "his.h001.example")])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_principal_for_a_registered_certificate(identity: IdentityService) -> None:
    pem = _certificate()
    fingerprint = certificate_fingerprint(pem)
    identity.accounts.add_client(
        "mllp-h001", scopes="system/*.cruds user/*.rs", institution="H001", cert_sha256=fingerprint
    )
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    for form in (fingerprint, colons):
        principal = identity.principal_for_certificate(form)
        assert principal is not None
        assert principal.subject == "client:mllp-h001" and principal.role is Role.SYSTEM
        assert principal.institution == "H001"
        assert principal.scopes == parse_scopes("system/*.cruds")  # user/* is beyond a system's role
    assert identity.principal_for_certificate("00" * 32) is None
    assert identity.principal_for_certificate("junk") is None
    identity.accounts.set_client_disabled("mllp-h001", True)
    assert identity.principal_for_certificate(fingerprint) is None
    with pytest.raises(InvalidRequest):
        certificate_fingerprint(b"not a certificate")


def test_smart_configuration(identity: IdentityService) -> None:
    document = identity.smart_configuration("https://rhip.example.cn/")
    assert document["token_endpoint"] == "https://rhip.example.cn/auth/token"
    assert document["revocation_endpoint"] == "https://rhip.example.cn/auth/revoke"
    assert document["jwks_uri"] == "https://rhip.example.cn/.well-known/jwks.json"
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert {"client-confidential-asymmetric", "permission-v2"} <= set(document["capabilities"])
    assert set(document["grant_types_supported"]) == {"client_credentials", "password", "refresh_token"}
    assert "system/*.cruds" in document["scopes_supported"]
    assert set(document["token_endpoint_auth_signing_alg_values_supported"]) == {
        "RS384",
        "ES384",
        "RS256",
        "ES256",
    }


def test_revoke_needs_a_token(identity: IdentityService) -> None:
    with pytest.raises(OAuthError) as caught:
        identity.revoke({})
    assert caught.value.error == "invalid_request"


def test_revoking_an_expired_or_foreign_token_is_quietly_ignored(
    identity: IdentityService, clock: Clock
) -> None:
    identity.accounts.add_user("u", PASSWORD, "clinician")
    token = identity.issue_token(username="u", minutes=1)
    clock.advance(3600)
    identity.revoke({"token": token})
    identity.revoke({"token": "eyJhbGciOiJub25lIn0.e30."})
    with identity.db.read() as conn:
        from sqlalchemy import text

        assert conn.execute(text("SELECT count(*) FROM security_revoked_token")).scalar() == 0


def test_operator_issued_tokens(identity: IdentityService, clock: Clock) -> None:
    identity.accounts.add_user("stat", PASSWORD, "statistician")
    token = identity.issue_token(username="stat", scopes="user/Observation.s", minutes=120)
    principal = identity.authenticate(token)
    assert principal.scopes == parse_scopes("user/Observation.s")
    clock.advance(119 * 60)
    identity.authenticate(token)
    clock.advance(2 * 60 + identity.config.leeway_seconds)
    with pytest.raises(Unauthenticated, match="expired"):
        identity.authenticate(token)
    with pytest.raises(InvalidRequest, match="minutes"):
        identity.issue_token(username="stat", minutes=identity.config.max_issue_minutes + 1)
    with pytest.raises(InvalidRequest, match="user or for a client"):
        identity.issue_token()
    with pytest.raises(ResourceNotFound):
        identity.issue_token(client_id="nobody")
    with pytest.raises(InvalidRequest):
        identity.issue_token(username="stat", scopes="system/*.c user/*.r")  # beyond the role: nothing


def test_no_secrets_in_the_listing(identity: IdentityService) -> None:
    identity.accounts.add_user("u", PASSWORD, "resident", with_totp=True)
    users = identity.accounts.list_users()
    assert users[0].has_totp and not hasattr(users[0], "password_hash")
    assert "argon2" not in repr(users)


def test_key_files_and_logs_hold_no_secrets(
    identity: IdentityService, clock: Clock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="rhip")
    identity.accounts.add_user("secret-name", PASSWORD, "clinician")
    answer = identity.token({"grant_type": "password", "username": "secret-name", "password": PASSWORD})
    with pytest.raises(OAuthError):
        identity.token(
            {"grant_type": "password", "username": "secret-name", "password": "wrong one!"},
        )
    identity.revoke({"token": answer["refresh_token"]})
    logged = caplog.text
    for secret in (PASSWORD, "secret-name", answer["access_token"], answer["refresh_token"]):
        assert secret not in logged
