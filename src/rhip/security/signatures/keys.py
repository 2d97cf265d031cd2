"""Private and public keys of the three families documents are signed with: RSA, EC (P-256 …) and SM2.

RSA and EC keys are ``cryptography`` objects. SM2 keys (curve 1.2.156.10197.1.301) are
:mod:`rhip.security.signatures.sm2` objects, read and written with ``asn1crypto`` since ``cryptography``
does not know the curve: PKCS#8 ``PRIVATE KEY`` (as OpenSSL 3 and GmSSL write them) or SEC1
``EC PRIVATE KEY``, and SubjectPublicKeyInfo with id-ecPublicKey + sm2p256v1 (some SM2 certificates put
the curve OID itself as the key algorithm: read too).
"""

from __future__ import annotations

from typing import Literal

from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rhip.security.signatures.sm2 import CURVE_OID, SM2P256V1, Sm2Error, Sm2PrivateKey, Sm2PublicKey

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Sm2PrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Sm2PublicKey
KeyKind = Literal["rsa", "ec", "sm2"]
KEY_KINDS: tuple[KeyKind, ...] = ("ec", "rsa", "sm2")
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
MIN_RSA_BITS = 2048

# asn1crypto knows the curve by name once registered (the registry is its own, process-wide).
if CURVE_OID not in asn1_keys.NamedCurve._map:
    asn1_keys.NamedCurve.register("sm2p256v1", CURVE_OID, 32)


class InvalidKey(ValueError):
    """A key file that cannot be read, or a key of an unsupported kind."""


def generate_key(kind: KeyKind, *, rsa_bits: int = 3072) -> PrivateKey:
    """A new key: EC on P-256, RSA of ``rsa_bits`` bits, or SM2 on sm2p256v1."""
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    if kind == "sm2":
        return Sm2PrivateKey.generate()
    raise InvalidKey(f"unknown key kind {kind!r}: ec, rsa or sm2")


def kind_of(key: PrivateKey | PublicKey) -> KeyKind:
    """The family of a key."""
    if isinstance(key, Sm2PrivateKey | Sm2PublicKey):
        return "sm2"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    raise InvalidKey(f"unsupported key type {type(key).__name__}")


def public_of(key: PrivateKey) -> PublicKey:
    """The public key of a private key."""
    return key.public_key()


def describe(key: PrivateKey | PublicKey) -> str:
    """A short description (family and size or curve), for messages: 'RSA 3072', 'EC secp256r1', 'SM2'."""
    if isinstance(key, Sm2PrivateKey | Sm2PublicKey):
        return "SM2"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    return f"EC {key.curve.name}"


# -- private keys ----------------------------------------------------------------------------------------


def private_key_pem(key: PrivateKey) -> bytes:
    """The key as unencrypted PKCS#8 PEM (store it readable by its owner only)."""
    if isinstance(key, Sm2PrivateKey):
        armored: bytes = asn1_pem.armor("PRIVATE KEY", _sm2_pkcs8(key).dump())
        return armored
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _sm2_params() -> asn1_keys.ECDomainParameters:
    return asn1_keys.ECDomainParameters(name="named", value="sm2p256v1")


def _sm2_pkcs8(key: Sm2PrivateKey) -> asn1_keys.PrivateKeyInfo:
    inner = asn1_keys.ECPrivateKey(
        {"version": "ecPrivkeyVer1", "private_key": key.d, "public_key": key.public_key().to_bytes()}
    )
    algorithm = asn1_keys.PrivateKeyAlgorithm({"algorithm": "ec", "parameters": _sm2_params()})
    return asn1_keys.PrivateKeyInfo({"version": 0, "private_key_algorithm": algorithm, "private_key": inner})


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """A private key from PEM or DER: PKCS#8 (plain or, for RSA/EC, encrypted) or SEC1/PKCS#1."""
    der, label = _unarmor(data)
    sm2 = _sm2_private(der, label)
    if sm2 is not None:
        return sm2
    try:
        if label is not None:
            loaded = serialization.load_pem_private_key(data, password=password)
        else:
            loaded = serialization.load_der_private_key(der, password=password)
    except (ValueError, TypeError) as exc:
        raise InvalidKey(f"cannot read the private key: {exc}") from exc
    except Exception as exc:  # UnsupportedAlgorithm: a curve or key type cryptography does not support
        raise InvalidKey(f"unsupported private key: {type(exc).__name__}") from exc
    if isinstance(loaded, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        return loaded
    raise InvalidKey(f"unsupported private key type {type(loaded).__name__}: RSA, EC or SM2")


def _unarmor(data: bytes) -> tuple[bytes, str | None]:
    if asn1_pem.detect(data):
        try:
            label, _headers, der = asn1_pem.unarmor(data)
        except ValueError as exc:
            raise InvalidKey("the PEM file is damaged") from exc
        return der, label
    return data, None


def _sm2_private(der: bytes, label: str | None) -> Sm2PrivateKey | None:
    """The SM2 key a PKCS#8 or SEC1 structure holds; None when it holds another kind of key."""
    if label not in (None, "PRIVATE KEY", "EC PRIVATE KEY"):
        return None
    scalar = _pkcs8_sm2(der) if label != "EC PRIVATE KEY" else None
    if scalar is None and label != "PRIVATE KEY":
        scalar = _sec1_sm2(der)
    if scalar is None:
        return None
    try:
        return Sm2PrivateKey(scalar, SM2P256V1)
    except Sm2Error as exc:
        raise InvalidKey(str(exc)) from exc


def _pkcs8_sm2(der: bytes) -> int | None:
    try:
        info = asn1_keys.PrivateKeyInfo.load(der)
        algorithm = info["private_key_algorithm"]
        if algorithm["algorithm"].dotted != EC_PUBLIC_KEY_OID or not _is_sm2(algorithm["parameters"]):
            return None
        return int(info["private_key"].parsed["private_key"].native)
    except (ValueError, TypeError, KeyError):
        return None  # not this structure: cryptography reads it, or says what is wrong


def _sec1_sm2(der: bytes) -> int | None:
    try:
        ec_key = asn1_keys.ECPrivateKey.load(der)
        if not _is_sm2(ec_key["parameters"]):
            return None
        return int(ec_key["private_key"].native)
    except (ValueError, TypeError, KeyError):
        return None


def _is_sm2(parameters: object) -> bool:
    chosen = getattr(parameters, "chosen", None)
    return getattr(parameters, "name", None) == "named" and getattr(chosen, "dotted", None) == CURVE_OID


# -- public keys -----------------------------------------------------------------------------------------


def public_key_der(key: PublicKey) -> bytes:
    """The SubjectPublicKeyInfo DER of a public key."""
    if isinstance(key, Sm2PublicKey):
        algorithm = asn1_keys.PublicKeyAlgorithm({"algorithm": "ec", "parameters": _sm2_params()})
        info = asn1_keys.PublicKeyInfo({"algorithm": algorithm, "public_key": key.to_bytes()})
        der: bytes = info.dump()
        return der
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public_key(spki_der: bytes) -> PublicKey:
    """A public key from SubjectPublicKeyInfo DER (RSA, EC or SM2)."""
    try:
        info = asn1_keys.PublicKeyInfo.load(spki_der, strict=True)
        algorithm = info["algorithm"]["algorithm"].dotted
        sm2 = algorithm == CURVE_OID or (
            algorithm == EC_PUBLIC_KEY_OID and _is_sm2(info["algorithm"]["parameters"])
        )
        if sm2:
            return Sm2PublicKey.from_bytes(bytes(info["public_key"]))
    except Sm2Error as exc:
        raise InvalidKey(str(exc)) from exc
    except (ValueError, TypeError) as exc:
        raise InvalidKey("the public key is not a SubjectPublicKeyInfo") from exc
    try:
        loaded = serialization.load_der_public_key(spki_der)
    except Exception as exc:  # ValueError, UnsupportedAlgorithm
        raise InvalidKey(f"unsupported public key: {type(exc).__name__}") from exc
    if isinstance(loaded, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        return loaded
    raise InvalidKey(f"unsupported public key type {type(loaded).__name__}: RSA, EC or SM2")


def same_key(private: PrivateKey, public: PublicKey) -> bool:
    """Whether a public key is the one of a private key (a certificate and its key file match)."""
    return public_key_der(public_of(private)) == public_key_der(public)
