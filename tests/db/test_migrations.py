"""Alembic migrations: an empty database reaches head, the result equals the SQLAlchemy metadata, and the
revisions go down and up again, on SQLite and (with RHIP_TEST_DATABASE_URL) PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, inspect, text

import rhip.db.audit
import rhip.db.outbox
import rhip.empi.tables
import rhip.exchange.rejects.tables
import rhip.quality.tables
import rhip.security.identity.tables
import rhip.store.tables
from rhip.db import dialect
from rhip.db.metadata import metadata
from rhip.db.migrate import alembic_config, current_revision, head_revision, upgrade

SEQUENCES = {"resource_pid_seq", "resource_version_vid_seq", "outbox_id_seq"}
TABLES = {
    "resource",
    "resource_version",
    "idx_string",
    "idx_token",
    "idx_date",
    "idx_number",
    "idx_quantity",
    "idx_reference",
    "idx_uri",
    "search_cache",
    "outbox",
    "outbox_cursor",
    "empi_record",
    "empi_block",
    "empi_master",
    "empi_no_match",
    "empi_review",
    "empi_history",
    "empi_model",
    "exchange_reject",
    "security_user",
    "security_client",
    "security_signing_key",
    "security_refresh_token",
    "security_revoked_token",
    "security_used_assertion",
    "audit_log",
    "audit_patient",
    "audit_head",
    "quality_scored",
    "quality_daily",
    "quality_arrivals",
    "quality_example",
}


def downgrade(engine: Engine, revision: str = "base") -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def differences(engine: Engine, target: MetaData = metadata) -> list[Any]:
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, target))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def sequences(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"))
        return {r[0] for r in rows}


def test_metadata_holds_the_store_and_outbox_tables() -> None:
    assert rhip.store.tables.resource.metadata is metadata
    assert rhip.db.outbox.outbox.metadata is metadata
    assert set(metadata.tables) == TABLES


def test_upgrade_of_an_empty_database_reaches_head(engine: Engine) -> None:
    head = head_revision()
    assert head is not None
    assert current_revision(engine) is None
    assert tables(engine) == set()
    assert upgrade(engine) == head
    assert current_revision(engine) == head
    assert tables(engine) == TABLES
    # Upgrading a current database changes nothing.
    assert upgrade(engine) == head
    assert differences(engine) == []


def test_migrated_schema_matches_the_metadata(engine: Engine) -> None:
    upgrade(engine)
    assert differences(engine) == []


def test_the_comparison_sees_a_difference(engine: Engine) -> None:
    """The check above can fail: a column the migrations do not create is reported."""
    upgrade(engine)
    drifted = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["resource"].append_column(Column("not_migrated", Integer, nullable=True))
    found = differences(engine, drifted)
    assert [d[0] for d in found] == ["add_column"]
    assert found[0][3].name == "not_migrated"


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    head = upgrade(engine)
    downgrade(engine)
    assert current_revision(engine) is None
    assert tables(engine) == set()
    if engine.dialect.name == "postgresql":
        assert sequences(engine) & SEQUENCES == set()
    assert upgrade(engine) == head
    assert tables(engine) == TABLES
    assert differences(engine) == []
    if engine.dialect.name == "postgresql":
        assert sequences(engine) >= SEQUENCES


def test_postgresql_key_sequences(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("sequences exist on PostgreSQL only (SQLite allocates max+1 under its write lock)")
    upgrade(engine)
    assert sequences(engine) >= SEQUENCES
    with engine.begin() as conn:
        first = dialect.allocate_ids(conn, rhip.store.tables.resource, "pid", "resource_pid_seq", 3)
        second = dialect.allocate_ids(conn, rhip.store.tables.resource, "pid", "resource_pid_seq", 2)
    assert len(set(first + second)) == 5
    assert min(second) > max(first)


def test_postgresql_prefix_columns_compare_by_code_point(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("collations are a PostgreSQL matter")
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT table_name, column_name, collation_name FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND collation_name IS NOT NULL"
            )
        ).all()
    assert {(r[0], r[1], r[2]) for r in rows} == {
        ("idx_string", "value_norm", "C"),
        ("idx_token", "code", "C"),
        ("idx_uri", "uri", "C"),
    }


# Tables whose rows are found by their whole primary key: clustered by it (WITHOUT ROWID).
CLUSTERED = {"empi_block", "audit_patient"}


def test_sqlite_index_tables_are_clustered_by_resource(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("WITHOUT ROWID is SQLite's")
    upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'table'")).all()
    ddl = {r[0]: r[1] for r in rows}
    for name in TABLES:
        assert ("WITHOUT ROWID" in ddl[name]) == (name.startswith("idx_") or name in CLUSTERED), name
