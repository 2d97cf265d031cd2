"""The transactional outbox: events written in the same transaction as the change they describe.

Consumers (EMPI, subscriptions, analytics extracts) read rows after the last id they processed and
record their position in ``outbox_cursor``; nothing is ever lost between a commit and its consumers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, Connection, Integer, String, Table, select

from rhip.db.dialect import allocate_ids, insert_rows
from rhip.db.metadata import BigKey, metadata

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
)

outbox_cursor = Table(
    "outbox_cursor",
    metadata,
    Column("consumer", String(64), primary_key=True),
    Column("last_id", BigInteger, nullable=False),
)

OUTBOX_COLUMNS = ("id", "event", "res_type", "res_id", "version", "compartment", "created_us")


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


def append(conn: Connection, records: Sequence[tuple[str, str, str, int, str | None, int]]) -> None:
    """Append events ``(event, type, id, version, compartment, created_us)`` in the current transaction."""
    if not records:
        return
    ids = allocate_ids(conn, outbox, "id", "outbox_id_seq", len(records))
    insert_rows(conn, outbox, OUTBOX_COLUMNS, [(i, *r) for i, r in zip(ids, records, strict=True)])


def read_after(conn: Connection, last_id: int, limit: int = 1000) -> list[OutboxRecord]:
    """Events with an id greater than ``last_id``, oldest first."""
    rows = conn.execute(select(outbox).where(outbox.c.id > last_id).order_by(outbox.c.id).limit(limit))
    return [OutboxRecord(*row) for row in rows]


def position(conn: Connection, consumer: str) -> int:
    """The last event id a consumer has processed (0 when it has processed none)."""
    found = conn.execute(select(outbox_cursor.c.last_id).where(outbox_cursor.c.consumer == consumer)).scalar()
    return int(found or 0)


def advance(conn: Connection, consumer: str, last_id: int) -> None:
    """Record that ``consumer`` has processed every event up to ``last_id``."""
    updated = conn.execute(
        outbox_cursor.update().where(outbox_cursor.c.consumer == consumer).values(last_id=last_id)
    ).rowcount
    if not updated:
        conn.execute(outbox_cursor.insert().values(consumer=consumer, last_id=last_id))
