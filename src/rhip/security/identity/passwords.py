"""Password hashing (argon2id), costing the same whether or not the account exists."""

from __future__ import annotations

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from rhip.security.identity.config import PasswordPolicy

MAX_LENGTH = 1024  # characters: longer input is refused rather than hashed (a cheap denial of service)


class Passwords:
    """Hashes and checks passwords under one argon2id cost."""

    def __init__(self, policy: PasswordPolicy) -> None:
        self.policy = policy
        self._hasher = PasswordHasher(
            time_cost=policy.time_cost,
            memory_cost=policy.memory_kib,
            parallelism=policy.parallelism,
            type=Type.ID,
        )

    def check_policy(self, password: str) -> None:
        """Raise ValueError when ``password`` is too short or too long to accept."""
        if len(password) < self.policy.min_length:
            raise ValueError(f"a password needs at least {self.policy.min_length} characters")
        if len(password) > MAX_LENGTH:
            raise ValueError(f"a password has at most {MAX_LENGTH} characters")

    def hash(self, password: str) -> str:
        """The argon2id hash of an acceptable password."""
        self.check_policy(password)
        return self._hasher.hash(password)

    def verify(self, stored: str | None, password: str) -> bool:
        """Whether ``password`` matches ``stored``; None (an unknown user) costs the same and is False."""
        if len(password) > MAX_LENGTH:
            password = password[:MAX_LENGTH]  # still spend the time: the length must not tell anything
        if stored is None:
            # Hashing costs what verifying does (one argon2id run with the same parameters).
            self._hasher.hash(password)
            return False
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        """Whether ``stored`` was made with other parameters than the current policy."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return True
