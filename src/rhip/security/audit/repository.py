"""The audit trail's SQL: appending batches of entries, filtered pages of the log, counts, verification.

Entries are found newest first by ``seq`` (their place in the chain), a page at a time. A Patient
condition goes through ``audit_patient`` (one row per entry and Patient); subject and institution
conditions use their ``(column, seq)`` indexes, time ranges the ``recorded_us`` index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, false, func, literal, or_, select

from rhip.db import audit
from rhip.db.audit import AuditRow, Problem, audit_log, audit_patient
from rhip.db.engine import Database
from rhip.security.audit.balp import unpack_event

EQUAL_COLUMNS = frozenset(
    {
        "id",
        "action",
        "outcome",
        "event_type",
        "subtype",
        "subject",
        "role",
        "institution",
        "client",
        "purpose",
    }
)
_FIELDS = (
    "seq", "id", "recorded_us", "action", "outcome", "event_type", "subtype", "subject", "role",
    "institution", "client", "purpose", "patients", "entities",
)  # fmt: skip


@dataclass(frozen=True)
class TimeTest:
    """A FHIR date comparison of ``recorded_us`` with the range ``[low, high]`` (epoch microseconds)."""

    prefix: str  # eq ne gt lt ge le sa eb ap
    low: int
    high: int


@dataclass
class AuditFilter:
    """Entries matching every condition; the values inside one condition are alternatives."""

    equal: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)  # (column, values)
    patients: list[tuple[str, ...]] = field(default_factory=list)  # Patient ids an entry names
    entities: list[tuple[str, ...]] = field(default_factory=list)  # "Type/id" or "Type/id/_history/v"
    times: list[tuple[TimeTest, ...]] = field(default_factory=list)
    exclude_subjects: tuple[str, ...] = ()
    exclude_roles: tuple[str, ...] = ()
    nothing: bool = False  # a restriction that admits no entry at all


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the log, with its AuditEvent when asked for."""

    seq: int
    id: str
    recorded_us: int
    action: str
    outcome: str
    event_type: str
    subtype: str
    subject: str
    role: str | None
    institution: str | None
    client: str | None
    purpose: str | None
    patients: tuple[str, ...]
    entities: tuple[str, ...]
    event: bytes | None = None


def append_entries(db: Database, rows: Sequence[AuditRow], *, skip_existing: bool = False) -> list[int]:
    """Chain ``rows`` onto the log in a write transaction of their own; returns their seqs.

    ``skip_existing``: leave out rows whose id the log holds already (a batch written again after its
    writer failed, perhaps after committing it). On SQLite the transaction is shared with concurrent
    writers (group commit).
    """
    if not rows:
        return []

    def job(conn: Connection) -> list[int]:
        return audit.append(conn, _not_logged(conn, rows) if skip_existing else rows)

    return db.run_grouped(job)


def _not_logged(conn: Connection, rows: Sequence[AuditRow]) -> list[AuditRow]:
    ids = [r.id for r in rows]
    logged: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        logged.update(conn.execute(select(audit_log.c.id).where(audit_log.c.id.in_(chunk))).scalars())
    return [r for r in rows if r.id not in logged]


def _time(test: TimeTest) -> ColumnElement[bool]:
    t = audit_log.c.recorded_us
    p, low, high = test.prefix, test.low, test.high
    if p in ("eq", "ap"):
        return and_(t >= low, t <= high)
    if p == "ne":
        return or_(t < low, t > high)
    tests = {"gt": t > high, "sa": t > high, "lt": t < low, "eb": t < low, "ge": t >= low, "le": t <= high}
    if p not in tests:
        raise ValueError(f"unknown date prefix {p!r}")
    return tests[p]


def _entity(ref: str) -> ColumnElement[bool]:
    # ``entities`` is space-separated: pad it so that each reference is matched whole.
    padded = literal(" ") + audit_log.c.entities + literal(" ")
    if "/_history/" in ref:
        return padded.like(f"% {ref} %")
    return or_(padded.like(f"% {ref}/%"), padded.like(f"% {ref} %"))


def _conditions(flt: AuditFilter) -> list[ColumnElement[bool]]:
    if flt.nothing:
        return [false()]
    conditions: list[ColumnElement[bool]] = []
    for column, values in flt.equal:
        if column not in EQUAL_COLUMNS:
            raise ValueError(f"the audit log cannot be filtered on {column!r}")
        conditions.append(audit_log.c[column].in_(values))
    for patients in flt.patients:
        named = select(audit_patient.c.seq).where(audit_patient.c.patient.in_(patients))
        conditions.append(audit_log.c.seq.in_(named))
    for refs in flt.entities:
        conditions.append(or_(*[_entity(r) for r in refs]))
    for tests in flt.times:
        conditions.append(or_(*[_time(t) for t in tests]))
    if flt.exclude_subjects:
        conditions.append(audit_log.c.subject.not_in(flt.exclude_subjects))
    if flt.exclude_roles:
        conditions.append(or_(audit_log.c.role.is_(None), audit_log.c.role.not_in(flt.exclude_roles)))
    return conditions


def _record(row: Any, with_event: bool) -> AuditRecord:
    return AuditRecord(
        int(row.seq),
        row.id,
        int(row.recorded_us),
        row.action,
        row.outcome,
        row.event_type,
        row.subtype,
        row.subject,
        row.role,
        row.institution,
        row.client,
        row.purpose,
        tuple(row.patients.split()),
        tuple(row.entities.split()),
        unpack_event(bytes(row.event)) if with_event else None,
    )


def find(
    db: Database,
    flt: AuditFilter,
    *,
    limit: int,
    before: int | None = None,
    after: int | None = None,
    ascending: bool = False,
    with_event: bool = False,
) -> list[AuditRecord]:
    """Up to ``limit`` matching entries, newest first (``ascending``: oldest first), by seq.

    ``before``/``after``: only entries with a smaller/greater seq (the keys of the next page).
    """
    columns = [audit_log.c[name] for name in _FIELDS]
    if with_event:
        columns.append(audit_log.c.event)
    conditions = _conditions(flt)
    if before is not None:
        conditions.append(audit_log.c.seq < before)
    if after is not None:
        conditions.append(audit_log.c.seq > after)
    order = audit_log.c.seq.asc() if ascending else audit_log.c.seq.desc()
    statement = select(*columns).where(*conditions).order_by(order).limit(limit)
    with db.read() as conn:
        return [_record(row, with_event) for row in conn.execute(statement)]


def count(db: Database, flt: AuditFilter) -> int:
    """How many entries match."""
    statement = select(func.count()).select_from(audit_log).where(*_conditions(flt))
    with db.read() as conn:
        return int(conn.execute(statement).scalar_one())


def verify_log(db: Database, algorithm: str | None = None) -> tuple[list[Problem], tuple[int, str] | None]:
    """The problems :func:`rhip.db.audit.verify` finds, and the chain's head ``(seq, hash)`` it checked."""
    with db.read() as conn:
        recorded = audit.head(conn)
        return audit.verify(conn, algorithm), recorded


def entry_hash(db: Database, seq: int) -> str | None:
    """The stored hash of entry ``seq`` (None when there is none)."""
    with db.read() as conn:
        found = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == seq)).scalar()
        return str(found) if found is not None else None
