"""SqlFhirRepository: the FhirRepository port on SQLite or PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from rhip.core.errors import Conflict
from rhip.core.ids import new_resource_id
from rhip.fhir.repository import EverythingRequest, HistoryPage, HistoryRequest, SearchPage, StoredResource
from rhip.fhir.search.query import SearchQuery
from rhip.store import reader
from rhip.store.context import StoreContext
from rhip.store.search import SearchRunner
from rhip.store.writer import UnitOfWork


class SqlTransaction:
    """The repository inside one write transaction: everything commits together."""

    def __init__(self, connect: Callable[[], Connection], ctx: StoreContext, runner: SearchRunner) -> None:
        self.ctx = ctx
        self.runner = runner
        self.uow = UnitOfWork(connect, ctx)

    @property
    def conn(self) -> Connection:
        """The transaction's connection (taken at first use)."""
        return self.uow.conn

    def read(self, resource_type: str, id: str) -> StoredResource:
        """The current version, seeing this transaction's writes."""
        self.uow.flush()
        return reader.read_current(self.conn, resource_type, id)

    def vread(self, resource_type: str, id: str, version: int) -> StoredResource:
        """One version, seeing this transaction's writes."""
        self.uow.flush()
        return reader.read_version(self.conn, resource_type, id, version)

    def create(self, resource: dict[str, Any], *, id: str | None = None, put: bool = False) -> StoredResource:
        """Buffer a create."""
        return self.uow.create(resource, id=id, put=put)

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Buffer an update (or create with this id)."""
        return self.uow.update(resource_type, id, resource, if_match=if_match)

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        """Buffer a delete."""
        return self.uow.delete(resource_type, id)

    def search(self, query: SearchQuery) -> SearchPage:
        """Search, seeing this transaction's writes."""
        self.uow.flush()
        page, pending = self.runner.search(self.conn, query)
        if pending is not None:
            self.runner.store_cache(self.conn, pending, self.uow.now_us())
        return page

    def count(self, query: SearchQuery) -> int:
        """Count matches, seeing this transaction's writes."""
        self.uow.flush()
        return self.runner.count(self.conn, query)

    def history(self, request: HistoryRequest) -> HistoryPage:
        """History, seeing this transaction's writes."""
        self.uow.flush()
        return reader.history(self.conn, request, self.ctx.limits.history_max_count)

    def everything(self, request: EverythingRequest) -> SearchPage:
        """$everything, seeing this transaction's writes."""
        self.uow.flush()
        return self.runner.everything(self.conn, request)

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """Already in a transaction: the same one."""
        yield self

    def lock(self, key: str) -> None:
        """Serialise with other transactions that lock the same key, until this one ends."""
        self.uow.lock(key)

    def new_id(self) -> str:
        """A fresh id for a create in this transaction."""
        return self.uow.new_id()

    def record(self, entry: Mapping[str, Any]) -> None:
        """Add an audit entry (:func:`rhip.db.audit.audit_row`'s mapping) committed with this transaction."""
        self.uow.record(entry)


class SqlFhirRepository:
    """Each call is its own transaction; ``transaction()`` groups calls."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx
        self.runner = SearchRunner(ctx)

    def read(self, resource_type: str, id: str) -> StoredResource:
        """The current version of a resource."""
        with self.ctx.db.read() as conn:
            return reader.read_current(conn, resource_type, id)

    def vread(self, resource_type: str, id: str, version: int) -> StoredResource:
        """One version of a resource."""
        with self.ctx.db.read() as conn:
            return reader.read_version(conn, resource_type, id, version)

    def create(self, resource: dict[str, Any], *, id: str | None = None, put: bool = False) -> StoredResource:
        """Store a new resource."""
        with self.transaction() as tx:
            return tx.create(resource, id=id, put=put)

    def update(
        self, resource_type: str, id: str, resource: dict[str, Any], *, if_match: int | None = None
    ) -> tuple[StoredResource, bool]:
        """Store a new version, or create with this id."""
        with self.transaction() as tx:
            return tx.update(resource_type, id, resource, if_match=if_match)

    def delete(self, resource_type: str, id: str) -> StoredResource | None:
        """Delete a resource, keeping its history."""
        with self.transaction() as tx:
            return tx.delete(resource_type, id)

    def search(self, query: SearchQuery) -> SearchPage:
        """One page of search results."""
        with self.ctx.db.read() as conn:
            page, pending = self.runner.search(conn, query)
        if pending is not None:
            with self.ctx.db.write() as conn:
                self.runner.store_cache(conn, pending, int(self.ctx.clock.now().timestamp() * 1_000_000))
        return page

    def count(self, query: SearchQuery) -> int:
        """How many resources a search matches."""
        with self.ctx.db.read() as conn:
            return self.runner.count(conn, query)

    def history(self, request: HistoryRequest) -> HistoryPage:
        """Versions, newest first."""
        with self.ctx.db.read() as conn:
            return reader.history(conn, request, self.ctx.limits.history_max_count)

    def everything(self, request: EverythingRequest) -> SearchPage:
        """A Patient's compartment, a page at a time."""
        with self.ctx.db.read() as conn:
            return self.runner.everything(conn, request)

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        """A unit of work committed at the end of the block (rolled back on any error).

        A unit that never needed the database before its end (creates only) is written by the group
        committer, which shares one database transaction and commit among concurrent units. Audit
        entries recorded in the unit commit with it, and vanish with it when it rolls back.
        """
        stack = ExitStack()

        def connect() -> Connection:
            return stack.enter_context(self.ctx.db.write())

        tx = SqlTransaction(connect, self.ctx, self.runner)
        try:
            with stack:
                yield tx
                if tx.uow.connected:
                    tx.uow.flush(final=True)
                elif tx.uow.pending and self.ctx.writer is not None:
                    self.ctx.writer.write(tx.uow.prepare())
                elif tx.uow.pending:
                    self.ctx.db.run_grouped(tx.uow.flush_on)
        except IntegrityError as exc:
            raise Conflict("A concurrent change touched the same resource; retry the request") from exc
        events = tx.uow.events
        if self.ctx.events is not None:
            for event in events:
                self.ctx.events.publish(event)

    def lock(self, key: str) -> None:
        """Outside a transaction there is nothing to hold a lock for."""

    def new_id(self) -> str:
        """A fresh server-assigned id (creates outside a transaction check nothing more for it)."""
        return new_resource_id()

    def record(self, entry: Mapping[str, Any]) -> None:
        """Append an audit entry in a write transaction of its own (group-committed like any write)."""
        with self.transaction() as tx:
            tx.record(entry)
