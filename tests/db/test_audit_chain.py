"""The audit log's hash chain: appending assigns positions and links under a lock, and verify names every
altered, deleted, reordered, inserted or appended-behind-its-back entry (SQLite, and PostgreSQL with
RHIP_TEST_DATABASE_URL)."""

from __future__ import annotations

import hashlib
import itertools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from sqlalchemy import Connection, Engine, text

from rhip.db import audit
from rhip.db.audit import GENESIS, AuditRow, Problem, audit_row, chain_hash
from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(build_engine(DatabaseConfig(url=database_url)))
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def engine(db: Database) -> Engine:
    return db.engine


def entry(n: int, patients: str = "p1", algorithm: str = "sm3", **extra: Any) -> AuditRow:
    ident = str(uuid.uuid4())
    event = {"resourceType": "AuditEvent", "id": ident, "n": n}
    values = {
        "id": ident,
        "recorded_us": 1_750_000_000_000_000 + n,
        "action": "R",
        "outcome": "0",
        "subtype": "read",
        "subject": f"user:u{n % 3}",
        "role": "clinician",
        "institution": "4501",
        "patients": patients,
        "entities": [f"Observation/o{n}/_history/1"],
        "event": orjson.dumps(event),
        **extra,
    }
    return audit_row(values, algorithm)


def fill(db: Database, count: int, per_tx: int = 5, **kw: Any) -> list[int]:
    seqs: list[int] = []
    for start in range(0, count, per_tx):
        with db.write() as conn:
            seqs += audit.append(conn, [entry(n, **kw) for n in range(start, min(count, start + per_tx))])
    return seqs


def problems(db: Database, algorithm: str | None = None) -> list[Problem]:
    with db.read() as conn:
        return audit.verify(conn, algorithm, chunk=7)


def kinds(found: list[Problem]) -> list[tuple[str, int]]:
    return [(p.kind, p.seq) for p in found]


def run(db: Database, sql: str, **params: Any) -> None:
    with db.write() as conn:
        conn.execute(text(sql), params)


def row_id(db: Database, seq: int) -> str:
    with db.read() as conn:
        return str(conn.execute(text("SELECT id FROM audit_log WHERE seq = :s"), {"s": seq}).scalar_one())


def swap(db: Database, a: int, b: int) -> None:
    """Swap two entries' places (seq is the primary key: through a free number)."""
    with db.write() as conn:
        for old, new in ((a, -1), (b, a), (-1, b)):
            conn.execute(text("UPDATE audit_log SET seq = :n WHERE seq = :o"), {"n": new, "o": old})


# -- appending -----------------------------------------------------------------------------------
def test_append_assigns_positions_and_links_each_entry_to_the_one_before(db: Database) -> None:
    assert fill(db, 12) == list(range(1, 13))
    with db.read() as conn:
        rows = conn.execute(text("SELECT seq, prev_hash, hash, algorithm FROM audit_log ORDER BY seq")).all()
        head = audit.head(conn)
    assert rows[0].prev_hash == GENESIS
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert {r.algorithm for r in rows} == {"sm3"}
    assert head == (12, rows[-1].hash)
    assert problems(db) == []


def test_each_patient_named_is_indexed(db: Database) -> None:
    fill(db, 3, patients="a b")
    with db.read() as conn:
        rows = conn.execute(text("SELECT patient, seq FROM audit_patient ORDER BY seq, patient")).all()
    assert [tuple(r) for r in rows] == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]


def test_the_hash_is_sm3_or_sha256_of_the_previous_hash_and_the_canonical_content() -> None:
    row = entry(1)
    expected = hashlib.new("sm3", bytes.fromhex(GENESIS) + audit.canonical(row)).hexdigest()
    assert chain_hash("sm3", GENESIS, row) == expected
    assert (
        chain_hash("sha256", GENESIS, row)
        == hashlib.sha256(bytes.fromhex(GENESIS) + audit.canonical(row)).hexdigest()
    )
    # None and "" encode differently, so a column cannot be emptied unnoticed.
    assert audit.canonical(row._replace(role=None)) != audit.canonical(row._replace(role=""))
    with pytest.raises(ValueError):
        chain_hash("md5", GENESIS, row)


def test_algorithms_may_change_along_the_chain(db: Database) -> None:
    fill(db, 4, algorithm="sha256")
    fill(db, 4)
    assert problems(db) == []
    required = problems(db, "sm3")
    assert kinds(required) == [("algorithm", s) for s in (1, 2, 3, 4)]


def test_a_rolled_back_append_leaves_neither_entries_nor_head(db: Database) -> None:
    fill(db, 2)
    with pytest.raises(RuntimeError), db.write() as conn:
        audit.append(conn, [entry(9)])
        raise RuntimeError("the change failed")
    with db.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log")).scalar() == 2
        assert audit.head(conn) is not None and audit.head(conn)[0] == 2  # type: ignore[index]
    assert fill(db, 1) == [3]
    assert problems(db) == []


def test_concurrent_appenders_are_serialised(db: Database) -> None:
    errors: list[BaseException] = []

    def appender(k: int) -> None:
        try:
            for i in range(10):
                with db.write() as conn:
                    audit.append(conn, [entry(k * 100 + i), entry(k * 100 + i + 50)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as conn:
        seqs = [r[0] for r in conn.execute(text("SELECT seq FROM audit_log ORDER BY seq"))]
    assert seqs == list(range(1, 121))
    assert problems(db) == []


def test_malformed_entries_are_refused() -> None:
    good = {"id": "x", "recorded_us": 1, "action": "R", "subject": "user:a", "event": b"{}"}
    assert audit_row(good).patients == ""
    for bad in (
        {"action": "X"},
        {"outcome": "3"},
        {"event": b""},
        {"subject": ""},
        {"recorded_us": "1"},
        {"patients": ["a b"]},
        {"algorithm": "md5"},
    ):
        with pytest.raises(ValueError):
            audit_row({**good, **bad})


# -- tampering -----------------------------------------------------------------------------------
def test_an_altered_event_is_named(db: Database) -> None:
    fill(db, 10)
    run(db, "UPDATE audit_log SET event = :e WHERE seq = 4", e=b'{"resourceType":"AuditEvent"}')
    found = problems(db)
    assert kinds(found) == [("altered", 4)]
    assert found[0].id == row_id(db, 4)


def test_any_altered_column_is_named(db: Database) -> None:
    fill(db, 10)
    run(db, "UPDATE audit_log SET subject = 'user:someone-else' WHERE seq = 2")
    run(db, "UPDATE audit_log SET recorded_us = recorded_us + 1 WHERE seq = 5")
    run(db, "UPDATE audit_log SET outcome = '4' WHERE seq = 7")
    assert kinds(problems(db)) == [("altered", 2), ("altered", 5), ("altered", 7)]


def test_a_deleted_entry_is_named(db: Database) -> None:
    fill(db, 10)
    run(db, "DELETE FROM audit_log WHERE seq = 6")
    assert kinds(problems(db)) == [("deleted", 6)]


def test_deleted_runs_first_entries_and_the_tail_are_named(db: Database) -> None:
    fill(db, 20)
    run(db, "DELETE FROM audit_log WHERE seq IN (1, 8, 9, 10, 19, 20)")
    found = problems(db)
    assert [(p.kind, p.seq, p.last) for p in found] == [
        ("deleted", 1, 1),
        ("deleted", 8, 10),
        ("deleted", 19, 20),
    ]


def test_two_swapped_entries_are_named_as_reordered(db: Database) -> None:
    fill(db, 10)
    swap(db, 4, 5)
    found = problems(db)
    assert [(p.kind, p.seq, p.other) for p in found] == [("reordered", 4, 5)]


def test_the_newest_two_swapped_are_named_as_reordered(db: Database) -> None:
    fill(db, 10)
    swap(db, 9, 10)
    assert [(p.kind, p.seq, p.other) for p in problems(db)] == [("reordered", 9, 10)]


def test_an_entry_moved_further_is_named_as_reordered(db: Database) -> None:
    fill(db, 30)
    # Entry 10 moves after entry 17: 11..17 move up by one.
    with db.write() as conn:
        conn.execute(text("UPDATE audit_log SET seq = -10 WHERE seq = 10"))
        for seq in range(11, 18):
            conn.execute(text("UPDATE audit_log SET seq = :n WHERE seq = :o"), {"n": seq - 1, "o": seq})
        conn.execute(text("UPDATE audit_log SET seq = 17 WHERE seq = -10"))
    found = [p for p in problems(db) if p.kind != "index"]
    assert [(p.kind, p.seq, p.other) for p in found] == [("reordered", 10, 17)]


def test_an_entry_rewritten_with_a_fresh_hash_breaks_the_next_link(db: Database) -> None:
    fill(db, 10)
    with db.write() as conn:
        row = conn.execute(text("SELECT * FROM audit_log WHERE seq = 3")).one()
        forged = AuditRow(*[getattr(row, c) for c in audit.CONTENT_COLUMNS])._replace(subject="user:x")
        digest = chain_hash(forged.algorithm, row.prev_hash, forged)
        conn.execute(text("UPDATE audit_log SET subject = 'user:x', hash = :h WHERE seq = 3"), {"h": digest})
    found = problems(db)
    assert [(p.kind, p.seq) for p in found] == [("broken", 4)]


def test_the_newest_entry_rewritten_with_a_fresh_hash_disagrees_with_the_head(db: Database) -> None:
    fill(db, 5)
    with db.write() as conn:
        row = conn.execute(text("SELECT * FROM audit_log WHERE seq = 5")).one()
        forged = AuditRow(*[getattr(row, c) for c in audit.CONTENT_COLUMNS])._replace(outcome="4")
        digest = chain_hash(forged.algorithm, row.prev_hash, forged)
        conn.execute(text("UPDATE audit_log SET outcome = '4', hash = :h WHERE seq = 5"), {"h": digest})
    assert kinds(problems(db)) == [("altered", 5)]


def _forge(conn: Connection, seq: int, prev_hash: str) -> None:
    forged = entry(seq, patients="")
    digest = chain_hash(forged.algorithm, prev_hash, forged)
    columns = ", ".join(audit.LOG_COLUMNS)
    marks = ", ".join(f":{c}" for c in audit.LOG_COLUMNS)
    values = dict(zip(audit.LOG_COLUMNS, (seq, *forged, prev_hash, digest), strict=True))
    conn.execute(text(f"INSERT INTO audit_log ({columns}) VALUES ({marks})"), values)


def test_an_entry_appended_without_the_chain_is_named(db: Database) -> None:
    fill(db, 5)
    with db.write() as conn:
        last = audit.head(conn)
        assert last is not None
        _forge(conn, 6, last[1])
    assert [(p.kind, p.seq, p.last) for p in problems(db)] == [("added", 6, 6)]


def test_an_entry_inserted_in_the_middle_is_named(db: Database) -> None:
    fill(db, 8)
    with db.write() as conn:
        conn.execute(text("UPDATE audit_log SET seq = seq + 100 WHERE seq >= 5"))
        conn.execute(text("UPDATE audit_log SET seq = seq - 99 WHERE seq >= 105"))
        prev = conn.execute(text("SELECT hash FROM audit_log WHERE seq = 4")).scalar_one()
        _forge(conn, 5, prev)
        conn.execute(text("UPDATE audit_head SET seq = 9"))
    found = problems(db)
    assert ("inserted", 6) in kinds(found)


def test_a_deleted_head_record_is_named_and_the_entries_still_checked(db: Database) -> None:
    fill(db, 6)
    run(db, "DELETE FROM audit_head")
    run(db, "UPDATE audit_log SET action = 'C' WHERE seq = 2")
    assert kinds(problems(db)) == [("altered", 2), ("head", 6)]


def test_a_patient_index_that_disagrees_with_its_entry_is_named(db: Database) -> None:
    fill(db, 6)
    run(db, "DELETE FROM audit_patient WHERE seq = 3")
    run(db, "UPDATE audit_patient SET patient = 'other' WHERE seq = 5")
    assert kinds(problems(db)) == [("index", 3), ("index", 5)]


def test_every_kind_of_tampering_at_once(db: Database) -> None:
    fill(db, 40)
    run(db, "UPDATE audit_log SET event = :e WHERE seq = 5", e=b"{}")
    run(db, "DELETE FROM audit_log WHERE seq = 12")
    swap(db, 20, 21)
    run(db, "DELETE FROM audit_log WHERE seq = 40")
    found = [(p.kind, p.seq) for p in problems(db)]
    assert found == [("altered", 5), ("deleted", 12), ("reordered", 20), ("deleted", 40)]
