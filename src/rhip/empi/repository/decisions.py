"""SQL access to manual decisions, the review queue, link history and trained models."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from rhip.db.dialect import insert_rows
from rhip.empi.repository.records import begun
from rhip.empi.tables import empi_history, empi_model, empi_no_match, empi_review


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
    begun(conn)
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
        begun(conn)
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
