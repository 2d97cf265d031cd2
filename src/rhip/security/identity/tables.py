"""The identity tables: users, clients, signing keys, refresh tokens, revocations, used assertions (migration 0005).

Secrets are never stored as given: passwords as argon2id hashes, refresh tokens as SHA-256 digests, TOTP
secrets sealed with a key kept in ``keys_dir``; signing keys' private halves live only in ``keys_dir`` files.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, Index, Integer, String, Table, Text

from rhip.db.metadata import metadata

security_user = Table(
    "security_user",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(256), nullable=False),  # argon2id PHC string
    Column("role", String(16), nullable=False),
    Column("institution", String(64), nullable=True),  # institution code (医疗机构代码)
    Column("organization", String(64), nullable=True),  # its Organization id
    Column("department", String(64), nullable=True),
    Column("district", String(12), nullable=True),  # GB/T 2260 code (prefix)
    Column("patients", Text, nullable=False),  # space-separated Patient ids: a resident's own and children's
    Column("totp_secret", String(128), nullable=True),  # sealed (rhip.security.identity.sealing)
    Column("totp_last_step", BigInteger, nullable=True),  # last accepted TOTP time step: a code works once
    Column("disabled", Boolean, nullable=False),
    Column("failed_count", Integer, nullable=False),
    Column("locked_until_us", BigInteger, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

security_client = Table(
    "security_client",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("name", String(256), nullable=False),
    Column("role", String(16), nullable=False),  # system | admin
    Column("institution", String(64), nullable=True),
    Column("organization", String(64), nullable=True),
    Column("scopes", Text, nullable=False),  # the most it may ask for, space-separated SMART scopes
    Column("jwks", Text, nullable=True),  # its public keys (JSON Web Key Set), or
    Column("jwks_url", String(1024), nullable=True),  # where to fetch them (https URL or a file path)
    Column("cert_sha256", String(64), nullable=True),  # TLS client certificate fingerprint (lower-case hex)
    Column("disabled", Boolean, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index(None, "cert_sha256", unique=True),
)

security_signing_key = Table(
    "security_signing_key",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False),  # ES256
    Column("public_jwk", Text, nullable=False),  # JSON; the private key is the file <keys_dir>/<kid>.pem
    Column("created_us", BigInteger, nullable=False),
    Column("retired_us", BigInteger, nullable=True),  # no longer signs from then
    Column(
        "expires_us", BigInteger, nullable=True
    ),  # leaves the JWKS then: every token it signed has expired
)

security_refresh_token = Table(
    "security_refresh_token",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 hex of the opaque token
    Column(
        "family", String(64), nullable=False
    ),  # the portal session (``sid``): every rotation of one sign-in
    Column("username", String(64), nullable=False),
    Column("client_id", String(128), nullable=True),
    Column("scope", Text, nullable=False),
    Column("issued_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),  # the session's end: rotation does not extend it
    Column("used_us", BigInteger, nullable=True),  # rotated: presenting it again revokes the whole family
    Column("revoked_us", BigInteger, nullable=True),
    Index(None, "family"),
    Index(None, "expires_us"),
)

security_revoked_token = Table(
    "security_revoked_token",
    metadata,
    Column("jti", String(80), primary_key=True),  # an access token's jti, or ``sid:<family>`` for a session
    Column("revoked_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),  # kept until what it revokes has expired anyway
    Index(None, "expires_us"),
)

security_used_assertion = Table(
    "security_used_assertion",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("jti", String(128), primary_key=True),  # a client assertion's jti: each is accepted once
    Column("expires_us", BigInteger, nullable=False),  # kept until the assertion has expired
    Index(None, "expires_us"),
)
