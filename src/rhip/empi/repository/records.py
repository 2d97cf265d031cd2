"""SQL access to source records, their blocking keys and masters, on a connection the caller's transaction owns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update

from rhip.db.dialect import execute_many, insert_rows, lock_key
from rhip.empi.blocking import MAX_BLOCK
from rhip.empi.features import Features
from rhip.empi.tables import (
    empi_block,
    empi_master,
    empi_record,
)

_RECORD_COLUMNS = (
    "patient_id",
    "version",
    "master_id",
    "state",
    "origin",
    "weight",
    "features",
    "updated_us",
)


@dataclass(slots=True)
class RecordRow:
    """One source record and its link."""

    patient_id: str
    version: int
    master_id: str
    state: str
    origin: str
    weight: float | None
    features: bytes
    updated_us: int

    def decoded(self) -> Features:
        """The record's features."""
        return Features.from_json(self.patient_id, self.features)


def begun(conn: Connection) -> None:
    """Begin the transaction through SQLAlchemy before rows go straight to the driver.

    ``insert_rows`` writes through the DB-API cursor, which SQLAlchemy does not see: without this, a unit
    that only bulk-inserts is never committed (and on SQLite would not take the write lock).
    """
    if not conn.in_transaction():
        conn.begin()


def _record(row: Any) -> RecordRow:
    return RecordRow(
        row.patient_id,
        row.version,
        row.master_id,
        row.state,
        row.origin,
        row.weight,
        bytes(row.features),
        row.updated_us,
    )


def get_record(conn: Connection, patient_id: str) -> RecordRow | None:
    """The record of a source Patient, if the EMPI holds it."""
    row = conn.execute(select(empi_record).where(empi_record.c.patient_id == patient_id)).first()
    return _record(row) if row is not None else None


def get_records(conn: Connection, patient_ids: Sequence[str]) -> list[RecordRow]:
    """The records of several source Patients (those the EMPI holds)."""
    out: list[RecordRow] = []
    for start in range(0, len(patient_ids), 500):
        chunk = list(patient_ids[start : start + 500])
        out.extend(
            _record(r) for r in conn.execute(select(empi_record).where(empi_record.c.patient_id.in_(chunk)))
        )
    return out


def members(conn: Connection, master_id: str) -> list[RecordRow]:
    """The source records linked to a master."""
    query = select(empi_record).where(empi_record.c.master_id == master_id).order_by(empi_record.c.patient_id)
    return [_record(r) for r in conn.execute(query)]


def candidate_ids(conn: Connection, keys: Sequence[int]) -> list[str]:
    """Patient ids sharing a blocking key; keys shared by more than MAX_BLOCK records are skipped."""
    found: dict[str, None] = {}
    for key in keys:
        rows = conn.execute(
            select(empi_block.c.patient_id).where(empi_block.c.key == key).limit(MAX_BLOCK + 1)
        ).all()
        if len(rows) <= MAX_BLOCK:
            found.update((r[0], None) for r in rows)
    return list(found)


def lock_keys(conn: Connection, keys: Iterable[int]) -> None:
    """Serialise with transactions matching records that share a key (PostgreSQL; SQLite writes serially)."""
    for key in sorted(set(keys)):
        lock_key(conn, key)


def save_record(conn: Connection, row: RecordRow, keys: Sequence[int] | None) -> None:
    """Insert or replace a record; ``keys`` (when given) replace its blocking keys."""
    conn.execute(delete(empi_record).where(empi_record.c.patient_id == row.patient_id))
    insert_rows(
        conn,
        empi_record,
        _RECORD_COLUMNS,
        [
            (
                row.patient_id,
                row.version,
                row.master_id,
                row.state,
                row.origin,
                row.weight,
                row.features,
                row.updated_us,
            )
        ],
    )
    if keys is not None:
        conn.execute(delete(empi_block).where(empi_block.c.patient_id == row.patient_id))
        insert_rows(conn, empi_block, ("key", "patient_id"), [(k, row.patient_id) for k in keys])


def set_link(
    conn: Connection,
    patient_id: str,
    master_id: str,
    state: str,
    origin: str,
    weight: float | None,
    now_us: int,
) -> None:
    """Change a record's link."""
    conn.execute(
        update(empi_record)
        .where(empi_record.c.patient_id == patient_id)
        .values(master_id=master_id, state=state, origin=origin, weight=weight, updated_us=now_us)
    )


def set_links(conn: Connection, links: Sequence[tuple[str, str, str, float | None, int]]) -> None:
    """Change many links ``(patient id, master id, state, weight, updated_us)`` (relink)."""
    begun(conn)
    execute_many(
        conn,
        "UPDATE empi_record SET master_id = {m}, state = {m}, weight = {m}, updated_us = {m} WHERE patient_id = {m}",
        [(m, s, w, t, p) for p, m, s, w, t in links],
    )


def remove_record(conn: Connection, patient_id: str) -> None:
    """Forget a source record (its Patient was deleted)."""
    conn.execute(delete(empi_record).where(empi_record.c.patient_id == patient_id))
    conn.execute(delete(empi_block).where(empi_block.c.patient_id == patient_id))


def bulk_insert_records(conn: Connection, rows: Sequence[RecordRow], keys: Sequence[tuple[int, str]]) -> None:
    """Insert many new records and their keys (relink's first load)."""
    begun(conn)
    insert_rows(
        conn,
        empi_record,
        _RECORD_COLUMNS,
        [
            (r.patient_id, r.version, r.master_id, r.state, r.origin, r.weight, r.features, r.updated_us)
            for r in rows
        ],
    )
    insert_rows(conn, empi_block, ("key", "patient_id"), keys, skip_duplicates=True)


def all_records(conn: Connection, batch: int = 20_000) -> Iterator[RecordRow]:
    """Every record, in patient-id order, read in batches."""
    last = ""
    while True:
        rows = conn.execute(
            select(empi_record)
            .where(empi_record.c.patient_id > last)
            .order_by(empi_record.c.patient_id)
            .limit(batch)
        ).all()
        if not rows:
            return
        for row in rows:
            yield _record(row)
        last = rows[-1].patient_id


# -- masters ------------------------------------------------------------------------------------------


def get_master(conn: Connection, master_id: str) -> Any:
    """The master row (or None)."""
    return conn.execute(select(empi_master).where(empi_master.c.master_id == master_id)).first()


def save_master(
    conn: Connection,
    master_id: str,
    content: bytes | None,
    status: str,
    now_us: int,
    merged_into: str | None = None,
) -> int:
    """Insert or bump a master; returns its new version."""
    current = get_master(conn, master_id)
    if current is None:
        conn.execute(
            empi_master.insert().values(
                master_id=master_id,
                version=1,
                status=status,
                merged_into=merged_into,
                content=content,
                updated_us=now_us,
            )
        )
        return 1
    version = int(current.version) + 1
    conn.execute(
        update(empi_master)
        .where(empi_master.c.master_id == master_id)
        .values(version=version, status=status, merged_into=merged_into, content=content, updated_us=now_us)
    )
    return version


def master_versions(conn: Connection) -> dict[str, int]:
    """The version of every master (relink decides what to insert and what to bump)."""
    return {m: int(v) for m, v in conn.execute(select(empi_master.c.master_id, empi_master.c.version))}


def insert_masters(conn: Connection, masters: Sequence[tuple[str, bytes]], now_us: int) -> None:
    """Insert new active masters ``(master id, golden JSON)``."""
    begun(conn)
    insert_rows(
        conn,
        empi_master,
        ("master_id", "version", "status", "merged_into", "content", "updated_us"),
        [(m, 1, "active", None, content, now_us) for m, content in masters],
        skip_duplicates=True,
    )


def update_masters(
    conn: Connection, masters: Sequence[tuple[str, int, str, bytes | None]], now_us: int
) -> None:
    """Bump many masters ``(master id, new version, status, golden JSON or None)``."""
    begun(conn)
    execute_many(
        conn,
        "UPDATE empi_master SET version = {m}, status = {m}, content = {m}, updated_us = {m} WHERE master_id = {m}",
        [(v, st, c, now_us, m) for m, v, st, c in masters],
    )


def search_masters(conn: Connection, ids: Sequence[str] | None, limit: int, offset: int) -> list[Any]:
    """Active masters (optionally among ``ids``), in id order."""
    query = select(empi_master).where(empi_master.c.status == "active")
    if ids is not None:
        query = query.where(empi_master.c.master_id.in_(list(ids)))
    return list(conn.execute(query.order_by(empi_master.c.master_id).limit(limit).offset(offset)))
