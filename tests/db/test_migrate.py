"""The schema check without Alembic agrees with Alembic, and server processes do not import it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from rhip.db.migrate import alembic_config, current_revision, head_revision, upgrade


def alembic_current(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def test_head_is_alembics_head() -> None:
    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_head_of_annotated_and_merge_revisions(tmp_path: Path) -> None:
    scripts = {
        "a.py": 'revision = "a"\ndown_revision = None\n',
        "b.py": 'revision: str = "b"\ndown_revision: str | None = "a"\n',
        "c.py": "revision = 'c'\ndown_revision = 'a'\n",
        "m.py": 'revision: str = "m"\ndown_revision: tuple[str, ...] = ("b", "c")\n',
        "README": "not a revision",
    }
    for name, text in scripts.items():
        (tmp_path / name).write_text(text)
    assert head_revision(tmp_path) == "m"
    (tmp_path / "m.py").unlink()
    with pytest.raises(RuntimeError, match="several heads"):
        head_revision(tmp_path)


def test_current_revision_is_alembics_at_every_step(engine: Engine) -> None:
    assert current_revision(engine) is None  # no version table at all
    scripts = ScriptDirectory.from_config(alembic_config())
    for script in reversed(list(scripts.walk_revisions())):  # oldest first
        upgrade(engine, script.revision)
        assert current_revision(engine) == alembic_current(engine) == script.revision
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert current_revision(engine) is None  # the version table is there, empty
    assert alembic_current(engine) is None


def test_checking_the_schema_does_not_import_alembic(database_url: str) -> None:
    code = (
        "import sys\n"
        "from rhip.db.engine import DatabaseConfig, build_engine\n"
        "from rhip.db.migrate import current_revision, head_revision\n"
        f"engine = build_engine(DatabaseConfig(url={database_url!r}))\n"
        "current_revision(engine); head_revision()\n"
        "assert 'alembic' not in sys.modules, 'alembic was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
