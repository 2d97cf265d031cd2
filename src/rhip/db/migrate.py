"""Schema migrations: ``rhip db upgrade`` runs Alembic to the newest revision.

Checking the schema (every server process does it at start and ``/readyz`` on every probe) needs no
Alembic: the current revision is one row of ``alembic_version`` and the head is read from the revision
files' headers. Importing Alembic costs each process about 11 MB, so it is imported only to migrate.
``tests/db/test_migrations.py`` checks that both answers agree with Alembic's own.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING

from sqlalchemy import Engine, MetaData, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

VERSION_TABLE = "alembic_version"
# `revision = "0002"`, also with the annotations of Alembic's newer template (`revision: str = "0002"`).
_HEADER = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*$", re.MULTILINE)


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


def head_revision(versions: Traversable | None = None) -> str | None:
    """The newest revision the installed code knows: the one no other revision names as its parent.

    ``versions``: the folder of revision scripts (the packaged one by default).
    """
    if versions is None:
        return _packaged_head()
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in versions.iterdir():
        if not script.name.endswith(".py"):
            continue
        header = dict(_HEADER.findall(script.read_text(encoding="utf-8")))
        revisions.update(_names(header.get("revision")))
        parents.update(_names(header.get("down_revision")))
    heads = revisions - parents
    if len(heads) > 1:
        raise RuntimeError(f"the migrations have several heads: {sorted(heads)}")
    return heads.pop() if heads else None


@cache
def _packaged_head() -> str | None:
    # Read once per process: /readyz asks on every probe, and installed scripts do not change.
    return head_revision(resources.files("rhip.db").joinpath("migrations", "versions"))


def _names(source: str | None) -> tuple[str, ...]:
    """The revision names of a header's value: a string, None, or (merge revisions) a tuple of strings."""
    if source is None:
        return ()
    value = ast.literal_eval(source)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)
