"""SQL access to the rejects table (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from rhip.exchange.rejects.tables import exchange_reject as t


def insert_reject(conn: Connection, values: dict[str, Any]) -> int:
    """Insert one reject; its id."""
    result = conn.execute(insert(t).values(**values).returning(t.c.id))
    return int(result.scalar_one())


def latest_ack(
    conn: Connection, channel: str, sender: str, control_id: str, application: str
) -> bytes | None:
    """The answer given to the latest open reject of this sender's (and application's) control id."""
    row = conn.execute(
        select(t.c.ack)
        .where(
            t.c.channel == channel,
            t.c.sender == sender,
            t.c.control_id == control_id,
            t.c.application == application,
            t.c.status == "open",
        )
        .order_by(t.c.id.desc())
        .limit(1)
    ).first()
    return None if row is None else row.ack


def select_rejects(
    conn: Connection,
    *,
    status: str | None,
    channel: str | None,
    since_us: int | None,
    limit: int,
    with_raw: bool,
) -> Sequence[Row[Any]]:
    """Rejects newest first, filtered."""
    columns = [c for c in t.c if with_raw or c.name not in ("raw", "ack")]
    query = select(*columns).order_by(t.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(t.c.status == status)
    if channel is not None:
        query = query.where(t.c.channel == channel)
    if since_us is not None:
        query = query.where(t.c.received_us >= since_us)
    return conn.execute(query).all()


def select_reject(conn: Connection, reject_id: int) -> Row[Any] | None:
    """One reject with its raw bytes."""
    return conn.execute(select(t).where(t.c.id == reject_id)).first()


def update_status(conn: Connection, reject_id: int, status: str, note: str, at_us: int) -> int:
    """Set a reject's status; the number of rows changed."""
    result = conn.execute(
        update(t).where(t.c.id == reject_id).values(status=status, note=note, resolved_us=at_us)
    )
    return int(result.rowcount)


def count_open(conn: Connection) -> dict[str, int]:
    """Open rejects per channel."""
    rows = conn.execute(
        select(t.c.channel, func.count()).where(t.c.status == "open").group_by(t.c.channel)
    ).all()
    return {str(r[0]): int(r[1]) for r in rows}
