"""Fixtures of the signature tests: CAs and signers of every key family, made once per session."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from rhip.security.signatures.certificates import Certificate
from rhip.security.signatures.issue import ca_profile, issue, self_signed, signer_profile
from rhip.security.signatures.keys import KeyKind, PrivateKey, generate_key, public_of

KINDS: tuple[KeyKind, ...] = ("ec", "rsa", "sm2")


@dataclass(frozen=True)
class Party:
    """A key and its certificate chain (the certificate first)."""

    key: PrivateKey
    chain: tuple[Certificate, ...]

    @property
    def cert(self) -> Certificate:
        """The party's own certificate."""
        return self.chain[0]


def make_ca(kind: KeyKind, name: str = "Test CA", **profile: Any) -> Party:
    """A self-signed CA of ``kind``, valid since a year ago (RSA keys of 2048 bits: fast to make)."""
    profile.setdefault("not_before", datetime.now(UTC) - timedelta(days=365))
    key = generate_key(kind, rsa_bits=2048)
    return Party(key, (self_signed(key, ca_profile(f"{name} {kind}", **profile)),))


def make_signer(ca: Party, kind: KeyKind, name: str = "第一人民医院", **profile: Any) -> Party:
    """A document signer of ``kind`` issued by ``ca``, valid since a day ago.

    A day, not the profile's five minutes: tests compare against a moment taken at collection, and a slow
    run under xdist reaches them more than five minutes later.
    """
    profile.setdefault("not_before", datetime.now(UTC) - timedelta(days=1))
    key = generate_key(kind, rsa_bits=2048)
    cert = issue(public_of(key), signer_profile(name, **profile), ca.key, ca.cert)
    return Party(key, (cert, *ca.chain[:-1]))


@pytest.fixture(scope="session")
def cas() -> dict[str, Party]:
    """One CA per key family."""
    return {kind: make_ca(kind) for kind in KINDS}


@pytest.fixture(scope="session")
def signers(cas: dict[str, Party]) -> dict[str, Party]:
    """A signer of each family, issued by the CA of the same family."""
    return {kind: make_signer(cas[kind], kind) for kind in KINDS}


@pytest.fixture(scope="session")
def expired_signer(cas: dict[str, Party]) -> Party:
    """An SM2 signer whose certificate expired ten days ago."""
    start = datetime.now(UTC) - timedelta(days=40)
    return make_signer(cas["sm2"], "sm2", "过期医院", days=30, not_before=start)


def openssl_sm2() -> bool:
    """Whether the openssl command is there and knows SM2 (for interoperability checks)."""
    if shutil.which("openssl") is None:
        return False
    found = subprocess.run(
        ["openssl", "ecparam", "-list_curves"], capture_output=True, text=True, check=False
    )
    return "SM2" in found.stdout


needs_openssl_sm2 = pytest.mark.skipif(not openssl_sm2(), reason="needs the openssl command with SM2")
