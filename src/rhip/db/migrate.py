"""Schema migrations: ``rhip db upgrade`` runs Alembic to the newest revision.

Checking the schema (every server process does it at start and ``/readyz`` on every probe) needs no
Alembic: the current revision is one row of ``alembic_version`` and the head is read from the revision
files' headers. Importing Alembic costs each process about 11 MB, so it is imported only to migrate.
``tests/db/test_migrations.py`` checks that both answers agree with Alembic's own.
"""

from __future__ import annotations

import re
from importlib import resources
from typing import TYPE_CHECKING

from sqlalchemy import Engine, MetaData, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"
_HEADER = re.compile(r"^(revision|down_revision)\s*=\s*(.+?)\s*$", re.MULTILINE)


def alembic_config(metadata: MetaData | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migration scripts."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("rhip.db").joinpath("migrations")))
    config.attributes["target_metadata"] = metadata
    return config


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Migrate the database to ``revision`` (the newest by default); returns the revision reached."""
    from alembic import command

    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    return current_revision(engine)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table(VERSION_TABLE):
            return None
        return conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def head_revision() -> str | None:
    """The newest revision the installed code knows: the one no other revision names as its parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in resources.files("rhip.db").joinpath("migrations", "versions").iterdir():
        if not script.name.endswith(".py"):
            continue
        header = dict(_HEADER.findall(script.read_text(encoding="utf-8")))
        revision = _literal(header.get("revision"))
        if revision:
            revisions.add(revision)
        parent = _literal(header.get("down_revision"))
        if parent:
            parents.add(parent)
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {sorted(heads)}")
    return heads.pop() if heads else None


def _literal(source: str | None) -> str | None:
    # Revision headers are plain string literals or None (Alembic's template writes them so).
    if source is None or source == "None":
        return None
    return source.strip("\"'")
