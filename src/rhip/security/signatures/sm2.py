"""SM2 digital signatures (GM/T 0003.2-2012, GB/T 32918.2-2016) with SM3, in pure Python.

Written here rather than taken from the ``gmssl`` package: gmssl draws the per-signature secret k from
``random.choice`` (the Mersenne Twister: two signatures with predictable k give the private key away), strips
"04" characters off hex public keys and does not range-check r and s. Here k comes from :mod:`secrets`,
points are checked to lie on the curve, and r, s must be in [1, n-1].

Signatures are ``r || s`` (32 bytes each) as JWS and SM2-with-SM3 detached signatures use them; X.509 puts
them in a DER SEQUENCE of two INTEGERs (:func:`der_signature`, :func:`raw_signature`). The digest signed is
``e = SM3(Z || M)`` with ``Z = SM3(ENTL || ID || a || b || xG || yG || xA || yA)`` (GM/T 0003.2 §5.5), and the
default distinguishing ID ``1234567812345678`` (GM/T 0009-2012).

Python integers are not constant-time: keep SM2 signing keys on hosts where no one else measures timings,
as for any pure-Python cryptography.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from rhip.security.signatures.sm3 import sm3

DEFAULT_ID = b"1234567812345678"
CURVE_OID = "1.2.156.10197.1.301"  # sm2p256v1
SIGNATURE_OID = "1.2.156.10197.1.501"  # SM2-with-SM3

_Jacobian = tuple[int, int, int]  # (X, Y, Z), affine (X/Z², Y/Z³); Z = 0 is the point at infinity
_INFINITY: _Jacobian = (1, 1, 0)


class Sm2Error(ValueError):
    """An SM2 key or signature that is not well formed."""


@dataclass(frozen=True)
class Curve:
    """A short Weierstrass curve y² = x³ + ax + b over GF(p) with base point G of prime order n."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    size: int = field(default=32)  # bytes of a coordinate or scalar

    def contains(self, x: int, y: int) -> bool:
        """Whether (x, y) is a point of the curve (coordinates reduced)."""
        if not (0 <= x < self.p and 0 <= y < self.p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % self.p == 0


SM2P256V1 = Curve(
    "sm2p256v1",
    p=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF,
    a=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC,
    b=0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93,
    gx=0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7,
    gy=0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0,
    n=0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123,
)


# -- point arithmetic (Jacobian coordinates) -----------------------------------------------------------


def _double(c: Curve, pt: _Jacobian) -> _Jacobian:
    x, y, z = pt
    if z == 0 or y == 0:
        return _INFINITY
    p = c.p
    yy = y * y % p
    s = 4 * x * yy % p
    zz = z * z % p
    m = (3 * x * x + c.a * zz * zz) % p
    x3 = (m * m - 2 * s) % p
    y3 = (m * (s - x3) - 8 * yy * yy) % p
    return x3, y3, 2 * y * z % p


def _add(c: Curve, p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    if p1[2] == 0:
        return p2
    if p2[2] == 0:
        return p1
    p = c.p
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    z1z1, z2z2 = z1 * z1 % p, z2 * z2 % p
    u1, u2 = x1 * z2z2 % p, x2 * z1z1 % p
    s1, s2 = y1 * z2 * z2z2 % p, y2 * z1 * z1z1 % p
    if u1 == u2:
        return _double(c, p1) if s1 == s2 else _INFINITY
    h, r = (u2 - u1) % p, (s2 - s1) % p
    hh = h * h % p
    hhh = h * hh % p
    v = u1 * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    y3 = (r * (v - x3) - s1 * hhh) % p
    return x3, y3, h * z1 * z2 % p


def _multiply(c: Curve, k: int, pt: _Jacobian) -> _Jacobian:
    result = _INFINITY
    for bit in bin(k)[2:]:
        result = _double(c, result)
        if bit == "1":
            result = _add(c, result, pt)
    return result


def _affine(c: Curve, pt: _Jacobian) -> tuple[int, int] | None:
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, c.p)
    zi2 = zi * zi % c.p
    return x * zi2 % c.p, y * zi2 * zi % c.p


# -- keys ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sm2PublicKey:
    """An SM2 public key: a point of the curve other than infinity."""

    x: int
    y: int
    curve: Curve = SM2P256V1

    def __post_init__(self) -> None:
        if not self.curve.contains(self.x, self.y):
            raise Sm2Error("the SM2 public key is not a point of the curve")

    @classmethod
    def from_bytes(cls, data: bytes, curve: Curve = SM2P256V1) -> Sm2PublicKey:
        """An uncompressed point ``04 || X || Y`` (or the bare 64 bytes ``X || Y``)."""
        size = curve.size
        if len(data) == 2 * size + 1 and data[0] == 4:
            data = data[1:]
        if len(data) != 2 * size:
            raise Sm2Error("an SM2 public key is an uncompressed point of 65 bytes")
        return cls(int.from_bytes(data[:size], "big"), int.from_bytes(data[size:], "big"), curve)

    def to_bytes(self) -> bytes:
        """The uncompressed point ``04 || X || Y``."""
        size = self.curve.size
        return b"\x04" + self.x.to_bytes(size, "big") + self.y.to_bytes(size, "big")

    def z(self, uid: bytes = DEFAULT_ID) -> bytes:
        """Z_A = SM3(ENTL || ID || a || b || xG || yG || xA || yA), the signer's identity hash."""
        if len(uid) * 8 > 0xFFFF:
            raise Sm2Error("the SM2 distinguishing identifier is too long")
        c, size = self.curve, self.curve.size
        parts = [(len(uid) * 8).to_bytes(2, "big"), uid]
        parts += [v.to_bytes(size, "big") for v in (c.a, c.b, c.gx, c.gy, self.x, self.y)]
        return sm3(b"".join(parts))

    def digest(self, message: bytes, uid: bytes = DEFAULT_ID) -> int:
        """e = SM3(Z_A || M) as an integer: what an SM2 signature of ``message`` signs."""
        return int.from_bytes(sm3(self.z(uid) + message), "big")

    def verify(self, signature: bytes, message: bytes, uid: bytes = DEFAULT_ID) -> bool:
        """Whether ``signature`` (r || s) is this key's SM2 signature of ``message``."""
        c, size = self.curve, self.curve.size
        if len(signature) != 2 * size:
            return False
        r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
        if not (1 <= r < c.n and 1 <= s < c.n):
            return False
        t = (r + s) % c.n
        if t == 0:
            return False
        g = (c.gx, c.gy, 1)
        point = _add(c, _multiply(c, s, g), _multiply(c, t, (self.x, self.y, 1)))
        affine = _affine(c, point)
        if affine is None:
            return False
        return (self.digest(message, uid) + affine[0]) % c.n == r


@dataclass(frozen=True)
class Sm2PrivateKey:
    """An SM2 private key d in [1, n-2] and its public key dG."""

    d: int
    curve: Curve = SM2P256V1

    def __post_init__(self) -> None:
        if not 1 <= self.d <= self.curve.n - 2:
            raise Sm2Error("an SM2 private key is an integer in [1, n-2]")

    def __repr__(self) -> str:
        return f"Sm2PrivateKey(curve={self.curve.name}, d=<hidden>)"  # never print the secret

    @classmethod
    def generate(cls, curve: Curve = SM2P256V1) -> Sm2PrivateKey:
        """A new random key (from the operating system's CSPRNG)."""
        return cls(secrets.randbelow(curve.n - 2) + 1, curve)

    @classmethod
    def from_bytes(cls, data: bytes, curve: Curve = SM2P256V1) -> Sm2PrivateKey:
        """A key from its big-endian scalar."""
        return cls(int.from_bytes(data, "big"), curve)

    def to_bytes(self) -> bytes:
        """The big-endian scalar (``curve.size`` bytes)."""
        return self.d.to_bytes(self.curve.size, "big")

    def public_key(self) -> Sm2PublicKey:
        """The public key dG."""
        return self._public

    @cached_property
    def _public(self) -> Sm2PublicKey:
        c = self.curve
        affine = _affine(c, _multiply(c, self.d, (c.gx, c.gy, 1)))
        assert affine is not None  # d < n, so dG is never the point at infinity
        return Sm2PublicKey(affine[0], affine[1], c)

    def sign(self, message: bytes, uid: bytes = DEFAULT_ID, *, k: int | None = None) -> bytes:
        """The SM2 signature r || s of ``message``; ``k`` only for known-answer tests."""
        c = self.curve
        e = self.public_key().digest(message, uid)
        g = (c.gx, c.gy, 1)
        inverse = pow(1 + self.d, -1, c.n)
        while True:
            nonce = k if k is not None else secrets.randbelow(c.n - 1) + 1
            affine = _affine(c, _multiply(c, nonce, g))
            assert affine is not None
            r = (e + affine[0]) % c.n
            if r == 0 or r + nonce == c.n:
                if k is not None:
                    raise Sm2Error("this k gives no signature")
                continue
            s = inverse * (nonce - r * self.d) % c.n
            if s == 0:
                if k is not None:
                    raise Sm2Error("this k gives no signature")
                continue
            return r.to_bytes(c.size, "big") + s.to_bytes(c.size, "big")


def der_signature(raw: bytes) -> bytes:
    """r || s as the DER SEQUENCE { r INTEGER, s INTEGER } of X.509 (and ECDSA)."""
    half = len(raw) // 2
    if len(raw) % 2 or not raw:
        raise Sm2Error("a raw signature is r || s of equal lengths")
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


def raw_signature(der: bytes, size: int = 32) -> bytes:
    """A DER SEQUENCE { r, s } as r || s of ``size`` bytes each; Sm2Error when it is not one."""
    try:
        r, s = decode_dss_signature(der)
    except ValueError as exc:
        raise Sm2Error("the signature is not a DER SEQUENCE of two integers") from exc
    if r < 0 or s < 0 or r.bit_length() > size * 8 or s.bit_length() > size * 8:
        raise Sm2Error("the signature's integers are out of range")
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")
