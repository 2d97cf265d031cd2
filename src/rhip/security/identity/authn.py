"""Bearer-token authentication on the hot path: verified tokens are cached until they expire.

A token's signature and claims are checked once; later requests with it cost a hash, a dictionary lookup and
set lookups in the revocation list (reloaded every ``revocation_ttl`` seconds) and the disabled accounts
(every ``account_ttl`` seconds), plus a check that the signing key is still published. The cache is keyed by
the token's SHA-256, so it holds no bearer tokens. ``peek`` only looks into that cache (no I/O, no signature
check): the event loop may call it (the rate limiter keys requests by it).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from rhip.core.errors import Unauthenticated
from rhip.security.principal import Principal

T = TypeVar("T")


class Refreshing(Generic[T]):
    """A value reloaded when older than ``ttl`` seconds (or when invalidated)."""

    def __init__(self, load: Callable[[], T], ttl: float) -> None:
        self._load = load
        self.ttl = ttl
        self._value: T | None = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    def get(self) -> T:
        """The value, reloaded first when stale."""
        value = self._value
        if value is None or time.monotonic() - self._at > self.ttl:
            with self._lock:
                if self._value is None or time.monotonic() - self._at > self.ttl:
                    self._value = self._load()
                    self._at = time.monotonic()
                value = self._value
        return value

    def invalidate(self) -> None:
        """Reload at the next ``get`` (this process changed what it holds)."""
        self._at = float("-inf")

    def current(self) -> T | None:
        """The value as last loaded, without reloading (None before the first load)."""
        return self._value


class TokenRefused(Unauthenticated):
    """A refused bearer token; ``principal`` is who it was issued to when its signature had verified
    (an expired, revoked or withdrawn token, or one of a disabled account), for the audit trail."""

    def __init__(self, message: str, principal: Principal | None = None) -> None:
        super().__init__(message)
        self.principal = principal


@dataclass(frozen=True)
class Verified:
    """What checking a token's signature and claims established."""

    principal: Principal
    expires: float
    kid: str | None  # our signing key, re-checked on every use (a withdrawn key ends its tokens)
    revocation_keys: tuple[str, ...]  # the jti, and ``sid:<session>``
    subjects: tuple[str, ...]  # the user or client, and the client it came through


class _Entry:
    """A cached verification, with the principal last handed out (one caller keeps one address)."""

    __slots__ = ("last", "verified")

    def __init__(self, verified: Verified) -> None:
        self.verified = verified
        self.last: tuple[str | None, Principal] = (verified.principal.address, verified.principal)

    def principal(self, address: str | None) -> Principal:
        """The principal with the caller's address (built once per address change, not per request)."""
        last = self.last
        if last[0] == address:
            return last[1]
        principal = replace(self.verified.principal, address=address)
        self.last = (address, principal)
        return principal


def token_key(token: str) -> bytes:
    """The cache key of a bearer token."""
    return hashlib.sha256(token.encode()).digest()


class Authenticator:
    """Turns bearer tokens into principals, fast."""

    def __init__(
        self,
        verify: Callable[[str], Verified],
        *,
        revoked: Refreshing[set[str]],
        disabled: Refreshing[set[str]],
        is_published: Callable[[str], bool],
        leeway: float,
        size: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._verify = verify
        self.revoked = revoked
        self.disabled = disabled
        self._is_published = is_published
        self.leeway = leeway
        self.size = size
        self.clock = clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def authenticate(self, token: str, *, address: str | None = None) -> Principal:
        """The principal of a valid, unrevoked bearer token of an enabled account; raises Unauthenticated
        (TokenRefused with the token's principal when its signature verified)."""
        key = token_key(token)
        with self._lock:
            entry = self._cache.get(key)
            if entry is not None:
                self._cache.move_to_end(key)
        if entry is None:
            entry = _Entry(self._verify(token))
            with self._lock:
                self._cache[key] = entry
                if len(self._cache) > self.size:
                    self._cache.popitem(last=False)
        verified = entry.verified
        if self.clock() > verified.expires + self.leeway:
            with self._lock:
                self._cache.pop(key, None)
            raise TokenRefused("the access token has expired", verified.principal)
        if verified.kid is not None and not self._is_published(verified.kid):
            raise TokenRefused("the access token is not valid", verified.principal)
        revoked = self.revoked.get()
        if revoked and any(k in revoked for k in verified.revocation_keys):
            raise TokenRefused("the access token has been revoked", verified.principal)
        disabled = self.disabled.get()
        if disabled and any(s in disabled for s in verified.subjects):
            raise TokenRefused("the account or client of this token is disabled", verified.principal)
        return entry.principal(address)

    def peek(self, token: str) -> Principal | None:
        """The principal of a token verified before and still good by what is cached, else None.

        No I/O and no signature check (fit for the event loop): an unknown token is None, so a forged one
        never names a subject; revocations and disabled accounts as last loaded.
        """
        key = token_key(token)
        with self._lock:
            entry = self._cache.get(key)
        if entry is None:
            return None
        verified = entry.verified
        if self.clock() > verified.expires + self.leeway:
            return None
        revoked = self.revoked.current()
        if revoked and any(k in revoked for k in verified.revocation_keys):
            return None
        disabled = self.disabled.current()
        if disabled and any(s in disabled for s in verified.subjects):
            return None
        return verified.principal

    def forget(self) -> None:
        """Drop every cached token (tests; a key withdrawn in this process)."""
        with self._lock:
            self._cache.clear()
