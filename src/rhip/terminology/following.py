"""Keeping what the terminology reads from the FHIR store (concept maps, registered dictionaries) current.

Each process holds its own copy, read again when this process stored a change (the store's events say so)
and at least every ``ttl_s`` seconds, so that a change stored through another worker process takes effect
here within that time. The read happens on the next use, by one thread; the others go on with the old copy.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol


class ResourceSource(Protocol):
    """Resources of one kind as the store holds them now (read as the platform)."""

    def __call__(self) -> Iterable[Mapping[str, Any]]:
        """Every current resource of the kind."""


class StoreFollower:
    """Runs a load when told of a change, or when the last load is older than ``ttl_s``."""

    def __init__(self, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._loaded_at: float | None = None
        self._changes = 0  # changes told so far
        self._seen = 0  # ... and as of the last load
        self._lock = threading.Lock()

    def changed(self) -> None:
        """Something was stored or deleted: load again before the next use."""
        self._changes += 1

    def _must_wait(self) -> bool:
        return self._loaded_at is None or self._seen != self._changes

    def _due(self) -> bool:
        return self._must_wait() or self.clock() - (self._loaded_at or 0.0) >= self.ttl_s

    def fresh(self, load: Callable[[], None]) -> None:
        """Run ``load`` if due: the first time and after a change every user waits for it; when merely
        stale, one thread loads and the others go on with the current copy."""
        if not self._due():
            return
        if not self._lock.acquire(blocking=self._must_wait()):
            return
        try:
            if not self._due():
                return  # another thread loaded while this one waited
            changes, started = self._changes, self.clock()
            load()
            self._seen, self._loaded_at = changes, started
        finally:
            self._lock.release()
