"""Fixtures of the SQL store contract tests: the repository, the search parser and SQL peeks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.fhir.repository import FhirRepository
from rhip.fhir.search.parse import SearchParser


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """The platform without the EMPI: these tests count the store's own events and outbox rows."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings, empi=False)
    try:
        yield plat
    finally:
        plat.close()


@pytest.fixture
def repo(platform: Platform) -> FhirRepository:
    """The platform's SqlFhirRepository, through its protocol."""
    return platform.repository


@pytest.fixture
def parser(platform: Platform) -> SearchParser:
    """The platform's search parser."""
    return platform.fhir.interactions.parser


@pytest.fixture
def sql(platform: Platform) -> Callable[..., list[Any]]:
    """Run a read-only SQL statement (named ``:params``) on the test database; returns all rows."""

    def run(statement: str, **params: Any) -> list[Any]:
        with platform.db.read() as conn:
            return list(conn.execute(text(statement), params).all())

    return run
