"""The background WAL checkpointer of SQLite (``rhip.db.checkpoint.WalCheckpointer``)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.db.checkpoint import WalCheckpointer
from rhip.db.engine import WriteLock

PAGE = 4096


class CountingLock:
    """A write lock that counts how it is used (and checks it is released as often as taken)."""

    def __init__(self) -> None:
        self.inner = threading.Lock()
        self.acquired = 0
        self.released = 0

    def acquire(self) -> None:
        self.inner.acquire()
        self.acquired += 1

    def release(self) -> None:
        self.released += 1
        self.inner.release()


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "wal.db")


@pytest.fixture
def writer(path: str) -> Iterator[sqlite3.Connection]:
    """A writer in WAL mode without automatic checkpoints (so only the checkpointer resets the WAL)."""
    conn = sqlite3.connect(path, isolation_level=None)
    assert conn.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA journal_size_limit=0")  # a restarted WAL is truncated by the next write
    conn.execute("PRAGMA synchronous=OFF")  # no fsync per test commit
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def checkpoint_conn(path: str, writer: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """The checkpointer's own connection, opened as its thread opens it."""
    conn = sqlite3.connect(path, timeout=0.1, isolation_level=None, check_same_thread=False)
    try:
        yield conn
    finally:
        conn.close()


def write_pages(writer: sqlite3.Connection, pages: int) -> None:
    for _ in range(pages):
        writer.execute("INSERT INTO t (b) VALUES (randomblob(3000))")


def wal_size(path: str) -> int:
    return os.path.getsize(path + "-wal")


def wal_frames(conn: sqlite3.Connection) -> int:
    frames: int = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
    return frames


def rows(path: str) -> int:
    with sqlite3.connect(path) as conn:
        count: int = conn.execute("SELECT count(*) FROM t").fetchone()[0]
    return count


def test_a_large_wal_is_restarted(
    path: str, writer: sqlite3.Connection, checkpoint_conn: sqlite3.Connection
) -> None:
    lock = CountingLock()
    checkpointer = WalCheckpointer(path, lock, restart_pages=50)
    write_pages(writer, 200)
    before = wal_size(path)
    assert before > 200 * PAGE

    checkpointer.checkpoint(checkpoint_conn)
    assert checkpointer.restarts == 1
    assert (lock.acquired, lock.released) == (1, 1)

    writer.execute("INSERT INTO t (b) VALUES (x'00')")  # the next write starts the WAL from its beginning
    assert wal_size(path) < 4 * PAGE < before
    assert wal_frames(checkpoint_conn) <= 2
    assert rows(path) == 201


def test_a_small_wal_is_copied_but_not_restarted(
    path: str, writer: sqlite3.Connection, checkpoint_conn: sqlite3.Connection
) -> None:
    lock = CountingLock()
    checkpointer = WalCheckpointer(path, lock, restart_pages=1000)
    database_before = os.path.getsize(path)
    write_pages(writer, 30)
    checkpointer.checkpoint(checkpoint_conn)
    assert checkpointer.restarts == 0
    assert lock.acquired == 0  # passive checkpoints run beside writers, without the write lock
    assert os.path.getsize(path) > database_before + 20 * PAGE  # the frames were copied into the database
    assert wal_size(path) > 30 * PAGE  # and the WAL left as it is
    assert rows(path) == 30


def test_no_restart_while_a_reader_uses_the_wal(
    path: str, writer: sqlite3.Connection, checkpoint_conn: sqlite3.Connection
) -> None:
    lock = CountingLock()
    checkpointer = WalCheckpointer(path, lock, restart_pages=50)
    write_pages(writer, 100)
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (100,)
        checkpointer.checkpoint(checkpoint_conn)
        assert checkpointer.restarts == 0
        assert (lock.acquired, lock.released) == (1, 1)  # released although the restart was busy
        write_pages(writer, 1)
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (100,)  # its snapshot is intact
        reader.execute("COMMIT")
    finally:
        reader.close()
    checkpointer.checkpoint(checkpoint_conn)
    assert checkpointer.restarts == 1
    assert rows(path) == 101


def test_the_restart_waits_for_the_write_lock(
    path: str, writer: sqlite3.Connection, checkpoint_conn: sqlite3.Connection
) -> None:
    lock = WriteLock(path)
    checkpointer = WalCheckpointer(path, lock, restart_pages=50)
    write_pages(writer, 100)
    lock.acquire()  # a writer's transaction is under way
    done = threading.Event()

    def run() -> None:
        checkpointer.checkpoint(checkpoint_conn)
        done.set()

    thread = threading.Thread(target=run)
    thread.start()
    assert not done.wait(0.2)
    assert checkpointer.restarts == 0
    lock.release()
    assert done.wait(10)
    thread.join(10)
    assert checkpointer.restarts == 1
    lock.acquire()  # and it gave the lock back
    lock.release()


def test_the_background_thread_restarts_the_wal(path: str, writer: sqlite3.Connection) -> None:
    checkpointer = WalCheckpointer(path, WriteLock(path), restart_pages=50, interval_s=0.01)
    checkpointer.start()
    checkpointer.start()  # idempotent
    try:
        write_pages(writer, 120)
        deadline = time.monotonic() + 20
        while checkpointer.restarts == 0:
            assert time.monotonic() < deadline, "the checkpoint thread never restarted the WAL"
            time.sleep(0.01)
    finally:
        checkpointer.stop()
    assert checkpointer._thread is not None and not checkpointer._thread.is_alive()
    writer.execute("INSERT INTO t (b) VALUES (x'00')")
    assert wal_size(path) < 120 * PAGE
    assert rows(path) == 121
