"""Engines for the embedded SQLite default and PostgreSQL, with the transaction discipline rhip needs.

SQLite: WAL journal, a busy timeout, and ``BEGIN IMMEDIATE`` for write transactions so that two writers
never deadlock upgrading a read lock (the pysqlite driver's own transaction handling is turned off).
PostgreSQL: psycopg 3 with a connection pool; write transactions lock the rows they change.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from rhip.core.errors import StorageUnavailable

WRITE_OPTION = "rhip_write"


@dataclass(frozen=True)
class DatabaseConfig:
    """What the database layer needs to know; built by bootstrap from the settings tree."""

    url: str
    sqlite_synchronous: str = "FULL"  # FULL: a commit survives power loss; NORMAL is faster, still crash-safe
    sqlite_cache_mb: int = 64
    sqlite_busy_timeout_ms: int = 30_000
    pool_size: int = 8
    echo: bool = False


def _sqlite_engine(config: DatabaseConfig) -> Engine:
    url = make_url(config.url)
    if url.database and url.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(url.database)) or ".", exist_ok=True)
    engine = create_engine(
        url,
        echo=config.echo,
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": config.sqlite_busy_timeout_ms / 1000},
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
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _postgres_engine(config: DatabaseConfig) -> Engine:
    return create_engine(
        config.url,
        echo=config.echo,
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
    """An engine plus the two transaction shapes the platform uses: read and write."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.backend = engine.dialect.name  # "sqlite" | "postgresql"

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (a consistent snapshot on both backends)."""
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StorageUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction; on SQLite it holds the write lock from the start."""
        try:
            with self.engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
                yield conn
        except OperationalError as exc:
            raise StorageUnavailable(f"database unavailable: {type(exc.orig).__name__}") from exc

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()
