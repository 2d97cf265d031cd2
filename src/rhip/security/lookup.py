"""Small cached look-ups the policy makes in the store (as the platform, never as the caller)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from rhip.fhir.repository import FhirRepository, StoredResource
from rhip.fhir.search.parse import SearchParser

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A bounded least-recently-used cache whose entries expire after ``ttl_s`` (thread-safe)."""

    def __init__(self, ttl_s: float, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.clock = clock
        self._items: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, compute: Callable[[], V]) -> V:
        """The cached value of ``key``, computing (outside the lock) and keeping it when absent or stale."""
        now = self.clock()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None and hit[0] > now:
                self._items.move_to_end(key)
                return hit[1]
        value = compute()
        with self._lock:
            self._items[key] = (now + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return value

    def peek(self, key: K) -> V | None:
        """The cached, fresh value of ``key``, or None."""
        with self._lock:
            hit = self._items.get(key)
            return hit[1] if hit is not None and hit[0] > self.clock() else None

    def put(self, key: K, value: V) -> None:
        """Keep ``value`` for ``key``."""
        with self._lock:
            self._items[key] = (self.clock() + self.ttl_s, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def clear(self) -> None:
        """Forget everything (after a change the cached answers depend on)."""
        with self._lock:
            self._items.clear()


class StoreLookup:
    """Searches the store directly (the unsecured repository): only the policy's own questions."""

    def __init__(self, repository: FhirRepository, parser: SearchParser) -> None:
        self.repository = repository
        self.parser = parser

    def count(self, resource_type: str, params: Sequence[tuple[str, str]]) -> int:
        """How many resources a search matches."""
        return self.repository.count(self.parser.parse(resource_type, list(params)))

    def each(
        self, resource_type: str, params: Sequence[tuple[str, str]], *, limit: int = 100_000
    ) -> Iterator[StoredResource]:
        """Every match of a search, a page at a time (at most ``limit``)."""
        query = self.parser.parse(resource_type, [*params, ("_count", "1000")])
        seen = 0
        while True:
            page = self.repository.search(query)
            for match in page.matches:
                yield match
                seen += 1
                if seen >= limit:
                    return
            if not page.next_page:
                return
            query.page = page.next_page
