"""The identity SQL on SQLite and PostgreSQL: atomic claims, lock-out counting, pruning, and the service end
to end on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.db.engine import Database
from rhip.db.migrate import upgrade
from rhip.security.identity import repository as sql
from rhip.security.identity.service import IdentityService

from .conftest import open_database
from .support import PASSWORD, Clock, identity_config


@pytest.fixture
def any_db(database_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    db = open_database(database_url)
    upgrade(db.engine)
    try:
        yield db
    finally:
        db.dispose()


def _user(name: str) -> dict[str, object]:
    return {
        "username": name,
        "password_hash": "$argon2id$x",
        "role": "clinician",
        "institution": None,
        "organization": None,
        "department": None,
        "district": None,
        "patients": "",
        "totp_secret": None,
        "totp_last_step": None,
        "disabled": False,
        "failed_count": 0,
        "locked_until_us": None,
        "created_us": 1,
        "updated_us": 1,
    }


def test_inserts_do_not_overwrite(any_db: Database) -> None:
    with any_db.write() as conn:
        assert sql.insert_user(conn, _user("a"))
        assert not sql.insert_user(conn, {**_user("a"), "role": "admin"})
    with any_db.read() as conn:
        row = sql.select_user(conn, "a")
    assert row is not None and row.role == "clinician"


def test_certificate_fingerprints_are_unique(any_db: Database) -> None:
    client = {
        "client_id": "c1",
        "name": "c1",
        "role": "system",
        "institution": None,
        "organization": None,
        "scopes": "system/*.rs",
        "jwks": None,
        "jwks_url": None,
        "cert_sha256": "ab" * 32,
        "disabled": False,
        "created_us": 1,
        "updated_us": 1,
    }
    with any_db.write() as conn:
        assert sql.insert_client(conn, client)
        assert not sql.insert_client(conn, {**client, "client_id": "c2"})
        assert sql.insert_client(conn, {**client, "client_id": "c3", "cert_sha256": None})
        assert sql.insert_client(conn, {**client, "client_id": "c4", "cert_sha256": None})


def test_assertion_jti_is_claimed_once(any_db: Database) -> None:
    with any_db.write() as conn:
        assert sql.claim_assertion(conn, "c1", "j1", 100)
    with any_db.write() as conn:
        assert not sql.claim_assertion(conn, "c1", "j1", 100)
        assert sql.claim_assertion(conn, "c2", "j1", 100)


def test_refresh_token_is_used_once(any_db: Database) -> None:
    row = {
        "token_hash": "h" * 64,
        "family": "f1",
        "username": "a",
        "client_id": None,
        "scope": "user/*.rs",
        "issued_us": 1,
        "expires_us": 1000,
        "used_us": None,
        "revoked_us": None,
    }
    with any_db.write() as conn:
        sql.insert_refresh(conn, row)
        sql.insert_refresh(conn, {**row, "token_hash": "g" * 64})
    with any_db.write() as conn:
        assert sql.mark_refresh_used(conn, "h" * 64, 5)
        assert not sql.mark_refresh_used(conn, "h" * 64, 6)
        assert sql.revoke_family(conn, "f1", 7) == 2
        assert not sql.mark_refresh_used(conn, "g" * 64, 8)


def test_failures_lock_at_the_limit(any_db: Database) -> None:
    with any_db.write() as conn:
        sql.insert_user(conn, _user("b"))
        results = [sql.record_failure(conn, "b", now_us=10, attempts=3, lock_until_us=99) for _ in range(3)]
    assert results == [False, False, True]
    with any_db.read() as conn:
        row = sql.select_user(conn, "b")
    assert row is not None and row.locked_until_us == 99 and row.failed_count == 0


def test_totp_steps_only_move_forward(any_db: Database) -> None:
    with any_db.write() as conn:
        sql.insert_user(conn, _user("c"))
        assert sql.claim_totp_step(conn, "c", 100)
        assert not sql.claim_totp_step(conn, "c", 100)
        assert not sql.claim_totp_step(conn, "c", 99)
        assert sql.claim_totp_step(conn, "c", 101)


def test_prune_forgets_what_expired(any_db: Database) -> None:
    with any_db.write() as conn:
        sql.insert_revoked(conn, "old", now_us=1, expires_us=10)
        sql.insert_revoked(conn, "new", now_us=1, expires_us=1000)
        sql.insert_revoked(conn, "new", now_us=2, expires_us=1000)  # twice: no error
        sql.claim_assertion(conn, "c", "old", 10)
        sql.prune(conn, 100)
    with any_db.read() as conn:
        assert sql.select_revoked(conn, 0) == {"new"}
    with any_db.write() as conn:
        assert sql.claim_assertion(conn, "c", "old", 10)  # forgotten once expired


def test_the_service_on_each_backend(any_db: Database, tmp_path: Path) -> None:
    clock = Clock()
    identity = IdentityService(any_db, identity_config(tmp_path / "keys"), clock=clock)
    identity.accounts.add_user("u", PASSWORD, "resident", patients=["p1", "p2"])
    answer = identity.token({"grant_type": "password", "username": "u", "password": PASSWORD})
    assert identity.authenticate(answer["access_token"]).patients == ("p1", "p2")
    second = identity.token({"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]})
    identity.rotate_key()
    assert identity.authenticate(second["access_token"]).subject == "user:u"
    assert len(identity.jwks()["keys"]) == 2
    assert [u.username for u in identity.accounts.list_users()] == ["u"]
    identity._pruned_at = float("-inf")
    clock.advance(2 * 86400)
    identity._maybe_prune()
