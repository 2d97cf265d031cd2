"""AuditTrail: changes are recorded in their transaction, accesses are buffered and written by a background
thread (every flush_ms, or at once when a batch waits), kept and retried when writing fails, and written
by the callers themselves once too many wait."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest
from sqlalchemy import text

from rhip.core.errors import StorageUnavailable
from rhip.db.engine import Database
from rhip.fhir.repository import FhirRepository
from rhip.security.audit import repository
from rhip.security.audit.balp import unpack_event
from rhip.security.audit.batches import new_entry_id
from rhip.security.audit.trail import AuditConfig, AuditTrail

from .support import clinician, system


def logged(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM audit_log")).scalar_one())


def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def read(trail: AuditTrail, patient: str = "p1") -> None:
    trail.accessed(
        clinician(), action="R", subtype="read", resources=[("Patient", patient, 1)], patients=[patient]
    )


@pytest.fixture
def make(db: Database) -> Iterator[Callable[..., AuditTrail]]:
    made: list[AuditTrail] = []

    def build(**config: Any) -> AuditTrail:
        trail = AuditTrail(db, AuditConfig(**config))
        made.append(trail)
        return trail

    yield build
    for trail in made:
        trail.close()


class FakeTx:
    """A transaction that keeps what is recorded in it."""

    def __init__(self) -> None:
        self.entries: list[Mapping[str, Any]] = []

    def record(self, entry: Mapping[str, Any]) -> None:
        self.entries.append(entry)


def test_a_change_is_recorded_in_its_transaction(make: Callable[..., AuditTrail], db: Database) -> None:
    trail = make(algorithm="sha256")
    tx = FakeTx()
    trail.changed(
        cast(FhirRepository, tx),
        system(),
        action="C",
        subtype="create",
        resources=[("Observation", "o1", 1)],
        patients=["p1"],
    )
    (entry,) = tx.entries
    assert (entry["action"], entry["subtype"], entry["subject"], entry["algorithm"]) == (
        "C",
        "create",
        "client:lis-4502",
        "sha256",
    )
    assert entry["patients"] == ["p1"] and entry["entities"] == ["Observation/o1/_history/1"]
    assert orjson.loads(unpack_event(entry["event"]))["id"] == entry["id"]
    assert trail.pending == 0 and logged(db) == 0


def test_accesses_wait_in_memory_until_flushed(make: Callable[..., AuditTrail], db: Database) -> None:
    trail = make(flush_ms=60_000)
    for n in range(3):
        read(trail, f"p{n}")
    assert trail.pending == 3 and logged(db) == 0
    trail.flush()
    assert trail.pending == 0 and logged(db) == 3
    assert trail.verify().ok


def test_the_background_thread_writes_every_flush_ms(make: Callable[..., AuditTrail], db: Database) -> None:
    trail = make(flush_ms=20)
    read(trail)
    wait_for(lambda: logged(db) == 1)


def test_a_full_batch_is_written_at_once(make: Callable[..., AuditTrail], db: Database) -> None:
    trail = make(flush_ms=60_000, batch=5)
    for n in range(5):
        read(trail, f"p{n}")
    wait_for(lambda: logged(db) == 5)


def test_close_writes_what_is_left_and_stops_the_thread(db: Database) -> None:
    trail = AuditTrail(db, AuditConfig(flush_ms=60_000))
    read(trail)
    thread = trail._thread
    trail.close()
    assert logged(db) == 1
    assert thread is not None and not thread.is_alive()


def test_after_close_accesses_are_written_at_once(db: Database) -> None:
    trail = AuditTrail(db, AuditConfig(flush_ms=60_000))
    trail.close()
    read(trail)
    assert logged(db) == 1 and trail.pending == 0


def test_entries_keep_their_order_across_batches(make: Callable[..., AuditTrail], db: Database) -> None:
    trail = make(flush_ms=60_000, batch=4)
    for n in range(10):
        read(trail, f"p{n}")
    trail.flush()
    with db.read() as conn:
        patients = [r[0] for r in conn.execute(text("SELECT patients FROM audit_log ORDER BY seq"))]
    assert patients == [f"p{n}" for n in range(10)]


def test_accesses_from_many_threads_all_reach_the_chain(
    make: Callable[..., AuditTrail], db: Database
) -> None:
    trail = make(flush_ms=5, batch=16)

    def reader(k: int) -> None:
        for n in range(40):
            read(trail, f"p{k}-{n}")

    threads = [threading.Thread(target=reader, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    trail.flush()
    assert logged(db) == 320
    assert trail.verify().ok


def test_a_failed_write_keeps_the_entries_for_the_next_one(
    make: Callable[..., AuditTrail], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    trail = make(flush_ms=60_000)
    real = repository.append_entries
    failures = [StorageUnavailable("database unavailable")]

    def flaky(database: Database, rows: Any, **kw: Any) -> list[int]:
        if failures:
            raise failures.pop()
        return real(database, rows, **kw)

    monkeypatch.setattr("rhip.security.audit.batches.append_entries", flaky)
    read(trail, "a")
    read(trail, "b")
    with pytest.raises(StorageUnavailable):
        trail.flush()
    assert trail.pending == 2 and logged(db) == 0
    read(trail, "c")
    trail.flush()
    with db.read() as conn:
        assert [r[0] for r in conn.execute(text("SELECT patients FROM audit_log ORDER BY seq"))] == [
            "a",
            "b",
            "c",
        ]


def test_the_background_thread_retries_after_a_failure(
    make: Callable[..., AuditTrail], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = repository.append_entries
    failures = [StorageUnavailable("down")]

    def flaky(database: Database, rows: Any, **kw: Any) -> list[int]:
        if failures:
            raise failures.pop()
        return real(database, rows, **kw)

    monkeypatch.setattr("rhip.security.audit.batches.append_entries", flaky)
    trail = make(flush_ms=10)
    read(trail)
    wait_for(lambda: logged(db) == 1)
    assert not failures


def test_when_too_many_wait_the_caller_writes_and_fails_with_the_database(
    make: Callable[..., AuditTrail], db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(database: Database, rows: Any, **kw: Any) -> list[int]:
        raise StorageUnavailable("database unavailable")

    monkeypatch.setattr("rhip.security.audit.batches.append_entries", down)
    trail = make(flush_ms=60_000, max_pending=3)
    read(trail)
    read(trail)
    with pytest.raises(StorageUnavailable):
        read(trail)  # an access that cannot be recorded is not served
    assert trail.pending == 3


def test_entries_carry_the_clock_time(db: Database) -> None:
    class Fixed:
        def now(self) -> datetime:
            return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    trail = AuditTrail(db, AuditConfig(flush_ms=60_000), clock=Fixed())
    try:
        read(trail)
        trail.flush()
    finally:
        trail.close()
    with db.read() as conn:
        event = conn.execute(text("SELECT event FROM audit_log")).scalar_one()
    assert orjson.loads(unpack_event(event))["recorded"] == "2026-01-02T03:04:05.000Z"


def test_entry_ids_are_uuid7_in_time_order() -> None:
    ids = [new_entry_id(1_760_000_000_000_000 + n * 1000) for n in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50  # appended at the end of the id index
    parsed = uuid.UUID(ids[0])
    assert str(parsed) == ids[0] and parsed.version == 7 and parsed.variant == uuid.RFC_4122
    assert int(ids[0].replace("-", "")[:12], 16) == 1_760_000_000_000
    same_ms = {new_entry_id(1_760_000_000_000_000) for _ in range(1000)}
    assert len(same_ms) == 1000
