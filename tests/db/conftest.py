"""Fixtures of the database-layer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from rhip.db.engine import DatabaseConfig, build_engine


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test database (empty, not migrated)."""
    eng = build_engine(DatabaseConfig(url=database_url))
    try:
        yield eng
    finally:
        eng.dispose()
