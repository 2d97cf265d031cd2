"""The one place where SQLite and PostgreSQL differ: id allocation, bulk inserts, locks.

Bulk inserts go straight to the driver's ``executemany`` with positional rows: on the ingest path the
per-row cost of building dictionaries for SQLAlchemy's parameter processing is larger than the insert
itself. Statements are still generated from the SQLAlchemy ``Table`` objects, once per table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.exc import DBAPIError


@cache
def _insert_sql(table: Table, dialect_name: str, columns: tuple[str, ...], skip_duplicates: bool) -> str:
    placeholder = "?" if dialect_name == "sqlite" else "%s"
    cols = ", ".join(columns)
    marks = ", ".join([placeholder] * len(columns))
    if not skip_duplicates:
        return f"INSERT INTO {table.name} ({cols}) VALUES ({marks})"
    if dialect_name == "sqlite":
        return f"INSERT OR IGNORE INTO {table.name} ({cols}) VALUES ({marks})"
    return f"INSERT INTO {table.name} ({cols}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def insert_rows(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    skip_duplicates: bool = False,
) -> None:
    """Insert many positional rows into ``table`` through the driver's executemany.

    ``skip_duplicates`` drops rows whose primary key exists already (index rows keyed by 64-bit hashes).
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) >= COPY_THRESHOLD:
        _copy_rows(conn, table, columns, rows, skip_duplicates)
        return
    sql = _insert_sql(table, conn.dialect.name, columns, skip_duplicates)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with driver_errors(conn, sql):
            cursor.executemany(sql, rows)
    finally:
        cursor.close()


COPY_THRESHOLD = 8


def _copy_rows(
    conn: Connection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    skip_duplicates: bool,
) -> None:
    """PostgreSQL's COPY: several times faster than a statement per row for a Bundle's rows.

    COPY cannot skip conflicting rows, so rows that may duplicate a key go through a temporary table.
    """
    cols = ", ".join(columns)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        target = table.name
        if skip_duplicates:
            target = f"tmp_{table.name}"
            with driver_errors(conn, "CREATE TEMP TABLE"):
                cursor.execute(
                    f"CREATE TEMP TABLE IF NOT EXISTS {target} (LIKE {table.name} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                )
        statement = f"COPY {target} ({cols}) FROM STDIN"
        with driver_errors(conn, statement), cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        if skip_duplicates:
            sql = f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {target} ON CONFLICT DO NOTHING"
            with driver_errors(conn, sql):
                cursor.execute(sql)
                cursor.execute(f"DELETE FROM {target}")
    finally:
        cursor.close()


def delete_by_keys(conn: Connection, table: Table, column: str, keys: Sequence[int]) -> None:
    """Delete every row of ``table`` whose ``column`` is one of ``keys``."""
    if not keys:
        return
    placeholder = "?" if conn.dialect.name == "sqlite" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ", ".join([placeholder] * len(chunk))
            sql = f"DELETE FROM {table.name} WHERE {column} IN ({marks})"
            with driver_errors(conn, sql):
                cursor.execute(sql, list(chunk))
    finally:
        cursor.close()


def allocate_ids(conn: Connection, table: Table, column: str, sequence: str, count: int) -> list[int]:
    """Reserve ``count`` new keys for ``table.column``.

    PostgreSQL draws them from a sequence. SQLite has no sequences, but write transactions hold the
    database's single write lock from their first statement (``BEGIN IMMEDIATE``), so max+1 is safe.
    """
    if count <= 0:
        return []
    if conn.dialect.name == "postgresql":
        result = conn.execute(text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)"), {"n": count})
        return [int(r[0]) for r in result]
    current = conn.exec_driver_sql(f"SELECT coalesce(max({column}), 0) FROM {table.name}").scalar_one()
    start = int(current) + 1
    return list(range(start, start + count))


def lock_key(conn: Connection, key: int) -> None:
    """Serialise transactions that use the same 64-bit key (conditional creates) until commit.

    SQLite needs nothing: its write transactions are already serialised.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})


def for_update(conn: Connection) -> str:
    """The row-lock suffix for a SELECT inside a write transaction."""
    return " FOR UPDATE" if conn.dialect.name == "postgresql" else ""


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run a statement written with ``{m}`` placeholders once per row, through the driver."""
    if not rows:
        return
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        with driver_errors(conn, sql):
            cursor.executemany(sql.format(m=mark), rows)
    finally:
        cursor.close()


@contextmanager
def driver_errors(conn: Connection, statement: str) -> Iterator[None]:
    """Raise the driver's errors as SQLAlchemy's (IntegrityError, DataError …), as ``conn.execute`` would.

    The bulk paths here use the driver cursor directly; callers catch SQLAlchemy's exception classes.
    """
    try:
        yield
    except conn.dialect.loaded_dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, conn.dialect.loaded_dbapi.Error) from exc
