"""The FhirRepository port: what every capability reads and writes FHIR resources through.

Implementations: ``rhip.store.SqlFhirRepository`` (SQLite, PostgreSQL); the security layer wraps one to
authorise and audit every call. A repository validates what it stores, assigns ids and versions, keeps
history, indexes for search and publishes ``ResourceCreated/Updated/Deleted``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from rhip.core.errors import Issue
from rhip.fhir.search.query import SearchQuery


@dataclass(frozen=True, slots=True)
class StoredResource:
    """One stored version of a resource: its JSON exactly as stored, with ``id`` and ``meta`` set."""

    resource_type: str
    id: str
    version: int
    last_updated: str  # FHIR instant, UTC
    deleted: bool
    content: bytes | None  # None for a deletion
    method: str = ""  # POST | PUT | PATCH | DELETE (history entries)
    compartment: str | None = None  # the Patient whose compartment holds it, when read from the store

    @property
    def etag(self) -> str:
        """The weak ETag of this version."""
        return f'W/"{self.version}"'

    @property
    def location(self) -> str:
        """The versioned relative URL of this version."""
        return f"{self.resource_type}/{self.id}/_history/{self.version}"

    def resource(self) -> dict[str, Any]:
        """The resource as a dict (parses the stored JSON)."""
        if self.content is None:
            raise ValueError(f"{self.resource_type}/{self.id} version {self.version} is a deletion")
        parsed: dict[str, Any] = orjson.loads(self.content)
        return parsed


@dataclass
class SearchPage:
    """One page of search results."""

    matches: list[StoredResource]
    included: list[StoredResource] = field(default_factory=list)
    total: int | None = None
    next_page: str | None = None
    previous_page: str | None = None
    first_page: str | None = None
    warnings: list[Issue] = field(default_factory=list)


@dataclass
class HistoryPage:
    """One page of a history listing, newest first."""

    entries: list[StoredResource]
    total: int | None = None
    next_page: str | None = None


@dataclass(frozen=True)
class HistoryRequest:
    """A history query at system, type or instance level."""

    resource_type: str | None = None
    id: str | None = None
    since_us: int | None = None
    at_start_us: int | None = None  # _at: the instant, or the start of the period it names
    at_end_us: int | None = None  # _at: the end of that period (the instant itself for an instant)
    count: int = 20
    page: str | None = None


@dataclass(frozen=True)
class EverythingRequest:
    """``Patient/{id}/$everything`` parameters."""

    patient_id: str
    since_us: int | None = None
    types: tuple[str, ...] | None = None
    count: int = 100
    page: str | None = None


class FhirRepository(Protocol):
    """Reads, writes and searches FHIR resources. Writes are validated, versioned and indexed."""

    def read(self, resource_type: str, id: str) -> StoredResource:
        """The current version; raises ResourceNotFound, or ResourceGone when deleted."""

    def vread(self, resource_type: str, id: str, version: int) -> StoredResource:
        """One version (a deletion version raises ResourceGone)."""

    def create(self, resource: dict[str, Any], *, id: str | None = None, put: bool = False) -> StoredResource:
        """Store a new resource; the server assigns the id unless one is given.

        ``put``: the create is a PUT of a new id (an update that creates), and its version says so.
        """

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version (or create with this id); returns it and whether it was created."""

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        """Delete the current version; returns the deletion version, or None when nothing was there."""

    def search(self, query: SearchQuery) -> SearchPage:
        """One page of results of a parsed search."""

    def count(self, query: SearchQuery) -> int:
        """How many resources a search matches."""

    def history(self, request: HistoryRequest) -> HistoryPage:
        """Versions at system, type or instance level, newest first."""

    def everything(self, request: EverythingRequest) -> SearchPage:
        """A Patient's compartment and the resources it references, one page at a time."""

    def transaction(self) -> AbstractContextManager[FhirRepository]:
        """A unit of work: every call on the yielded repository commits together or not at all."""

    def lock(self, key: str) -> None:
        """Inside a transaction: serialise with other transactions locking ``key`` (conditional creates)."""

    def new_id(self) -> str:
        """A fresh id for a resource this transaction will create (a transaction Bundle's urn:uuid entries).

        Creating with an id obtained here skips the check that the id is unused: the repository made it.
        """

    def record(self, entry: Mapping[str, Any]) -> None:
        """Write an audit entry (the row format of :mod:`rhip.db.audit`) onto the hash-chained audit log.

        Inside a transaction the entry commits with the transaction's changes, and is gone if it rolls
        back; outside one it is written in a transaction of its own.
        """


class ResourceValidator(Protocol):
    """Checks a resource before it is stored."""

    def validate(self, resource: Any, *, expected_type: str | None = None) -> list[Issue]:
        """Issues found (errors make the write fail)."""


class ResourcePreparer(Protocol):
    """Readies an incoming resource before it is validated and stored (the terminology adds standard codes)."""

    def prepare(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource to store (a new object when changed); InvalidRequest when it cannot be stored."""


def iter_json(stored: Sequence[StoredResource]) -> Iterator[bytes]:
    """The stored JSON of each non-deleted resource."""
    for s in stored:
        if s.content is not None:
            yield s.content
