"""SQL access to the EMPI tables (SQLite and PostgreSQL), on a connection the caller's transaction owns."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from rhip.db.dialect import execute_many, insert_rows, lock_key
from rhip.empi.blocking import MAX_BLOCK
from rhip.empi.features import Features
from rhip.empi.tables import (
    empi_block,
    empi_history,
    empi_master,
    empi_model,
    empi_no_match,
    empi_record,
    empi_review,
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


@dataclass
class ReviewRow:
    """One item of the review queue."""

    id: int
    patient_id: str
    master_id: str
    weight: float
    reason: str
    status: str
    created_us: int
    decided_us: int | None
    actor: str | None


def _begun(conn: Connection) -> None:
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
    _begun(conn)
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
    _begun(conn)
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
    _begun(conn)
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
    _begun(conn)
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


# -- manual decisions, review, history ------------------------------------------------------------------


def no_match_of(conn: Connection, patient_id: str) -> set[str]:
    """Patients a person decided are not this one."""
    rows = conn.execute(
        select(empi_no_match.c.patient_a, empi_no_match.c.patient_b).where(
            or_(empi_no_match.c.patient_a == patient_id, empi_no_match.c.patient_b == patient_id)
        )
    )
    return {b if a == patient_id else a for a, b in rows}


def add_no_match(conn: Connection, a: str, b: str, actor: str, now_us: int) -> None:
    """Record that two source records are different people."""
    _begun(conn)
    first, second = sorted((a, b))
    insert_rows(
        conn,
        empi_no_match,
        ("patient_a", "patient_b", "actor", "at_us"),
        [(first, second, actor, now_us)],
        skip_duplicates=True,
    )


def remove_no_match(conn: Connection, a: str, b: str) -> None:
    """Withdraw a no-match decision."""
    first, second = sorted((a, b))
    conn.execute(
        delete(empi_no_match).where(
            and_(empi_no_match.c.patient_a == first, empi_no_match.c.patient_b == second)
        )
    )


def all_no_match(conn: Connection) -> list[tuple[str, str]]:
    """Every manual no-match pair."""
    return [(a, b) for a, b in conn.execute(select(empi_no_match.c.patient_a, empi_no_match.c.patient_b))]


def add_review(
    conn: Connection, patient_id: str, master_id: str, weight: float, reason: str, now_us: int
) -> None:
    """Queue a possible match for a person to decide (replacing an open one for the same record)."""
    stale_open(conn, patient_id)
    conn.execute(
        empi_review.insert().values(
            patient_id=patient_id,
            master_id=master_id,
            weight=weight,
            reason=reason,
            status="open",
            created_us=now_us,
        )
    )


def stale_open(conn: Connection, patient_id: str) -> None:
    """Close the open review items of a record that was matched again."""
    conn.execute(
        update(empi_review)
        .where(and_(empi_review.c.patient_id == patient_id, empi_review.c.status == "open"))
        .values(status="stale")
    )


def replace_open_reviews(conn: Connection, items: Sequence[tuple[str, str, float, str, int]]) -> None:
    """Replace every open automatic review item by ``(patient id, master id, weight, reason, created_us)``."""
    conn.execute(
        update(empi_review)
        .where(and_(empi_review.c.status == "open", empi_review.c.actor.is_(None)))
        .values(status="stale")
    )
    if items:
        conn.execute(
            empi_review.insert(),
            [
                {"patient_id": p, "master_id": m, "weight": w, "reason": r, "status": "open", "created_us": t}
                for p, m, w, r, t in items
            ],
        )


def _review(row: Any) -> ReviewRow:
    return ReviewRow(
        row.id,
        row.patient_id,
        row.master_id,
        row.weight,
        row.reason,
        row.status,
        row.created_us,
        row.decided_us,
        row.actor,
    )


def reviews(conn: Connection, status: str | None, limit: int, offset: int) -> tuple[list[ReviewRow], int]:
    """Review items (newest first) and how many there are with that status."""
    query = select(empi_review)
    count = select(func.count()).select_from(empi_review)
    if status:
        query = query.where(empi_review.c.status == status)
        count = count.where(empi_review.c.status == status)
    rows = conn.execute(query.order_by(empi_review.c.id.desc()).limit(limit).offset(offset))
    return [_review(r) for r in rows], int(conn.execute(count).scalar_one())


def get_review(conn: Connection, review_id: int) -> ReviewRow | None:
    """One review item."""
    row = conn.execute(select(empi_review).where(empi_review.c.id == review_id)).first()
    return _review(row) if row is not None else None


def close_review(conn: Connection, review_id: int, status: str, actor: str, now_us: int) -> None:
    """Record a person's decision on a review item."""
    conn.execute(
        update(empi_review)
        .where(empi_review.c.id == review_id)
        .values(status=status, actor=actor, decided_us=now_us)
    )


_HISTORY_COLUMNS = (
    "at_us",
    "action",
    "patient_id",
    "master_id",
    "previous_master_id",
    "state",
    "origin",
    "weight",
    "actor",
    "detail",
)


def add_history(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append link-history rows (dicts of empi_history columns)."""
    if rows:
        _begun(conn)
        insert_rows(
            conn, empi_history, _HISTORY_COLUMNS, [tuple(r[c] for c in _HISTORY_COLUMNS) for r in rows]
        )


def history(conn: Connection, patient_id: str | None, master_id: str | None, limit: int) -> list[Any]:
    """Link history of a record or a master, newest first."""
    query = select(empi_history)
    if patient_id:
        query = query.where(empi_history.c.patient_id == patient_id)
    if master_id:
        query = query.where(
            or_(empi_history.c.master_id == master_id, empi_history.c.previous_master_id == master_id)
        )
    return list(conn.execute(query.order_by(empi_history.c.id.desc()).limit(limit)))


# -- models -------------------------------------------------------------------------------------------


def active_model(conn: Connection) -> bytes | None:
    """The active model document, if the region has trained one."""
    row = conn.execute(select(empi_model.c.content).where(empi_model.c.active == 1)).first()
    return bytes(row[0]) if row is not None else None


def save_model(conn: Connection, version: str, content: bytes, now_us: int) -> None:
    """Store a model and make it the active one."""
    conn.execute(update(empi_model).values(active=0))
    conn.execute(delete(empi_model).where(empi_model.c.version == version))
    conn.execute(empi_model.insert().values(version=version, created_us=now_us, active=1, content=content))
