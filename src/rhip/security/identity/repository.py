"""SQL access to the identity tables (SQLite and PostgreSQL). Every function runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, Table, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from rhip.security.identity.tables import security_client as clients
from rhip.security.identity.tables import security_refresh_token as refresh
from rhip.security.identity.tables import security_revoked_token as revoked
from rhip.security.identity.tables import security_signing_key as keys
from rhip.security.identity.tables import security_used_assertion as assertions
from rhip.security.identity.tables import security_user as users

# Columns a listing shows: never the password hash or the TOTP secret.
_USER_PUBLIC = [c for c in users.c if c.name not in ("password_hash", "totp_secret")]


def _insert_new(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """Insert unless a unique key exists; whether it was inserted (atomic on both backends)."""
    if conn.dialect.name == "postgresql":
        stmt: Any = postgresql.insert(table).values(**values).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
    # RETURNING, not rowcount: psycopg reports -1 for an INSERT … ON CONFLICT through SQLAlchemy.
    first_key = next(iter(table.primary_key.columns))
    return conn.execute(stmt.returning(first_key)).first() is not None


# --- users ---------------------------------------------------------------------------------------------


def insert_user(conn: Connection, values: dict[str, Any]) -> bool:
    """Add a user; False when the username is taken."""
    return _insert_new(conn, users, values)


def select_user(conn: Connection, username: str) -> Row[Any] | None:
    """One user with its secrets (for sign-in)."""
    return conn.execute(select(users).where(users.c.username == username)).first()


def select_users(conn: Connection) -> Sequence[Any]:
    """Every user without secrets, by username; ``has_totp`` says whether a second factor is set."""
    return conn.execute(
        select(*_USER_PUBLIC, users.c.totp_secret.is_not(None).label("has_totp")).order_by(users.c.username)
    ).all()


def update_user(conn: Connection, username: str, values: dict[str, Any]) -> bool:
    """Change columns of a user; False when there is no such user."""
    return bool(conn.execute(update(users).where(users.c.username == username).values(**values)).rowcount)


def record_failure(
    conn: Connection, username: str, *, now_us: int, attempts: int, lock_until_us: int
) -> bool:
    """Count a failed sign-in; lock the account at ``attempts`` failures. Whether it locked now."""
    conn.execute(
        update(users)
        .where(users.c.username == username)
        .values(failed_count=users.c.failed_count + 1, updated_us=now_us)
    )
    locked = conn.execute(
        update(users)
        .where(users.c.username == username, users.c.failed_count >= attempts)
        .values(failed_count=0, locked_until_us=lock_until_us)
    ).rowcount
    return bool(locked)


def claim_totp_step(conn: Connection, username: str, step: int) -> bool:
    """Accept a TOTP time step once: False when it (or a later one) was used already."""
    result = conn.execute(
        update(users)
        .where(
            users.c.username == username,
            or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return bool(result.rowcount)


def disabled_subjects(conn: Connection) -> set[str]:
    """The subjects (``user:…``, ``client:…``) of disabled accounts."""
    out = {f"user:{r[0]}" for r in conn.execute(select(users.c.username).where(users.c.disabled.is_(True)))}
    out.update(
        f"client:{r[0]}"
        for r in conn.execute(select(clients.c.client_id).where(clients.c.disabled.is_(True)))
    )
    return out


# --- clients -------------------------------------------------------------------------------------------


def insert_client(conn: Connection, values: dict[str, Any]) -> bool:
    """Register a client; False when the client id (or its certificate) is taken."""
    return _insert_new(conn, clients, values)


def select_client(conn: Connection, client_id: str) -> Row[Any] | None:
    """One registered client."""
    return conn.execute(select(clients).where(clients.c.client_id == client_id)).first()


def select_client_by_cert(conn: Connection, sha256_hex: str) -> Row[Any] | None:
    """The client registered with this TLS certificate fingerprint."""
    return conn.execute(select(clients).where(clients.c.cert_sha256 == sha256_hex)).first()


def select_clients(conn: Connection) -> Sequence[Row[Any]]:
    """Every registered client, by id."""
    return conn.execute(select(clients).order_by(clients.c.client_id)).all()


def update_client(conn: Connection, client_id: str, values: dict[str, Any]) -> bool:
    """Change columns of a client; False when there is no such client."""
    result = conn.execute(update(clients).where(clients.c.client_id == client_id).values(**values))
    return bool(result.rowcount)


# --- signing keys --------------------------------------------------------------------------------------


def insert_key(conn: Connection, values: dict[str, Any]) -> None:
    """Add a signing key (it signs from now: the newest unretired key signs)."""
    conn.execute(insert(keys).values(**values))


def select_published_keys(conn: Connection, now_us: int) -> Sequence[Row[Any]]:
    """Keys in the JWKS (not yet expired), newest first."""
    query = select(keys).where(or_(keys.c.expires_us.is_(None), keys.c.expires_us > now_us))
    return conn.execute(query.order_by(keys.c.created_us.desc(), keys.c.kid.desc())).all()


def retire_keys(conn: Connection, *, now_us: int, expires_us: int) -> list[str]:
    """Stop every signing key signing; they stay published until ``expires_us``. The kids retired."""
    kids = [str(r[0]) for r in conn.execute(select(keys.c.kid).where(keys.c.retired_us.is_(None)))]
    if kids:
        conn.execute(
            update(keys).where(keys.c.kid.in_(kids)).values(retired_us=now_us, expires_us=expires_us)
        )
    return kids


def withdraw_keys(conn: Connection, *, now_us: int, keep: str) -> list[str]:
    """Unpublish every key but ``keep`` now (a compromised key: its tokens stop working). The kids."""
    kids = [
        str(r[0])
        for r in conn.execute(
            select(keys.c.kid).where(
                keys.c.kid != keep, or_(keys.c.expires_us.is_(None), keys.c.expires_us > now_us)
            )
        )
    ]
    if kids:
        conn.execute(
            update(keys)
            .where(keys.c.kid.in_(kids))
            .values(retired_us=func.coalesce(keys.c.retired_us, now_us), expires_us=now_us)
        )
    return kids


# --- refresh tokens ------------------------------------------------------------------------------------


def insert_refresh(conn: Connection, values: dict[str, Any]) -> None:
    """Store a refresh token's digest."""
    conn.execute(insert(refresh).values(**values))


def select_refresh(conn: Connection, token_hash: str) -> Row[Any] | None:
    """A refresh token by its digest."""
    return conn.execute(select(refresh).where(refresh.c.token_hash == token_hash)).first()


def mark_refresh_used(conn: Connection, token_hash: str, now_us: int) -> bool:
    """Rotate a refresh token out; False when it was used or revoked already (atomic)."""
    result = conn.execute(
        update(refresh)
        .where(
            refresh.c.token_hash == token_hash, refresh.c.used_us.is_(None), refresh.c.revoked_us.is_(None)
        )
        .values(used_us=now_us)
    )
    return bool(result.rowcount)


def revoke_family(conn: Connection, family: str, now_us: int) -> int:
    """Revoke every refresh token of a session; how many were still live."""
    result = conn.execute(
        update(refresh)
        .where(refresh.c.family == family, refresh.c.revoked_us.is_(None))
        .values(revoked_us=now_us)
    )
    return int(result.rowcount)


def revoke_user_sessions(conn: Connection, username: str, now_us: int) -> list[str]:
    """Revoke every live refresh token of a user; the session families concerned."""
    live = (refresh.c.username == username, refresh.c.revoked_us.is_(None), refresh.c.expires_us > now_us)
    families = sorted({str(r[0]) for r in conn.execute(select(refresh.c.family).where(*live))})
    conn.execute(update(refresh).where(*live).values(revoked_us=now_us))
    return families


# --- revocations and used assertions -------------------------------------------------------------------


def insert_revoked(conn: Connection, jti: str, *, now_us: int, expires_us: int) -> None:
    """Revoke an access token (by jti) or a session (``sid:<family>``) until ``expires_us``."""
    _insert_new(conn, revoked, {"jti": jti, "revoked_us": now_us, "expires_us": expires_us})


def select_revoked(conn: Connection, now_us: int) -> set[str]:
    """Every revocation still in force."""
    return {str(r[0]) for r in conn.execute(select(revoked.c.jti).where(revoked.c.expires_us > now_us))}


def claim_assertion(conn: Connection, client_id: str, jti: str, expires_us: int) -> bool:
    """Record a client assertion's jti; False when that client used it before (a replay)."""
    return _insert_new(conn, assertions, {"client_id": client_id, "jti": jti, "expires_us": expires_us})


def prune(conn: Connection, now_us: int) -> None:
    """Forget what has expired: revocations, used assertions, refresh tokens and unpublished keys."""
    conn.execute(delete(revoked).where(revoked.c.expires_us <= now_us))
    conn.execute(delete(assertions).where(assertions.c.expires_us <= now_us))
    conn.execute(delete(refresh).where(refresh.c.expires_us <= now_us))
    conn.execute(delete(keys).where(keys.c.expires_us.is_not(None), keys.c.expires_us <= now_us))
