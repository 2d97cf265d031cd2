"""SM3 and SM2 against the published test vectors (GM/T 0003.5 / GB/T 32918.5 annex A) and OpenSSL."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from rhip.security.signatures.keys import load_private_key, private_key_pem, public_key_der
from rhip.security.signatures.sm2 import (
    DEFAULT_ID,
    SM2P256V1,
    Curve,
    Sm2Error,
    Sm2PrivateKey,
    Sm2PublicKey,
    der_signature,
    raw_signature,
)
from rhip.security.signatures.sm3 import sm3, sm3_pure

from .conftest import needs_openssl_sm2

# GM/T 0004-2012 annex A.
SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
]

# GM/T 0003.5-2012 annex A.2 (and GB/T 32918.5-2017): the recommended curve, user id 1234567812345678.
D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
PUB_X = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
PUB_Y = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
Z = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3"
E = 0xF0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640
R_S = (
    "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3"
    "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA"
)

# GM/T 0003 (2010 draft) example 1 on its 256-bit test curve, user id ALICE123@YAHOO.COM.
TEST_CURVE = Curve(
    "gmt0003-example",
    p=0x8542D69E4C044F18E8B92435BF6FF7DE457283915C45517D722EDB8B08F1DFC3,
    a=0x787968B4FA32C3FD2417842E73BBFEFF2F3C848B6831D7E0EC65228B3937E498,
    b=0x63E4C6D3B23B0C849CF84241484BFE48F61D59A5B16BA06E6E12D1DA27C5249A,
    gx=0x421DEBD61B62EAB6746434EBC3CC315E32220B3BADD50BDC4C4E6C147FEDD43D,
    gy=0x0680512BCBB42C07D47349D2153B70C4E5D7FDFCBFA36EA1A85841B9E46E09A2,
    n=0x8542D69E4C044F18E8B92435BF6FF7DD297720630485628D5AE74EE7C32E79B7,
)


@pytest.mark.parametrize(("message", "expected"), SM3_VECTORS)
def test_sm3_vectors(message: bytes, expected: str) -> None:
    assert sm3(message).hex() == expected
    assert sm3_pure(message).hex() == expected


@pytest.mark.parametrize("length", [0, 1, 55, 56, 63, 64, 65, 119, 1000])
def test_pure_sm3_matches_hashlib_at_padding_edges(length: int) -> None:
    data = bytes(range(256)) * 4
    expected = hashlib.new("sm3", data[:length]).digest()
    assert sm3_pure(data[:length]) == expected


def test_public_key_and_z_of_the_standard_example() -> None:
    public = Sm2PrivateKey(D).public_key()
    assert (public.x, public.y) == (PUB_X, PUB_Y)
    assert public.z(DEFAULT_ID).hex().upper() == Z
    assert public.digest(b"message digest") == E


def test_known_answer_signature_on_the_recommended_curve() -> None:
    signature = Sm2PrivateKey(D).sign(b"message digest", k=K)
    assert signature.hex().upper() == R_S
    assert Sm2PublicKey(PUB_X, PUB_Y).verify(bytes.fromhex(R_S), b"message digest")


def test_known_answer_signature_on_the_example_curve() -> None:
    key = Sm2PrivateKey(0x128B2FA8BD433C6C068C8D803DFF79792A519A55171B1B650C23661D15897263, TEST_CURVE)
    signature = key.sign(
        b"message digest",
        b"ALICE123@YAHOO.COM",
        k=0x6CB28D99385C175C94F94E934817663FC176D925DD72B727260DBAAE1FB2F96F,
    )
    assert signature.hex().upper() == (
        "40F1EC59F793D9F49E09DCEF49130D4194F79FB1EED2CAA55BACDB49C4E755D1"
        "6FC6DAC32C5D5CF10C77DFB20F7C2EB667A457872FB09EC56327A67EC7DEEBE7"
    )
    assert key.public_key().verify(signature, b"message digest", b"ALICE123@YAHOO.COM")


def test_round_trip_and_what_breaks_a_signature() -> None:
    key = Sm2PrivateKey.generate()
    public = key.public_key()
    message = "转诊单 referral".encode()
    signature = key.sign(message)
    assert len(signature) == 64
    assert public.verify(signature, message)
    assert key.sign(message) != signature  # a fresh k every time
    assert not public.verify(signature, message + b".")
    assert not public.verify(signature, message, b"another user id")
    assert not public.verify(bytes([signature[0] ^ 1]) + signature[1:], message)
    assert not Sm2PrivateKey.generate().public_key().verify(signature, message)


def test_out_of_range_signatures_are_refused() -> None:
    public = Sm2PrivateKey(D).public_key()
    n = SM2P256V1.n.to_bytes(32, "big")
    zero = bytes(32)
    s = bytes.fromhex(R_S)[32:]
    for bad in (zero + s, n + s, bytes.fromhex(R_S)[:32] + zero, b"short"):
        assert not public.verify(bad, b"message digest")


def test_points_off_the_curve_and_bad_scalars_are_refused() -> None:
    with pytest.raises(Sm2Error):
        Sm2PublicKey(PUB_X, PUB_Y ^ 1)
    with pytest.raises(Sm2Error):
        Sm2PublicKey.from_bytes(b"\x04" + bytes(10))
    for d in (0, SM2P256V1.n - 1, SM2P256V1.n):
        with pytest.raises(Sm2Error):
            Sm2PrivateKey(d)
    assert "hidden" in repr(Sm2PrivateKey(D)) and hex(D)[2:10] not in repr(Sm2PrivateKey(D)).lower()


def test_point_bytes_and_der_signatures_round_trip() -> None:
    public = Sm2PublicKey(PUB_X, PUB_Y)
    assert Sm2PublicKey.from_bytes(public.to_bytes()) == public
    assert Sm2PublicKey.from_bytes(public.to_bytes()[1:]) == public
    raw = bytes.fromhex(R_S)
    assert raw_signature(der_signature(raw)) == raw
    with pytest.raises(Sm2Error):
        raw_signature(b"\x30\x00garbage")


@needs_openssl_sm2
def test_openssl_verifies_our_signature_and_we_verify_its(tmp_path: Path) -> None:
    key = Sm2PrivateKey.generate()
    (tmp_path / "ours.pem").write_bytes(private_key_pem(key))
    (tmp_path / "ours.pub").write_bytes(public_key_der(key.public_key()))
    message = "电子病历共享文档".encode()
    (tmp_path / "msg").write_bytes(message)
    (tmp_path / "ours.sig").write_bytes(der_signature(key.sign(message)))
    common = ["-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", "-in", str(tmp_path / "msg")]
    verify = [
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-keyform",
        "DER",
        "-inkey",
        str(tmp_path / "ours.pub"),
    ]
    done = subprocess.run(
        [*verify, *common, "-sigfile", str(tmp_path / "ours.sig")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "Verified Successfully" in done.stdout, done.stderr

    subprocess.run(
        ["openssl", "genpkey", "-algorithm", "SM2", "-out", str(tmp_path / "theirs.pem")], check=True
    )
    sign = [
        "openssl",
        "pkeyutl",
        "-sign",
        "-inkey",
        str(tmp_path / "theirs.pem"),
        "-out",
        str(tmp_path / "t.sig"),
    ]
    subprocess.run([*sign, *common], check=True, capture_output=True)
    theirs = load_private_key((tmp_path / "theirs.pem").read_bytes())
    assert isinstance(theirs, Sm2PrivateKey)
    assert theirs.public_key().verify(raw_signature((tmp_path / "t.sig").read_bytes()), message)
