"""Engines for the embedded SQLite default and PostgreSQL, with the transaction discipline rhip needs.

SQLite: WAL journal, and ``BEGIN IMMEDIATE`` for write transactions so that two writers never deadlock
upgrading a read lock (the pysqlite driver's own transaction handling is turned off). Write transactions
begin lazily, at their first statement, so that the CPU work of a write (validation, indexing) runs
before the database's single write lock is taken. Writers queue on a lock of their own (a thread lock
plus ``flock`` on ``<db>.lock`` for other processes) instead of SQLite's busy handler, which sleeps in
steps of up to 100 ms and so wastes the lock's idle time.
PostgreSQL: psycopg 3 with a connection pool; write transactions lock the rows they change.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DataError, OperationalError

from rhip.core.errors import InvalidRequest, StorageUnavailable
from rhip.db.checkpoint import WalCheckpointer
from rhip.db.group_commit import GroupCommitter

T = TypeVar("T")

WRITE_OPTION = "rhip_write"
WAL_SIZE_LIMIT = 256 * 1024 * 1024
_CHECKPOINTERS: weakref.WeakKeyDictionary[Engine, WalCheckpointer] = weakref.WeakKeyDictionary()
LOCK_KEY = "rhip_write_lock"


class WriteLock:
    """Serialises SQLite write transactions across threads and processes, waking waiters at once."""

    def __init__(self, path: str | None) -> None:
        self._threads = threading.Lock()
        self._fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600) if path else None

    def acquire(self) -> None:
        """Block until this thread holds the database's write lock."""
        self._threads.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except OSError:
                self._threads.release()
                raise

    def release(self) -> None:
        """Let the next writer in."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._threads.release()


@dataclass(frozen=True)
class DatabaseConfig:
    """What the database layer needs to know; built by bootstrap from the settings tree."""

    url: str
    sqlite_synchronous: str = "FULL"  # FULL: a commit survives power loss; NORMAL is faster, still crash-safe
    sqlite_cache_mb: int = 16
    sqlite_busy_timeout_ms: int = 30_000
    # WAL pages after which the background checkpointer restarts the WAL (rhip.db.checkpoint).
    sqlite_wal_autocheckpoint: int = 10_000
    pool_size: int = 8
    echo: bool = False


def _sqlite_engine(config: DatabaseConfig) -> Engine:
    url = make_url(config.url)
    if url.database and url.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url.database)) or ".", exist_ok=True)
    engine = create_engine(
        url,
        echo=config.echo,
        hide_parameters=True,  # errors and logs never carry SQL parameter values (personal data)
        connect_args={
            "isolation_level": None,
            "check_same_thread": False,
            "timeout": config.sqlite_busy_timeout_ms / 1000,
        },
        pool_size=config.pool_size,
        max_overflow=config.pool_size,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={config.sqlite_synchronous}")
        cur.execute(f"PRAGMA cache_size=-{config.sqlite_cache_mb * 1024}")
        cur.execute(f"PRAGMA busy_timeout={config.sqlite_busy_timeout_ms}")
        cur.execute("PRAGMA temp_store=MEMORY")
        cur.execute("PRAGMA foreign_keys=OFF")
        # Checkpoints run in the background (rhip.db.checkpoint); this is the safety net if they do not.
        cur.execute(f"PRAGMA wal_autocheckpoint={config.sqlite_wal_autocheckpoint * 10}")
        # Keep the WAL file's space between checkpoints rather than shrinking and regrowing it each time.
        cur.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        cur.close()

    path = os.path.abspath(url.database) if url.database and url.database != ":memory:" else None
    lock = WriteLock(path)
    checkpointer = WalCheckpointer(path, lock, config.sqlite_wal_autocheckpoint) if path is not None else None
    if checkpointer is not None:
        _CHECKPOINTERS[engine] = checkpointer

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        if not conn.get_execution_options().get(WRITE_OPTION, False):
            conn.exec_driver_sql("BEGIN")
            return
        lock.acquire()
        conn.info[LOCK_KEY] = lock
        if checkpointer is not None:
            checkpointer.start()  # in every process that writes; idempotent
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except Exception:
            conn.info.pop(LOCK_KEY, None)
            lock.release()
            raise

    return engine


def _postgres_engine(config: DatabaseConfig) -> Engine:
    return create_engine(
        config.url,
        echo=config.echo,
        hide_parameters=True,  # errors and logs never carry SQL parameter values (personal data)
        pool_size=config.pool_size,
        max_overflow=config.pool_size,
        pool_pre_ping=True,
    )


def build_engine(config: DatabaseConfig) -> Engine:
    """Create the engine for ``config.url`` (``sqlite:///…`` or ``postgresql+psycopg://…``)."""
    backend = make_url(config.url).get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(config)
    if backend == "postgresql":
        return _postgres_engine(config)
    raise ValueError(f"unsupported database backend {backend!r}; use sqlite or postgresql")


class Database:
    """An engine plus the transaction shapes the platform uses: read, write and grouped write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name  # "sqlite" | "postgresql"
        self._grouped = GroupCommitter(self.write) if self.backend == "sqlite" else None

    def linger(self, seconds: float, until: int) -> None:
        """Let group commits wait up to ``seconds`` for ``until`` units (the writer process uses this)."""
        if self.backend == "sqlite":
            self._grouped = GroupCommitter(self.write, linger_s=seconds, linger_until=until)

    def run_grouped(self, job: Callable[[Connection], T]) -> T:
        """Run a write job that needs the database only for its writes, committed when this returns.

        On SQLite concurrent jobs share a transaction and its commit (group commit); on PostgreSQL, which
        commits concurrent transactions in parallel, each job runs in its own.
        """
        if self._grouped is None:
            with self.write() as conn:
                return job(conn)
        result: T = self._grouped.run(job)
        return result

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot on both backends)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StorageUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc
        except DataError as exc:
            raise InvalidRequest("A value in the request cannot be compared by the database") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction, begun at its first statement and committed when the block ends."""
        try:
            with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn:
                try:
                    yield conn
                    if conn.in_transaction():
                        conn.commit()
                except BaseException:
                    if conn.in_transaction():
                        conn.rollback()
                    raise
                finally:
                    held = conn.info.pop(LOCK_KEY, None)
                    if held is not None:
                        held.release()
        except OperationalError as exc:
            raise StorageUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc
        except DataError as exc:
            raise InvalidRequest("A value in the request cannot be stored by the database") from exc

    def analyze(self) -> str:
        """Refresh the planner's statistics after a bulk load (PostgreSQL: VACUUM ANALYZE); returns what was done.

        PostgreSQL plans from statistics, and its index-only scans need the visibility map that VACUUM keeps;
        autovacuum gets there eventually, this gets there now. rhip's SQLite queries are written not to depend
        on statistics, so there it only folds the WAL into the database file.
        """
        if self.backend == "postgresql":
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            return "VACUUM ANALYZE"
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return "wal_checkpoint(TRUNCATE)"

    def dispose(self) -> None:
        """Stop the checkpoint thread and close every pooled connection."""
        checkpointer = _CHECKPOINTERS.pop(self.engine, None)
        if checkpointer is not None:
            checkpointer.stop()
        self.engine.dispose()
