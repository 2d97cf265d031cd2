"""Fixtures of the HL7 v3 tests: a platform without the EMPI, its rejects store, a deterministic service."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.exchange.hl7v3.service import V3Service
from rhip.exchange.rejects import RejectStore

from .helpers import FakeIntake, FixedClock, counter_uuids


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, empty SQLite file, copied for each test (migrating once is most of a platform's setup)."""
    path = tmp_path_factory.mktemp("v3-template") / "v3.db"
    db = database(Settings(database_url=f"sqlite:///{path}", log_format="text"))  # type: ignore[arg-type]
    upgrade(db.engine)
    db.dispose()
    return path


@pytest.fixture
def v3_platform(tmp_path: Path, migrated_template: Path) -> Iterator[Platform]:
    """A platform without the master patient index on a fresh SQLite file (fast; for the v3 mapping)."""
    shutil.copyfile(migrated_template, tmp_path / "v3.db")
    settings = Settings(database_url=f"sqlite:///{tmp_path}/v3.db", log_format="text")  # type: ignore[arg-type]
    plat = build_platform(settings, empi=False)
    try:
        yield plat
    finally:
        plat.close()


@pytest.fixture
def rejects(v3_platform: Platform) -> RejectStore:
    """The rejects store of the v3 platform."""
    return RejectStore(v3_platform.db)


@pytest.fixture
def intake() -> FakeIntake:
    """The in-memory document registry."""
    return FakeIntake()


@pytest.fixture
def service(v3_platform: Platform, rejects: RejectStore, intake: FakeIntake) -> V3Service:
    """The v3 service on the platform, with a fixed clock and counted ids."""
    return V3Service(
        v3_platform.fhir, rejects=rejects, documents=intake, clock=FixedClock(), new_uuid=counter_uuids()
    )
