"""Password sign-in: argon2id, an optional TOTP second factor, and lock-out after repeated failures.

Every refusal says the same thing (no oracle for which usernames exist or which accounts are locked), and an
unknown, disabled or locked account costs the same argon2 work as a real one. Failures are counted for wrong
passwords and wrong or missing codes; ``lockout_attempts`` of them lock the account for ``lockout_minutes``.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from rhip.db.engine import Database
from rhip.security.identity import repository as sql
from rhip.security.identity import totp
from rhip.security.identity.accounts import USERNAME
from rhip.security.identity.errors import OAuthError
from rhip.security.identity.passwords import Passwords
from rhip.security.identity.records import User, user_from_row
from rhip.security.identity.sealing import Sealer

log = logging.getLogger("rhip.security.identity")
REFUSED = "invalid username, password or one-time code"


class SignIn:
    """Checks a username, password and (when the account has one) a TOTP code."""

    def __init__(
        self,
        db: Database,
        passwords: Passwords,
        sealer: Sealer,
        *,
        attempts: int,
        lock_minutes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.passwords = passwords
        self.sealer = sealer
        self.attempts = attempts
        self.lock_us = lock_minutes * 60_000_000
        self.clock = clock

    def check(self, username: str, password: str, code: str | None) -> User:
        """The user whose credentials these are; raises OAuthError(invalid_grant) otherwise."""
        now = self.clock()
        now_us = int(now * 1_000_000)
        row = None
        if USERNAME.match(username):
            with self.db.read() as conn:
                row = sql.select_user(conn, username)
        usable = row is not None and not row.disabled and (row.locked_until_us or 0) <= now_us
        if row is None or not usable:
            self.passwords.verify(None, password)  # the same work as for a real account
            log.info(
                "password sign-in refused: %s", "unknown account" if row is None else "disabled or locked"
            )
            raise OAuthError("invalid_grant", REFUSED)
        ok = self.passwords.verify(row.password_hash, password)
        missing_code = False
        if ok and row.totp_secret is not None:
            if not code:
                ok, missing_code = False, True
            else:
                ok = self._code_ok(username, row.totp_secret, code, now)
        if not ok:
            self._failed(username, now_us)
            raise OAuthError(
                "invalid_grant", "a one-time code (totp) is required" if missing_code else REFUSED
            )
        with self.db.write() as conn:
            values: dict[str, object] = {"failed_count": 0, "locked_until_us": None}
            if self.passwords.needs_rehash(row.password_hash):
                # The policy's cost went up; a password shorter than it asks now is kept until changed.
                with contextlib.suppress(ValueError):
                    values["password_hash"] = self.passwords.hash(password)
            if row.failed_count or row.locked_until_us or "password_hash" in values:
                sql.update_user(conn, username, {**values, "updated_us": now_us})
        return user_from_row(row._mapping)

    def _code_ok(self, username: str, sealed: str, code: str, now: float) -> bool:
        try:
            secret = self.sealer.unseal(sealed)
        except ValueError:
            log.error(
                "a TOTP secret cannot be unsealed: was keys_dir replaced? reset the user's second factor"
            )
            return False
        step = totp.matching_step(secret, code, now)
        if step is None:
            return False
        with self.db.write() as conn:
            return sql.claim_totp_step(conn, username, step)  # a code works once (RFC 6238 §5.2)

    def _failed(self, username: str, now_us: int) -> None:
        with self.db.write() as conn:
            locked = sql.record_failure(
                conn, username, now_us=now_us, attempts=self.attempts, lock_until_us=now_us + self.lock_us
            )
        log.info(
            "password sign-in refused: wrong credentials%s", "; the account is locked now" if locked else ""
        )
