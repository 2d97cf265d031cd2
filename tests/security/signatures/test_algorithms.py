"""Keys of the three families and the JWS algorithms: round trips, tampering, keys that do not fit."""

from __future__ import annotations

import pytest
from asn1crypto import keys as asn1_keys
from asn1crypto import pem as asn1_pem
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from rhip.security.signatures.algorithms import (
    UnsupportedAlgorithm,
    algorithm_for,
    digest,
    hash_of,
    sign,
    verify,
)
from rhip.security.signatures.keys import (
    InvalidKey,
    generate_key,
    kind_of,
    load_private_key,
    load_public_key,
    private_key_pem,
    public_key_der,
    public_of,
    same_key,
)
from rhip.security.signatures.sm2 import Sm2PrivateKey

RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())
SM2 = Sm2PrivateKey.generate()


@pytest.mark.parametrize(
    ("key", "alg"),
    [(SM2, "SM2-SM3"), (RSA, "RS256"), (RSA, "PS256"), (EC, "ES256")],
    ids=lambda v: str(v)[:8],
)
def test_round_trip_and_tampering(key: object, alg: str) -> None:
    data = b"header.payload"
    signature = sign(key, alg, data)  # type: ignore[arg-type]
    public = public_of(key)  # type: ignore[arg-type]
    assert verify(public, alg, data, signature)
    assert not verify(public, alg, data + b"x", signature)
    assert not verify(public, alg, data, bytes([signature[0] ^ 0x80]) + signature[1:])
    if alg in ("ES256", "SM2-SM3"):
        assert len(signature) == 64  # r || s as JWS wants it


def test_algorithm_for_each_key() -> None:
    assert algorithm_for(SM2) == "SM2-SM3"
    assert algorithm_for(EC.public_key()) == "ES256"
    assert algorithm_for(RSA) == "RS256"
    assert algorithm_for(RSA, rsa_pss=True) == "PS256"
    assert hash_of("SM2-SM3") == "sm3" and hash_of("ES256") == "sha256"
    assert digest("sm3", b"abc").hex().startswith("66c7f0f4")


def test_keys_that_do_not_fit_are_refused() -> None:
    with pytest.raises(UnsupportedAlgorithm):
        sign(EC, "SM2-SM3", b"x")
    with pytest.raises(UnsupportedAlgorithm):
        sign(SM2, "ES256", b"x")
    with pytest.raises(UnsupportedAlgorithm):
        sign(ec.generate_private_key(ec.SECP384R1()), "ES256", b"x")
    with pytest.raises(UnsupportedAlgorithm):
        algorithm_for(rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with pytest.raises(UnsupportedAlgorithm):
        verify(EC.public_key(), "HS256", b"x", b"y")
    with pytest.raises(UnsupportedAlgorithm):
        digest("md5", b"x")


@pytest.mark.parametrize("kind", ["ec", "rsa", "sm2"])
def test_private_keys_round_trip_through_pkcs8_pem(kind: str) -> None:
    key = generate_key(kind, rsa_bits=2048)  # type: ignore[arg-type]
    pem = private_key_pem(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    again = load_private_key(pem)
    assert kind_of(again) == kind
    assert same_key(again, public_of(key))
    der = asn1_pem.unarmor(pem)[2]
    assert same_key(load_private_key(der), public_of(key))
    assert kind_of(load_public_key(public_key_der(public_of(key)))) == kind


def test_sm2_keys_in_sec1_form_are_read() -> None:
    info = asn1_keys.PrivateKeyInfo.load(asn1_pem.unarmor(private_key_pem(SM2))[2])
    inner = info["private_key"].parsed
    inner["parameters"] = asn1_keys.ECDomainParameters(name="named", value="sm2p256v1")
    sec1 = asn1_pem.armor("EC PRIVATE KEY", inner.dump())
    loaded = load_private_key(sec1)
    assert isinstance(loaded, Sm2PrivateKey) and loaded.d == SM2.d


def test_encrypted_rsa_and_ec_keys_are_read_with_their_password() -> None:
    pem = EC.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    assert same_key(load_private_key(pem, b"secret"), EC.public_key())
    with pytest.raises(InvalidKey):
        load_private_key(pem, b"wrong")


def test_garbage_is_not_a_key() -> None:
    for data in (b"", b"not a key", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"):
        with pytest.raises(InvalidKey):
            load_private_key(data)
    with pytest.raises(InvalidKey):
        load_public_key(b"\x30\x03\x02\x01\x01")
    with pytest.raises(InvalidKey):
        generate_key("dsa")  # type: ignore[arg-type]


def test_sm2_keys_in_der_sec1_form_are_read() -> None:
    info = asn1_keys.PrivateKeyInfo.load(asn1_pem.unarmor(private_key_pem(SM2))[2])
    inner = info["private_key"].parsed
    inner["parameters"] = asn1_keys.ECDomainParameters(name="named", value="sm2p256v1")
    loaded = load_private_key(inner.dump())
    assert isinstance(loaded, Sm2PrivateKey) and loaded.d == SM2.d
    ec_der = EC.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert kind_of(load_private_key(ec_der)) == "ec"
