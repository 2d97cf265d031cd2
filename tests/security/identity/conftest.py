"""Fixtures: an identity service over a migrated SQLite database (copied from one migrated template)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import upgrade
from rhip.security.identity.service import IdentityService

from .support import Clock, identity_config


def open_database(url: str) -> Database:
    """A Database on ``url``."""
    return Database(build_engine(DatabaseConfig(url=url, sqlite_synchronous="NORMAL")))


@pytest.fixture(scope="session")
def identity_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once."""
    folder = tmp_path_factory.mktemp("identity-template")
    db = open_database(f"sqlite:///{folder}/rhip.db")
    upgrade(db.engine)
    db.engine.dispose()
    db.dispose()
    return folder / "rhip.db"


@pytest.fixture
def db(identity_template: Path, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty SQLite database of this test's own."""
    shutil.copyfile(identity_template, tmp_path / "rhip.db")
    database = open_database(f"sqlite:///{tmp_path}/rhip.db")
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def clock() -> Clock:
    """The clock of the identity service."""
    return Clock()


@pytest.fixture
def identity(db: Database, clock: Clock, tmp_path: Path) -> IdentityService:
    """The identity service with its keys under this test's folder."""
    return IdentityService(db, identity_config(tmp_path / "keys"), clock=clock)
