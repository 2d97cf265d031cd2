"""Fixtures of the audit-trail tests: a migrated database, principals, a search parser."""

from __future__ import annotations

from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.fhir.search.params import registry
from rhip.fhir.search.parse import SearchParser


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """An empty, migrated database."""
    database = Database(build_engine(DatabaseConfig(url=database_url)))
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture(scope="session")
def parser() -> SearchParser:
    """The R4 search parser, as the platform builds it."""
    return SearchParser(registry(), ZoneInfo("Asia/Shanghai"), ("http://localhost/fhir",))
