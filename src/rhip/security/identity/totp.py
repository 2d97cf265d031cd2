"""Time-based one-time passwords (RFC 6238, 30 s, 6 digits): an optional second factor for portal users."""

from __future__ import annotations

import hmac

import pyotp

INTERVAL = 30
WINDOW = 1  # steps either side of now that are accepted (clock drift of a phone)


def new_secret() -> str:
    """A fresh base32 seed (160 bits)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account: str, issuer: str = "rhip") -> str:
    """The ``otpauth://`` URI an authenticator app reads (from a QR code)."""
    return pyotp.TOTP(secret, interval=INTERVAL).provisioning_uri(name=account, issuer_name=issuer)


def matching_step(secret: str, code: str, now: float) -> int | None:
    """The time step whose code ``code`` is (within the window around ``now``), or None."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret, interval=INTERVAL)
    current = int(now // INTERVAL)
    found = None
    for step in range(current - WINDOW, current + WINDOW + 1):
        # Compare every candidate: the time taken does not depend on which step matched.
        if hmac.compare_digest(totp.generate_otp(step), code):
            found = step
    return found


def code_at(secret: str, now: float) -> str:
    """The code of the step at ``now`` (tests and the demo)."""
    return pyotp.TOTP(secret, interval=INTERVAL).generate_otp(int(now // INTERVAL))
