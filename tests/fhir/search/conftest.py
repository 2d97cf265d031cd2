"""Module-scoped databases and platforms for the search tests, so a data set is loaded once per module.

Equivalent to ``database_url`` / ``platform`` of ``tests/conftest.py`` (SQLite always, PostgreSQL when
RHIP_TEST_DATABASE_URL is set, in a schema of its own that is dropped afterwards), but shared by the tests
of one module. The platform knows its public base URL, so absolute references on this server are local.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pytest
import sqlalchemy

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade

BASE_URL = "http://localhost/fhir"
PG_URL = os.environ.get("RHIP_TEST_DATABASE_URL")
PG_SKIP = (
    "PostgreSQL tests need RHIP_TEST_DATABASE_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def module_database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database shared by one test module."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('searchdb')}/rhip.db"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"rhip_search_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture(scope="module")
def module_platform(module_database_url: str) -> Iterator[Platform]:
    """A migrated database with the whole platform wired on it, for one test module."""
    settings = Settings(
        database_url=module_database_url,
        log_format="text",
        server={"public_base_url": BASE_URL},  # type: ignore[arg-type]
    )
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings)
    try:
        yield plat
    finally:
        plat.close()
