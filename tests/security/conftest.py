"""Fixtures of the security tests: a platform with the security layer on, its region and its accounts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade

from .matrix_support import Accounts, Region, build_region, make_accounts, secured_settings

PG_URL = os.environ.get("RHIP_TEST_DATABASE_URL")
PG_SKIP = (
    "PostgreSQL tests need RHIP_TEST_DATABASE_URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def secured(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Platform, Region, Accounts]]:
    """A platform behind the security layer with the matrix region and one token per role."""
    schema = None
    admin = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('secdb')}/rhip.db"
    else:
        if not PG_URL:
            pytest.skip(PG_SKIP)
        schema = f"rhip_sec_{uuid.uuid4().hex[:12]}"
        admin = sqlalchemy.create_engine(PG_URL)
        with admin.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        url = f"{PG_URL}{'&' if '?' in PG_URL else '?'}options={quote(f'-csearch_path={schema}')}"
    keys = Path(tmp_path_factory.mktemp("keys"))
    settings = secured_settings(Settings(database_url=url, log_format="text"), str(keys))
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings)
    try:
        region = build_region(platform)
        accounts = make_accounts(platform, region)
        yield platform, region, accounts
    finally:
        platform.close()
        if admin is not None:
            with admin.begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            admin.dispose()
