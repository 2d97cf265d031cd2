"""The signature format: a JWS (RFC 7515) in compact serialization over the manifest of digests.

``Provenance.signature.data`` holds (base64, as base64Binary) the ASCII text
``BASE64URL(header) "." BASE64URL(manifest) "." BASE64URL(signature)``, ``sigFormat`` is
``application/jose``. The protected header::

    {"alg": "SM2-SM3" | "RS256" | "PS256" | "ES256",
     "typ": "JOSE", "cty": "application/vnd.rhip.signed-manifest+json",
     "x5c": [signer certificate, intermediate CAs …]  (base64 DER, RFC 7515 §4.1.6),
     "sigT": "2025-03-01T08:00:00.000Z"  (claimed signing time, as JAdES), "crit": ["sigT"]}

The manifest (:func:`rhip.security.signatures.targets.manifest`) names the target and carries the SM3 (for
SM2-SM3) or SHA-256 digests of its signed view and contents. The signature covers the signing input
``ASCII(BASE64URL(header) "." BASE64URL(manifest))`` exactly as JWS specifies; for SM2-SM3 it is the SM2
signature (Z_A with user id 1234567812345678) of those bytes, r || s.

The payload is attached, not detached: a verifier tells "the signature is broken" (the JWS does not verify)
from "the document changed since it was signed" (the JWS verifies but the digests differ) and can say which
part changed. It holds digests only, no clinical data.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from rhip.core.clock import fhir_instant
from rhip.security.signatures.algorithms import JWS_ALGORITHMS, UnsupportedAlgorithm, check_key, sign, verify
from rhip.security.signatures.certificates import Certificate, CertificateError
from rhip.security.signatures.keys import PrivateKey
from rhip.security.signatures.targets import b64url, canonical_json

SIG_FORMAT = "application/jose"
CONTENT_TYPE = "application/vnd.rhip.signed-manifest+json"
MAX_JWS_CHARS = 64 * 1024  # a manifest and a few certificates; anything much larger is not ours


class MalformedSignature(ValueError):
    """Signature data that is not a JWS of this format."""


@dataclass(frozen=True)
class Jws:
    """A parsed compact JWS."""

    header: dict[str, Any]
    payload: dict[str, Any]
    signing_input: bytes
    signature: bytes

    @property
    def algorithm(self) -> str:
        """The header's ``alg``."""
        return str(self.header["alg"])

    @property
    def signed_at(self) -> datetime:
        """The header's ``sigT`` (UTC)."""
        return parse_time(str(self.header["sigT"]))

    def certificates(self) -> list[Certificate]:
        """The ``x5c`` chain, signer first."""
        try:
            return [Certificate.from_der(base64.b64decode(c, validate=True)) for c in self.header["x5c"]]
        except (binascii.Error, ValueError, TypeError, CertificateError) as exc:
            raise MalformedSignature(f"x5c holds something that is not a certificate: {exc}") from exc


def instant(value: datetime) -> str:
    """A UTC instant with millisecond precision, as FHIR writes them: ``2025-03-01T08:00:00.000Z``."""
    return fhir_instant(value)


def parse_time(text: str) -> datetime:
    """An ISO 8601 instant with a zone (``Z`` or an offset)."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedSignature(f"sigT {text[:40]!r} is not an instant") from exc
    if value.tzinfo is None:
        raise MalformedSignature("sigT has no time zone")
    return value.astimezone(UTC)


def create(
    key: PrivateKey, alg: str, chain: Sequence[Certificate], payload: dict[str, Any], signed_at: datetime
) -> str:
    """The compact JWS of ``payload`` signed by ``key`` with ``alg``, naming ``chain`` in x5c."""
    check_key(key, alg)
    header = {
        "alg": alg,
        "typ": "JOSE",
        "cty": CONTENT_TYPE,
        "x5c": [base64.b64encode(c.der).decode("ascii") for c in chain],
        "sigT": instant(signed_at),
        "crit": ["sigT"],
    }
    signing_input = f"{b64url(canonical_json(header))}.{b64url(canonical_json(payload))}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(sign(key, alg, signing_input))}"


def _b64url_decode(part: str) -> bytes:
    if not part or any(c not in _B64URL for c in part):
        raise MalformedSignature("a JWS part is not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def parse(compact: str) -> Jws:
    """Parse a compact JWS of this format; MalformedSignature when it is not one."""
    if len(compact) > MAX_JWS_CHARS:
        raise MalformedSignature("the signature is too large")
    parts = compact.split(".")
    if len(parts) != 3:
        raise MalformedSignature("a compact JWS has three parts")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedSignature("the JWS header or payload is not JSON") from exc
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise MalformedSignature("the JWS header and payload are JSON objects")
    if header.get("alg") not in JWS_ALGORITHMS:
        raise MalformedSignature(f"unsupported alg {str(header.get('alg'))[:20]!r}")
    if header.get("cty") != CONTENT_TYPE:
        raise MalformedSignature("not a signature of this platform's format (cty)")
    if not isinstance(header.get("x5c"), list) or not header["x5c"]:
        raise MalformedSignature("the JWS names no certificate (x5c)")
    if not isinstance(header.get("sigT"), str):
        raise MalformedSignature("the JWS has no signing time (sigT)")
    crit = header.get("crit", [])
    if not isinstance(crit, list):
        raise MalformedSignature("crit is not a list")
    unknown = [str(c)[:20] for c in crit if c != "sigT"]
    if unknown:
        raise MalformedSignature(f"unsupported critical header parameters {unknown}")
    return Jws(header, payload, f"{parts[0]}.{parts[1]}".encode("ascii"), _b64url_decode(parts[2]))


def foreign(compact: str) -> bool:
    """Whether a JWS is plainly of another format (a readable header naming another ``cty``).

    A damaged one is not foreign: it is checked, and found invalid.
    """
    try:
        header = json.loads(_b64url_decode(compact.split(".", 1)[0]))
    except (ValueError, UnicodeDecodeError, MalformedSignature):
        return False
    return isinstance(header, dict) and header.get("cty") != CONTENT_TYPE


def signature_verifies(jws: Jws, certificate: Certificate) -> bool:
    """Whether the JWS signature verifies with the certificate's key (False for a key unfit for alg)."""
    return _verifies(jws.algorithm, certificate.der, jws.signing_input, jws.signature)


@lru_cache(maxsize=4096)
def _verifies(alg: str, cert_der: bytes, signing_input: bytes, signature: bytes) -> bool:
    # Reads of a signed document verify the same JWS again and again; the answer never changes.
    try:
        key = Certificate.from_der(cert_der).public_key
        return verify(key, alg, signing_input, signature)
    except (UnsupportedAlgorithm, CertificateError):
        return False
