"""The platform's token signing keys (ES256) and their rotation; the public halves make the JWKS.

Where the keys live: each private key is a PKCS#8 PEM file ``<keys_dir>/<kid>.pem`` (mode 0600, folder 0700);
the database holds only the public JWK, the kid and when the key was created, retired and unpublished.
A database dump, backup, replica or reporting account therefore cannot mint tokens, and the signing secret
is handled like the platform's other secrets (files or mounted secrets, never the data). Verifying needs only
the database; signing needs the file, so every host that issues tokens shares ``keys_dir``.

Rotation: a new key signs from then on; retired keys stay in the JWKS until every token they signed has
expired (``retention``), and their private files are deleted at once since they never sign again.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from rhip.db.engine import Database
from rhip.security.identity import repository as sql
from rhip.security.identity.secretfiles import read_secret, remove_secret, secure_dir, write_secret

log = logging.getLogger("rhip.security.identity")
ALG = "ES256"
_MISS_INTERVAL = 1.0  # an unknown kid reloads the keys at most this often (random kids cannot flood the DB)


@dataclass(frozen=True)
class SigningKey:
    """The key that signs new tokens."""

    kid: str
    private: ec.EllipticCurvePrivateKey


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """The RFC 7638 JWK thumbprint (SHA-256, base64url) of an EC public key: its kid."""
    members = {k: public_jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(orjson.dumps(members, option=orjson.OPT_SORT_KEYS)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    jwk = dict(ECAlgorithm.to_jwk(key.public_key(), as_dict=True))
    jwk = {k: jwk[k] for k in ("kty", "crv", "x", "y")}
    return {**jwk, "kid": thumbprint(jwk), "use": "sig", "alg": ALG}


class KeyStore:
    """Signing keys: the current signer, the published public keys (cached ``ttl`` seconds), rotation."""

    def __init__(
        self,
        db: Database,
        keys_dir: str | Path,
        *,
        retention_seconds: float,
        clock: Callable[[], float] = time.time,
        ttl: float = 30.0,
    ) -> None:
        self.db = db
        self.dir = Path(keys_dir)
        self.retention_seconds = retention_seconds
        self.clock = clock
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = float("-inf")
        self._public: dict[str, Any] = {}  # kid → public key object
        self._jwks: list[dict[str, Any]] = []
        self._signing_kid: str | None = None
        self._signer: SigningKey | None = None

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    def _load(self) -> None:
        with self.db.read() as conn:
            rows = sql.select_published_keys(conn, self._now_us())
        public: dict[str, Any] = {}
        jwks: list[dict[str, Any]] = []
        signing = None
        for row in rows:
            jwk = orjson.loads(row.public_jwk)
            public[row.kid] = ECAlgorithm.from_jwk(jwk)
            jwks.append(jwk)
            if signing is None and row.retired_us is None:
                signing = str(row.kid)  # rows come newest first
        self._public, self._jwks, self._signing_kid = public, jwks, signing
        self._loaded_at = time.monotonic()

    def _fresh(self, *, force: bool = False) -> None:
        age = time.monotonic() - self._loaded_at
        if age > self.ttl or (force and age > _MISS_INTERVAL):
            with self._lock:
                if time.monotonic() - self._loaded_at > (_MISS_INTERVAL if force else self.ttl):
                    self._load()

    def public_key(self, kid: str) -> Any | None:
        """The published public key ``kid`` (None when unknown or unpublished)."""
        self._fresh()
        key = self._public.get(kid)
        if key is None:
            self._fresh(force=True)  # another process may have rotated a moment ago
            key = self._public.get(kid)
        return key

    def is_published(self, kid: str) -> bool:
        """Whether ``kid`` is still in the JWKS (cached: no database access on the hot path)."""
        self._fresh()
        return kid in self._public

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set of the published keys."""
        self._fresh()
        return {"keys": list(self._jwks)}

    def signer(self) -> SigningKey:
        """The key new tokens are signed with (created on first use)."""
        self._fresh()
        if self._signing_kid is None:
            self._ensure_key()
        current = self._signer
        if current is not None and current.kid == self._signing_kid:
            return current
        with self._lock:
            path = self.dir / f"{self._signing_kid}.pem"
            if not path.exists():
                # Another process may have rotated a moment ago (and deleted the retired key's file).
                self._load()
                path = self.dir / f"{self._signing_kid}.pem"
            kid = self._signing_kid
            if kid is None:
                raise RuntimeError("no token signing key is available")
            if not path.exists():
                raise RuntimeError(
                    f"the private half of signing key {kid} is not in {self.dir}: share keys_dir between hosts"
                )
            private = serialization.load_pem_private_key(read_secret(path), password=None)
            if not isinstance(private, ec.EllipticCurvePrivateKey):
                raise RuntimeError(f"{path.name} is not an EC private key")
            self._signer = SigningKey(kid, private)
            return self._signer

    def _new_key(self) -> tuple[dict[str, Any], Path]:
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = _public_jwk(private)
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = secure_dir(self.dir) / f"{jwk['kid']}.pem"
        write_secret(path, pem)
        return jwk, path

    def _insert(self, conn: Any, jwk: dict[str, Any], now_us: int) -> None:
        values = {
            "kid": jwk["kid"],
            "alg": ALG,
            "public_jwk": orjson.dumps(jwk).decode(),
            "created_us": now_us,
        }
        sql.insert_key(conn, {**values, "retired_us": None, "expires_us": None})

    def _ensure_key(self) -> None:
        """Create the first signing key unless some process has one by now."""
        with self._lock:
            jwk, path = self._new_key()
            try:
                with self.db.write() as conn:
                    rows = sql.select_published_keys(conn, self._now_us())
                    created = not any(r.retired_us is None for r in rows)
                    if created:
                        self._insert(conn, jwk, self._now_us())
            except BaseException:
                remove_secret(path)
                raise
            if not created:
                remove_secret(path)
            else:
                log.info("created token signing key %s", jwk["kid"])
            self._load()

    def rotate(self, *, withdraw_old: bool = False) -> str:
        """Sign with a new key from now; the old ones stay published for ``retention`` (or not: ``withdraw_old``).

        ``withdraw_old`` is for a compromised key: every token it signed stops working at once (in other
        processes within the key cache's ``ttl``).
        """
        with self._lock:
            jwk, path = self._new_key()
            now_us = self._now_us()
            try:
                with self.db.write() as conn:
                    retired = sql.retire_keys(
                        conn, now_us=now_us, expires_us=now_us + int(self.retention_seconds * 1_000_000)
                    )
                    self._insert(conn, jwk, now_us)
                    if withdraw_old:
                        sql.withdraw_keys(conn, now_us=now_us, keep=jwk["kid"])
            except BaseException:
                remove_secret(path)
                raise
            for kid in retired:
                remove_secret(self.dir / f"{kid}.pem")  # retired keys never sign again
            log.info("rotated token signing key: %s signs now, %d retired", jwk["kid"], len(retired))
            self._signer = None
            self._load()
            return str(jwk["kid"])
