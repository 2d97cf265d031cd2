"""argon2id hashing (an unknown user costs the same), TOTP codes, sealed secrets, secret files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from rhip.security.identity import totp
from rhip.security.identity.passwords import MAX_LENGTH, Passwords
from rhip.security.identity.sealing import KEY_FILE, Sealer
from rhip.security.identity.secretfiles import write_secret

from .support import FAST, PASSWORD, START


def test_hash_and_verify() -> None:
    passwords = Passwords(FAST)
    stored = passwords.hash(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert passwords.verify(stored, PASSWORD)
    assert not passwords.verify(stored, PASSWORD + "x")
    assert not passwords.verify("not a hash", PASSWORD)


def test_unknown_user_costs_a_hash_and_fails() -> None:
    passwords = Passwords(FAST)
    assert not passwords.verify(None, PASSWORD)
    assert not passwords.verify(None, "")


def test_policy_refuses_short_and_huge_passwords() -> None:
    passwords = Passwords(FAST)
    with pytest.raises(ValueError, match="at least"):
        passwords.hash("short")
    with pytest.raises(ValueError, match="at most"):
        passwords.hash("x" * (MAX_LENGTH + 1))
    assert not passwords.verify(passwords.hash(PASSWORD), "x" * (MAX_LENGTH + 10))


def test_needs_rehash_when_the_cost_changes() -> None:
    cheap = Passwords(FAST).hash(PASSWORD)
    dearer = Passwords(type(FAST)(time_cost=2, memory_kib=16, parallelism=1, min_length=8))
    assert dearer.needs_rehash(cheap)
    assert not Passwords(FAST).needs_rehash(cheap)


def test_totp_matches_current_and_adjacent_steps_only() -> None:
    secret = totp.new_secret()
    code = totp.code_at(secret, START)
    step = int(START // totp.INTERVAL)
    assert totp.matching_step(secret, code, START) == step
    assert totp.matching_step(secret, code, START + totp.INTERVAL) == step  # a phone a little behind
    assert totp.matching_step(secret, code, START + 3 * totp.INTERVAL) is None
    assert totp.matching_step(secret, "12345", START) is None
    assert totp.matching_step(secret, "abcdef", START) is None
    assert totp.provisioning_uri(secret, "alice").startswith("otpauth://totp/rhip:alice?secret=")


def test_sealer_round_trip_and_tamper(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "keys")
    sealed = sealer.seal("JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert sealer.unseal(sealed) == "JBSWY3DPEHPK3PXP"
    assert Sealer(tmp_path / "keys").unseal(sealed) == "JBSWY3DPEHPK3PXP"  # the key file persists
    mode = (tmp_path / "keys" / KEY_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(ValueError):
        sealer.unseal(tampered)
    with pytest.raises(ValueError):
        Sealer(tmp_path / "other").unseal(sealed)


def test_secret_files_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "k" / "secret"
    assert write_secret(path, b"first")
    assert not write_secret(path, b"second")
    assert path.read_bytes() == b"first"
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret"]  # no temporary files left
