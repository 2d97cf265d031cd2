"""Signing keys: private halves only in 0600 files, rotation keeps old keys published until their tokens
expire, withdrawal ends them at once."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from rhip.core.errors import Unauthenticated
from rhip.db.engine import Database
from rhip.security.identity.service import IdentityService

from .support import PASSWORD, Clock


def _sign_in(identity: IdentityService) -> str:
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    return str(identity.token(form)["access_token"])


@pytest.fixture
def alice(identity: IdentityService) -> IdentityService:
    identity.accounts.add_user("alice", PASSWORD, "clinician", institution="H001")
    return identity


def test_first_key_is_created_on_demand_with_its_private_half_in_a_file(
    identity: IdentityService, db: Database, tmp_path: Path
) -> None:
    jwks = identity.jwks()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256" and key["use"] == "sig"
    assert "d" not in key
    pem = tmp_path / "keys" / f"{key['kid']}.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in pem.read_bytes()
    with db.read() as conn:
        stored = conn.execute(text("SELECT public_jwk FROM security_signing_key")).scalar_one()
    assert '"d"' not in stored and "PRIVATE" not in stored


def test_rotation_keeps_old_tokens_valid_and_publishes_both(alice: IdentityService, tmp_path: Path) -> None:
    old_token = _sign_in(alice)
    old_kid = alice.jwks()["keys"][0]["kid"]
    new_kid = alice.rotate_key()
    assert new_kid != old_kid
    assert {k["kid"] for k in alice.jwks()["keys"]} == {old_kid, new_kid}
    assert alice.authenticate(old_token).subject == "user:alice"
    new_token = _sign_in(alice)
    assert alice.authenticate(new_token).subject == "user:alice"
    # The retired key never signs again: its private half is gone.
    assert not (tmp_path / "keys" / f"{old_kid}.pem").exists()
    assert (tmp_path / "keys" / f"{new_kid}.pem").exists()


def test_retired_keys_leave_the_jwks_after_their_tokens_expire(alice: IdentityService, clock: Clock) -> None:
    old_kid = alice.jwks()["keys"][0]["kid"]
    new_kid = alice.rotate_key()
    clock.advance(alice.config.max_issue_minutes * 60 + alice.config.leeway_seconds + 1)
    assert [k["kid"] for k in alice.jwks()["keys"]] == [new_kid]
    assert alice.keys.public_key(old_kid) is None


def test_withdrawing_a_compromised_key_ends_its_tokens_at_once(alice: IdentityService) -> None:
    token = _sign_in(alice)
    alice.authenticate(token)  # cached
    new_kid = alice.rotate_key(withdraw_old=True)
    assert [k["kid"] for k in alice.jwks()["keys"]] == [new_kid]
    with pytest.raises(Unauthenticated):
        alice.authenticate(token)


def test_another_process_sees_the_rotation(
    alice: IdentityService, db: Database, clock: Clock, tmp_path: Path
) -> None:
    from .support import identity_config

    other = IdentityService(db, identity_config(tmp_path / "keys"), clock=clock)
    token = _sign_in(alice)
    assert other.authenticate(token).subject == "user:alice"
    other.rotate_key()
    fresh = _sign_in(alice)  # alice's process signs with the new key once it reloads
    assert alice.jwks()["keys"][0]["kid"] == other.jwks()["keys"][0]["kid"]
    assert other.authenticate(fresh).subject == "user:alice"
    assert alice.authenticate(token).subject == "user:alice"


def test_a_missing_private_key_file_is_a_clear_error(alice: IdentityService, tmp_path: Path) -> None:
    kid = alice.jwks()["keys"][0]["kid"]
    (tmp_path / "keys" / f"{kid}.pem").unlink()
    fresh = IdentityService(alice.db, alice.config, clock=alice.clock)
    with pytest.raises(RuntimeError, match="share keys_dir"):
        _sign_in(fresh)


def test_a_process_that_never_signed_follows_a_fresh_rotation(
    alice: IdentityService, db: Database, clock: Clock, tmp_path: Path
) -> None:
    from .support import identity_config

    old_kid = alice.jwks()["keys"][0]["kid"]
    slow = IdentityService(db, identity_config(tmp_path / "keys", account_ttl_seconds=3600.0), clock=clock)
    assert slow.keys.jwks()["keys"][0]["kid"] == old_kid  # its cache says the old key signs, for an hour
    new_kid = alice.rotate_key()  # and the old key's file is deleted
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    token = slow.token(form)["access_token"]
    import jwt

    assert jwt.get_unverified_header(token)["kid"] == new_kid != old_kid
