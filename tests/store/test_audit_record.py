"""FhirRepository.record: audit entries commit with the transaction's changes (its own connection, the
group committer, the writer process) and vanish with them when it rolls back."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import text

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import ServerSettings, Settings
from rhip.core.errors import Conflict
from rhip.db import audit
from rhip.db.migrate import upgrade
from rhip.store.apply import PreparedWrite
from rhip.store.repository import SqlFhirRepository
from rhip.store.write_service import WriteServer


def patient() -> dict[str, Any]:
    return {"resourceType": "Patient", "gender": "female"}


def entry(label: str, patients: list[str] | None = None) -> dict[str, Any]:
    ident = str(uuid.uuid4())
    return {
        "id": ident,
        "recorded_us": time.time_ns() // 1000,
        "action": "C",
        "subtype": "create",
        "subject": f"user:{label}",
        "patients": patients or [],
        "event": orjson.dumps({"resourceType": "AuditEvent", "id": ident}),
    }


def store_of(platform: Platform) -> SqlFhirRepository:
    store = platform.store if getattr(platform, "store", None) is not None else platform.repository
    assert isinstance(store, SqlFhirRepository)
    return store


def subjects(platform: Platform) -> list[str]:
    with platform.db.read() as conn:
        return [r[0] for r in conn.execute(text("SELECT subject FROM audit_log ORDER BY seq"))]


def intact(platform: Platform) -> bool:
    with platform.db.read() as conn:
        return audit.verify(conn) == []


@pytest.fixture
def migrated(database_url: str) -> Settings:
    settings = Settings(database_url=database_url, log_format="text")
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    return settings


@pytest.fixture
def platform(migrated: Settings) -> Iterator[Platform]:
    plat = build_platform(migrated, empi=False)
    try:
        yield plat
    finally:
        plat.close()


def test_entries_of_a_transaction_of_creates_commit_with_it(platform: Platform) -> None:
    store = store_of(platform)
    with store.transaction() as tx:
        created = tx.create(patient())
        tx.record(entry("a", [created.id]))
        tx.record(entry("b", [created.id]))
    assert subjects(platform) == ["user:a", "user:b"]
    with platform.db.read() as conn:
        assert conn.execute(text("SELECT patient FROM audit_patient")).scalars().all() == [created.id] * 2
    assert intact(platform)


def test_entries_of_a_transaction_that_reads_commit_with_it(platform: Platform) -> None:
    store = store_of(platform)
    first = store.create(patient())
    with store.transaction() as tx:
        tx.record(entry("early"))
        tx.read("Patient", first.id)  # flushes: the unit now holds its connection
        tx.update("Patient", first.id, {**patient(), "gender": "male"})
        tx.record(entry("late"))
    assert subjects(platform) == ["user:early", "user:late"]
    assert intact(platform)


def test_entries_are_appended_once_at_the_end_of_the_unit(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []
    real = audit.append

    def spy(conn: Any, rows: Any, algorithm: str | None = None) -> list[int]:
        calls.append(len(rows))
        return real(conn, rows, algorithm)

    monkeypatch.setattr("rhip.store.apply.append_audit", spy)
    store = store_of(platform)
    first = store.create(patient())
    calls.clear()
    with store.transaction() as tx:
        tx.update("Patient", first.id, patient())
        tx.record(entry("x"))
        tx.read("Patient", first.id)  # a flush in the middle writes the versions, not the entry
        tx.record(entry("y"))
    assert [c for c in calls if c] == [2]


@pytest.mark.parametrize("reads", [False, True])
def test_a_rolled_back_transaction_leaves_no_entry(platform: Platform, reads: bool) -> None:
    store = store_of(platform)
    store.record(entry("before"))
    with pytest.raises(RuntimeError), store.transaction() as tx:
        created = tx.create(patient())
        tx.record(entry("lost"))
        if reads:
            tx.read("Patient", created.id)
        raise RuntimeError("the request failed")
    assert subjects(platform) == ["user:before"]
    store.record(entry("after"))
    assert subjects(platform) == ["user:before", "user:after"]
    assert intact(platform)


def test_record_outside_a_transaction_writes_on_its_own(platform: Platform) -> None:
    store = store_of(platform)
    store.record(entry("alone", ["p9"]))
    assert subjects(platform) == ["user:alone"]


def test_a_malformed_entry_is_refused_at_once(platform: Platform) -> None:
    store = store_of(platform)
    with pytest.raises(ValueError), store.transaction() as tx:
        tx.record({"id": "x"})


def test_a_unit_failing_in_the_group_committer_loses_only_its_entries(platform: Platform) -> None:
    store = store_of(platform)
    store.create(patient(), id="taken")
    barrier = threading.Barrier(8)

    def unit(k: int) -> str:
        barrier.wait()
        try:
            with store.transaction() as tx:
                tx.create(patient(), id="taken" if k == 3 else None)
                tx.record(entry(f"u{k}"))
        except Conflict:
            return "conflict"
        return "ok"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(unit, range(8)))
    assert outcomes.count("conflict") == 1
    assert sorted(subjects(platform)) == sorted(f"user:u{k}" for k in range(8) if k != 3)
    assert intact(platform)


def test_prepared_writes_carry_their_entries_over_the_wire(platform: Platform) -> None:
    store = store_of(platform)
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.create(patient())
        tx.record(entry("wire", ["p1"]))
        prepared = tx.uow.prepare()
        raise RuntimeError("only preparing")
    wire = prepared.to_wire()
    assert orjson.loads(orjson.dumps(wire[3][0][0])) == prepared.audit[0].id
    again = PreparedWrite.from_wire(wire)
    assert again.audit == prepared.audit
    assert isinstance(again.audit[0], audit.AuditRow)


@pytest.fixture
def writer(migrated: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = str(tmp_path_factory.mktemp("w") / "writer.sock")
    db = database(migrated)
    server = WriteServer(db, path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not os.path.exists(path):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        yield path
    finally:
        server.stop()
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as wake:
            wake.connect(path)
        thread.join(10)
        db.dispose()


def test_entries_travel_to_the_writer_process_with_their_changes(migrated: Settings, writer: str) -> None:
    remote = build_platform(
        migrated.model_copy(update={"server": ServerSettings(writer_socket=writer)}), empi=False
    )
    try:
        store = store_of(remote)
        assert store.ctx.writer is not None
        with store.transaction() as tx:
            created = tx.create(patient())
            tx.record(entry("remote", [created.id]))
        store.record(entry("remote-alone"))
        assert subjects(remote) == ["user:remote", "user:remote-alone"]
        assert intact(remote)
    finally:
        remote.close()


def test_the_writer_refuses_a_frame_without_entries(tmp_path: Path) -> None:
    with pytest.raises((TypeError, ValueError)):
        PreparedWrite.from_wire(([], [], {}))  # type: ignore[arg-type]
