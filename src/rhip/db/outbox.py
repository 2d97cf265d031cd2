"""The transactional outbox: events written in the same transaction as the change they describe.

Consumers (EMPI, subscriptions, analytics extracts) read the events after the position they last
processed and record it in ``outbox_cursor``; nothing is ever lost between a commit and its consumers.

A position is ``(xact, id)``. On PostgreSQL ``id`` comes from a sequence before the transaction commits, so
ids do not arrive in commit order: a transaction holding id 5 may commit after one holding id 6, and a
consumer that had moved past 6 would never see 5. Each row therefore records the transaction that wrote
it (``xact``, PostgreSQL's 64-bit ``pg_current_xact_id()``, filled in by the column's default), and
:func:`read_after` returns events in ``(xact, id)`` order, and only those of transactions below the
current snapshot's ``xmin``: every transaction below it has ended, and every transaction that may still
commit has an xid at or above it, so its events sort after anything already returned. An event appears
once its transaction and every older writing transaction have ended. On SQLite writes are serial (one
write lock), ids are in commit order, ``xact`` is NULL and positions are ``(0, id)``.

Within one transaction events keep their id order; events of transactions that ran side by side come in
the order their transactions started writing, so a consumer that cares about the order of versions of one
resource compares ``version``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Column, Connection, Index, Integer, String, Table, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ColumnElement

from rhip.db.dialect import allocate_ids, insert_rows
from rhip.db.metadata import BigKey, metadata


class WritingTransaction(ColumnElement[int]):
    """The id of the transaction writing a row: ``pg_current_xact_id()`` as a bigint on PostgreSQL.

    xid8 is the 32-bit xid with its wraparound epoch above it, so it never wraps and fits a bigint for
    2^31 epochs. Other databases write NULL.
    """

    type = BigInteger()
    inherit_cache = True


@compiles(WritingTransaction)
def _null(element: WritingTransaction, compiler: SQLCompiler, **kw: Any) -> str:
    return "NULL"


@compiles(WritingTransaction, "postgresql")
def _pg_current_xact_id(element: WritingTransaction, compiler: SQLCompiler, **kw: Any) -> str:
    return "(pg_current_xact_id())::text::bigint"


outbox = Table(
    "outbox",
    metadata,
    Column("id", BigKey, primary_key=True, autoincrement=False),
    Column("event", String(40), nullable=False),
    Column("res_type", String(64), nullable=False),
    Column("res_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("compartment", String(64), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    # Set by the database (not among the inserted columns, so COPY stays as cheap as before).
    Column("xact", BigInteger, nullable=True, server_default=WritingTransaction()),
    # Consumers read in (xact, id) order. SQLite's rows have no xact: its index stays empty.
    Index(None, "xact", "id", sqlite_where=text("xact IS NOT NULL")),
)

outbox_cursor = Table(
    "outbox_cursor",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
    Column("last_xact", BigInteger, nullable=False, server_default=text("0")),
)

OUTBOX_COLUMNS = ("id", "event", "res_type", "res_id", "version", "compartment", "created_us")


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """A place in the outbox: the ``(xact, id)`` of the last event a consumer processed."""

    xact: int = 0
    id: int = 0


START = Position()


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """One stored event."""

    id: int
    event: str
    res_type: str
    res_id: str
    version: int
    compartment: str | None
    created_us: int
    xact: int | None = None

    @property
    def position(self) -> Position:
        """Where a consumer is once it has processed this event."""
        return Position(self.xact or 0, self.id)


def append(conn: Connection, records: Sequence[tuple[str, str, str, int, str | None, int]]) -> None:
    """Append events ``(event, type, id, version, compartment, created_us)`` in the current transaction."""
    if not records:
        return
    ids = allocate_ids(conn, outbox, "id", "outbox_id_seq", len(records))
    insert_rows(conn, outbox, OUTBOX_COLUMNS, [(i, *r) for i, r in zip(ids, records, strict=True)])


_COLUMNS = "id, event, res_type, res_id, version, compartment, created_us, xact"
_READ_PG = text(
    f"SELECT {_COLUMNS} FROM outbox "
    "WHERE (xact, id) > (:xact, :id) "
    "AND xact < (pg_snapshot_xmin(pg_current_snapshot()))::text::bigint "
    "ORDER BY xact, id LIMIT :limit"
)
_READ_SQLITE = text(f"SELECT {_COLUMNS} FROM outbox WHERE id > :id ORDER BY id LIMIT :limit")


def read_after(conn: Connection, after: Position = START, limit: int = 1000) -> list[OutboxRecord]:
    """Events after ``after`` whose transactions, and all older writing transactions, have ended; in order.

    On PostgreSQL an event whose transaction committed is held back while an older transaction is still
    open anywhere on the cluster (it may yet commit events that sort before it): delivery waits, nothing is
    lost. Read in a transaction that has not written: an open transaction's own xid holds back everything
    written after it started.
    """
    params = {"xact": after.xact, "id": after.id, "limit": limit}
    statement = _READ_PG if conn.dialect.name == "postgresql" else _READ_SQLITE
    return [OutboxRecord(*row) for row in conn.execute(statement, params)]


def position(conn: Connection, consumer: str) -> Position:
    """The position of the last event a consumer has processed (START when it has processed none)."""
    found = conn.execute(
        select(outbox_cursor.c.last_xact, outbox_cursor.c.last_id).where(outbox_cursor.c.consumer == consumer)
    ).first()
    return Position(int(found[0]), int(found[1])) if found is not None else START


def advance(conn: Connection, consumer: str, to: Position) -> None:
    """Record that ``consumer`` has processed every event up to ``to`` (an event's ``position``)."""
    values = {"last_id": to.id, "last_xact": to.xact}
    updated = conn.execute(
        outbox_cursor.update().where(outbox_cursor.c.consumer == consumer).values(**values)
    ).rowcount
    if not updated:
        conn.execute(outbox_cursor.insert().values(consumer=consumer, **values))
