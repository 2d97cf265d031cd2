"""Password sign-in: argon2id, an optional TOTP second factor, and lock-out after repeated failures.

Every refusal says the same thing (no oracle for which usernames exist, which accounts are locked or which
have a second factor: a right password without its code is refused like a wrong one), and an unknown,
disabled or locked account costs the same argon2 work as a real one. Failures are counted for wrong
passwords and wrong or missing codes; ``lockout_attempts`` of them lock the account for ``lockout_minutes``.
The refusal carries the account and the reason for the audit trail (``OAuthError.principal``, ``.note``).
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
from rhip.security.identity.auditing import user_principal
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
        if row is None:
            self.passwords.verify(None, password)  # the same work as for a real account
            log.info("password sign-in refused: unknown account")
            raise OAuthError("invalid_grant", REFUSED, note="unknown account")
        account = user_principal(user_from_row(row._mapping), None)
        if row.disabled or (row.locked_until_us or 0) > now_us:
            self.passwords.verify(None, password)
            note = "disabled account" if row.disabled else "locked account"
            log.info("password sign-in refused: %s", note)
            raise OAuthError("invalid_grant", REFUSED, principal=account, note=note)
        ok = self.passwords.verify(row.password_hash, password)
        note = "wrong password"
        if ok and row.totp_secret is not None:
            # A missing code is refused like a wrong one (and counted): the answer must not tell a guessed
            # password from a wrong one by asking for the code.
            ok = bool(code) and self._code_ok(username, row.totp_secret, str(code), now)
            note = "wrong one-time code" if code else "no one-time code"
        if not ok:
            if self._failed(username, now_us):
                note += "; the account is locked now"
            raise OAuthError("invalid_grant", REFUSED, principal=account, note=note)
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

    def _failed(self, username: str, now_us: int) -> bool:
        """Count a failure; whether it locked the account."""
        with self.db.write() as conn:
            locked = sql.record_failure(
                conn, username, now_us=now_us, attempts=self.attempts, lock_until_us=now_us + self.lock_us
            )
        log.info(
            "password sign-in refused: wrong credentials%s", "; the account is locked now" if locked else ""
        )
        return bool(locked)
