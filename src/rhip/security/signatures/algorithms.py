"""Signing and verifying bytes: the JWS algorithms of document signatures and the X.509 ones of certificates.

Document signatures (JWS ``alg``):

- ``SM2-SM3``: SM2 with SM3 (GM/T 0003.2, GM/T 0004), the digest e = SM3(Z_A || M) with the default user id
  ``1234567812345678``; the signature is r || s (64 bytes). Not a registered JOSE name: China's own.
- ``RS256``: RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3); ``PS256``: RSASSA-PSS with SHA-256, MGF1-SHA-256
  and a 32-byte salt (§3.5); RSA keys of at least 2048 bits.
- ``ES256``: ECDSA on P-256 with SHA-256, r || s (§3.4).

Certificates (X.509 signatureAlgorithm): sha256/384/512WithRSAEncryption, RSASSA-PSS, ecdsa-with-SHA256/384/512
and SM2-with-SM3 (1.2.156.10197.1.501, a DER SEQUENCE of r and s, Z_A with the default user id).
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from rhip.security.signatures.keys import MIN_RSA_BITS, PrivateKey, PublicKey, describe
from rhip.security.signatures.sm2 import SIGNATURE_OID, Sm2Error, Sm2PrivateKey, Sm2PublicKey, der_signature
from rhip.security.signatures.sm2 import raw_signature as sm2_raw
from rhip.security.signatures.sm3 import sm3

SM2_SM3 = "SM2-SM3"
JWS_ALGORITHMS = (SM2_SM3, "RS256", "PS256", "ES256")
HashName = Literal["sm3", "sha256"]

RSA_PSS_OID = "1.2.840.113549.1.1.10"
# X.509 signature algorithm OID -> (key family, hash); RSASSA-PSS names its hash in its parameters.
X509_ALGORITHMS: dict[str, tuple[str, str]] = {
    "1.2.840.113549.1.1.11": ("rsa", "sha256"),
    "1.2.840.113549.1.1.12": ("rsa", "sha384"),
    "1.2.840.113549.1.1.13": ("rsa", "sha512"),
    "1.2.840.10045.4.3.2": ("ec", "sha256"),
    "1.2.840.10045.4.3.3": ("ec", "sha384"),
    "1.2.840.10045.4.3.4": ("ec", "sha512"),
    SIGNATURE_OID: ("sm2", "sm3"),
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


class UnsupportedAlgorithm(ValueError):
    """An algorithm this platform does not sign or verify with, or a key that does not fit it."""


def hash_of(alg: str) -> HashName:
    """The hash a JWS algorithm digests content with (SM3 for SM2-SM3, else SHA-256)."""
    return "sm3" if alg == SM2_SM3 else "sha256"


def digest(name: str, data: bytes) -> bytes:
    """The SM3 or SHA-256 digest of ``data``."""
    if name == "sm3":
        return sm3(data)
    if name == "sha256":
        return hashlib.sha256(data).digest()
    raise UnsupportedAlgorithm(f"unknown digest {name!r}: sm3 or sha256")


def algorithm_for(key: PrivateKey | PublicKey, *, rsa_pss: bool = False) -> str:
    """The JWS algorithm a key signs with: SM2-SM3, ES256, RS256 (or PS256); raises when it signs none."""
    if isinstance(key, Sm2PrivateKey | Sm2PublicKey):
        alg = SM2_SM3
    elif isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        alg = "PS256" if rsa_pss else "RS256"
    else:
        alg = "ES256"
    check_key(key, alg)
    return alg


def check_key(key: PrivateKey | PublicKey, alg: str) -> None:
    """Raise UnsupportedAlgorithm unless ``key`` may sign or verify with the JWS algorithm ``alg``."""
    if alg == SM2_SM3:
        ok = isinstance(key, Sm2PrivateKey | Sm2PublicKey)
    elif alg in ("RS256", "PS256"):
        ok = isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS
    elif alg == "ES256":
        ok = isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) and isinstance(
            key.curve, ec.SECP256R1
        )
    else:
        raise UnsupportedAlgorithm(f"unsupported signature algorithm {alg!r}: {', '.join(JWS_ALGORITHMS)}")
    if not ok:
        raise UnsupportedAlgorithm(f"a {describe(key)} key does not sign with {alg}")


def _pss() -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def sign(key: PrivateKey, alg: str, data: bytes) -> bytes:
    """The JWS signature of ``data`` with ``alg`` (r || s for SM2-SM3 and ES256)."""
    check_key(key, alg)
    if isinstance(key, Sm2PrivateKey):
        return key.sign(data)
    if isinstance(key, rsa.RSAPrivateKey):
        pad = _pss() if alg == "PS256" else padding.PKCS1v15()
        return key.sign(data, pad, hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify(key: PublicKey, alg: str, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the JWS signature of ``data`` by ``key`` with ``alg``."""
    check_key(key, alg)
    if isinstance(key, Sm2PublicKey):
        return key.verify(signature, data)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pad = _pss() if alg == "PS256" else padding.PKCS1v15()
            key.verify(signature, data, pad, hashes.SHA256())
            return True
        if len(signature) != 64:
            return False
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        key.verify(encode_dss_signature(r, s), data, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


# -- X.509 -----------------------------------------------------------------------------------------------


def x509_algorithm(key: PrivateKey) -> str:
    """The signatureAlgorithm OID a CA key signs certificates with (SHA-256, SHA-384 on P-384, SM3)."""
    if isinstance(key, Sm2PrivateKey):
        return SIGNATURE_OID
    if isinstance(key, rsa.RSAPrivateKey):
        return "1.2.840.113549.1.1.11"
    return {"secp384r1": "1.2.840.10045.4.3.3", "secp521r1": "1.2.840.10045.4.3.4"}.get(
        key.curve.name, "1.2.840.10045.4.3.2"
    )


def x509_sign(key: PrivateKey, data: bytes) -> tuple[str, bytes]:
    """(signatureAlgorithm OID, signature value) of a to-be-signed certificate by a CA key."""
    oid = x509_algorithm(key)
    hash_cls = _HASHES.get(X509_ALGORITHMS[oid][1])
    if isinstance(key, Sm2PrivateKey):
        return oid, der_signature(key.sign(data))
    assert hash_cls is not None
    if isinstance(key, rsa.RSAPrivateKey):
        return oid, key.sign(data, padding.PKCS1v15(), hash_cls())
    return oid, key.sign(data, ec.ECDSA(hash_cls()))


def x509_verify(key: PublicKey, oid: str, parameters: Any, data: bytes, signature: bytes) -> bool:
    """Whether a certificate's signature (algorithm ``oid`` with asn1crypto ``parameters``) verifies.

    Raises UnsupportedAlgorithm for an algorithm outside :data:`X509_ALGORITHMS` and RSASSA-PSS, or one that
    does not fit the key.
    """
    if oid == RSA_PSS_OID:
        return _verify_pss(key, parameters, data, signature)
    family, hash_name = X509_ALGORITHMS.get(oid, ("", ""))
    if not family:
        raise UnsupportedAlgorithm(f"unsupported certificate signature algorithm {oid}")
    try:
        if family == "sm2" and isinstance(key, Sm2PublicKey):
            return key.verify(sm2_raw(signature, key.curve.size), data)
        if family == "rsa" and isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), _HASHES[hash_name]())
            return True
        if family == "ec" and isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_HASHES[hash_name]()))
            return True
    except (InvalidSignature, Sm2Error, ValueError):
        return False
    raise UnsupportedAlgorithm(f"a {describe(key)} key cannot have made a {family.upper()} signature")


def _verify_pss(key: PublicKey, parameters: Any, data: bytes, signature: bytes) -> bool:
    if not isinstance(key, rsa.RSAPublicKey):
        raise UnsupportedAlgorithm(f"a {describe(key)} key cannot have made an RSASSA-PSS signature")
    try:
        hash_name = parameters["hash_algorithm"]["algorithm"].native
        mgf_hash = parameters["mask_gen_algorithm"]["parameters"]["algorithm"].native
        salt = int(parameters["salt_length"].native)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise UnsupportedAlgorithm("RSASSA-PSS parameters that cannot be read") from exc
    if hash_name not in _HASHES or mgf_hash not in _HASHES:
        raise UnsupportedAlgorithm(f"RSASSA-PSS with {hash_name} is not supported")
    pad = padding.PSS(mgf=padding.MGF1(_HASHES[mgf_hash]()), salt_length=salt)
    try:
        key.verify(signature, data, pad, _HASHES[hash_name]())
    except InvalidSignature:
        return False
    return True
