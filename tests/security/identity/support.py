"""Test support for the identity service: a settable clock, client keys that sign assertions, a config."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from rhip.security.identity.assertions import ASSERTION_TYPE
from rhip.security.identity.config import IdentityConfig, PasswordPolicy

ISSUER = "https://rhip.test"
FHIR_BASE = "https://rhip.test/fhir"
TOKEN_URL = "https://rhip.test/auth/token"
START = 1_800_000_000.0
PASSWORD = "correct horse battery"
# argon2id at its cheapest: the tests check behaviour, not cost.
FAST = PasswordPolicy(time_cost=1, memory_kib=8, parallelism=1, min_length=8)


class Clock:
    """A clock the tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def identity_config(keys_dir: Path, **overrides: Any) -> IdentityConfig:
    """A config whose caches reload on every call (the tests see every change at once)."""
    values: dict[str, Any] = {
        "issuer": ISSUER,
        "audiences": (FHIR_BASE, "http://127.0.0.1:8080/fhir"),
        "keys_dir": str(keys_dir),
        "token_url": TOKEN_URL,
        "passwords": FAST,
        "revocation_ttl_seconds": 0.0,
        "account_ttl_seconds": 0.0,
    }
    values.update(overrides)
    return IdentityConfig(**values)


class ClientKey:
    """A client's key pair: its public JWKS to register, assertions signed with its private key."""

    def __init__(self, alg: str = "ES384", kid: str = "client-key-1") -> None:
        self.alg = alg
        self.kid = kid
        if alg.startswith("ES"):
            curve = ec.SECP256R1() if alg == "ES256" else ec.SECP384R1()
            self.private: Any = ec.generate_private_key(curve)
            jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.public_jwk = {**jwk, "kid": kid, "alg": alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        """The JWKS to register."""
        return {"keys": [self.public_jwk]}

    def assertion(self, client_id: str, now: float, **claims: Any) -> str:
        """A client assertion (valid unless ``claims`` override something)."""
        body: dict[str, Any] = {
            "iss": client_id,
            "sub": client_id,
            "aud": TOKEN_URL,
            "iat": int(now),
            "exp": int(now) + 240,
            "jti": secrets.token_hex(16),
        }
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm=self.alg, headers={"kid": self.kid})

    def form(
        self, client_id: str, now: float, *, scope: str | None = "system/*.rs", **claims: Any
    ) -> dict[str, str]:
        """A client_credentials token request."""
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(client_id, now, **claims),
        }
        if scope is not None:
            form["scope"] = scope
        return form
