"""Shared fixtures: databases (SQLite always, PostgreSQL when RHIP_TEST_DATABASE_URL is set) and platforms."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade

# The small synthetic region the exchange and document tests compare against (its FHIR is their ground truth).
# Generated data lives under var/ and is not in git: a fresh checkout (CI) generates it before collection.
SMALL_REGION = Path(__file__).resolve().parents[1] / "var" / "ex-small"
SMALL_REGION_ARGS = ("--people", "300", "--years", "1", "--start", "2025-01-01")

# The other capabilities' suites run without the security layer, which tests/security (and the doors'
# security tests) enable on their own platforms and servers; child processes (`rhip serve`) inherit this.
os.environ.setdefault("RHIP_SECURITY__ENABLED", "false")

PG_URL = os.environ.get("RHIP_TEST_DATABASE_URL")
PG_SKIP = (
    "PostgreSQL tests need RHIP_TEST_DATABASE_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _with_search_path(url: str, schema: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh schema in the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db')}/rhip.db"
        return
    if not PG_URL:
        pytest.skip(PG_SKIP)
    schema = f"rhip_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield _with_search_path(PG_URL, schema)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def make_settings(url: str, **overrides: object) -> Settings:
    """Settings for a test platform on ``url``."""
    return Settings(database_url=url, log_format="text", **overrides)  # type: ignore[arg-type]


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at the test database."""
    return make_settings(database_url)


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """A migrated database with the whole platform wired on it."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings)
    try:
        yield plat
    finally:
        plat.close()


def pytest_configure(config: pytest.Config) -> None:
    """Generate var/ex-small once, in the controlling process, before the modules that use it are collected."""
    # Token signing keys of test platforms go to a temporary folder, never to the checkout's var/keys.
    if "RHIP_SECURITY__KEYS_DIR" not in os.environ:
        import tempfile

        os.environ["RHIP_SECURITY__KEYS_DIR"] = tempfile.mkdtemp(prefix="rhip-test-keys-")
    if hasattr(config, "workerinput") or (SMALL_REGION / "manifest.json").exists():
        return
    command = [sys.executable, "-m", "rhip.cli.main", "synth", "--out", str(SMALL_REGION), *SMALL_REGION_ARGS]
    subprocess.run(command, check=True, capture_output=True, timeout=300)


def pytest_report_header(config: pytest.Config) -> str:
    """Say up front whether the PostgreSQL half of the suite runs."""
    if PG_URL:
        return f"PostgreSQL tests: on ({PG_URL.split('@')[-1]})"
    return f"PostgreSQL tests: skipped — {PG_SKIP}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Repeat at the end how many PostgreSQL tests were skipped and why."""
    skipped = [
        r for r in terminalreporter.stats.get("skipped", []) if PG_SKIP in str(getattr(r, "longrepr", ""))
    ]
    if skipped:
        terminalreporter.write_line(f"{len(skipped)} PostgreSQL tests skipped: {PG_SKIP}")
