"""Portal sessions: opaque refresh tokens, rotated on every use; a rotated token used again ends the session.

A refresh token is ``rt.`` and 256 random bits; only its SHA-256 is stored. Each use returns a new token of
the same family (the session, the ``sid`` of its access tokens) and marks the old one used. Presenting a used
token means it was copied: the whole family is revoked, and so are the access tokens of the session. A
session ends ``refresh_token_hours`` after sign-in, however often it is refreshed.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rhip.db.engine import Database
from rhip.security.identity import repository as sql
from rhip.security.identity.errors import OAuthError

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("rhip.security.identity")
PREFIX = "rt."


@dataclass(frozen=True)
class Session:
    """A refresh token's session: whose, through which client, with which scopes, until when."""

    family: str
    username: str
    client_id: str | None
    scope: str
    expires_us: int


def digest(token: str) -> str:
    """The stored form of a refresh token."""
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    """Refresh tokens: issue, rotate (with reuse detection), revoke."""

    def __init__(
        self, db: Database, *, hours: int, revoke_for_us: int, clock: Callable[[], float] = time.time
    ) -> None:
        self.db = db
        self.length_us = hours * 3_600_000_000
        self.revoke_for_us = revoke_for_us  # how long a session's access tokens may still live
        self.clock = clock

    def _now_us(self) -> int:
        return int(self.clock() * 1_000_000)

    def _insert(self, conn: Connection, session: Session, now_us: int) -> str:
        token = PREFIX + secrets.token_urlsafe(32)
        values = {
            "token_hash": digest(token),
            "family": session.family,
            "username": session.username,
            "client_id": session.client_id,
            "scope": session.scope,
            "issued_us": now_us,
            "expires_us": session.expires_us,
            "used_us": None,
            "revoked_us": None,
        }
        sql.insert_refresh(conn, values)
        return token

    def start(self, username: str, client_id: str | None, scope: str) -> tuple[str, Session]:
        """Begin a session after a sign-in: its first refresh token."""
        now_us = self._now_us()
        session = Session(secrets.token_urlsafe(16), username, client_id, scope, now_us + self.length_us)
        with self.db.write() as conn:
            token = self._insert(conn, session, now_us)
        return token, session

    def rotate(self, token: str, client_id: str | None) -> tuple[str, Session]:
        """Trade a refresh token for the next one of its session; raises OAuthError(invalid_grant)."""
        now_us = self._now_us()
        refused: str | None = None
        with self.db.write() as conn:
            row = sql.select_refresh(conn, digest(token)) if token.startswith(PREFIX) else None
            if row is None:
                refused = "unknown refresh token"
            elif row.revoked_us is not None:
                refused = "the session has ended"
            elif row.expires_us <= now_us:
                refused = "the session has expired"
            elif row.client_id is not None and client_id != row.client_id:
                refused = "the refresh token was issued to another client"
            elif not sql.mark_refresh_used(conn, row.token_hash, now_us):
                # Used before: a copy is in someone else's hands. End the session for both.
                self._end(conn, row.family, now_us)
                log.warning("a rotated refresh token was used again: its session is revoked")
                refused = "the refresh token was used before; the session is revoked"
            else:
                session = Session(row.family, row.username, row.client_id, row.scope, row.expires_us)
                new_token = self._insert(conn, session, now_us)
        if refused is not None:
            raise OAuthError("invalid_grant", refused)
        return new_token, session

    def _end(self, conn: Connection, family: str, now_us: int) -> None:
        sql.revoke_family(conn, family, now_us)
        sql.insert_revoked(conn, f"sid:{family}", now_us=now_us, expires_us=now_us + self.revoke_for_us)

    def end(self, family: str) -> None:
        """End a session: its refresh tokens and its access tokens stop working."""
        with self.db.write() as conn:
            self._end(conn, family, self._now_us())

    def revoke(self, token: str) -> Session | None:
        """End the session of a refresh token (RFC 7009); the session, when it was one of ours."""
        if not token.startswith(PREFIX):
            return None
        with self.db.write() as conn:
            row = sql.select_refresh(conn, digest(token))
            if row is None:
                return None
            self._end(conn, row.family, self._now_us())
        return Session(row.family, row.username, row.client_id, row.scope, row.expires_us)

    def peek(self, token: str) -> Session | None:
        """The session of a refresh token without using it (to check a refresh request before rotating)."""
        if not token.startswith(PREFIX):
            return None
        with self.db.read() as conn:
            row = sql.select_refresh(conn, digest(token))
        if row is None:
            return None
        return Session(row.family, row.username, row.client_id, row.scope, row.expires_us)
