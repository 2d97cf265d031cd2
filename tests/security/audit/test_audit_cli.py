"""``rhip audit verify|search|who-viewed``: verify exits 1 naming each altered, deleted and reordered entry."""

from __future__ import annotations

import pytest
from rich.console import Console
from sqlalchemy import text
from typer.testing import CliRunner

import rhip.cli.audit
from rhip.cli.audit import audit_app
from rhip.db.engine import Database

from .support import add, clinician, resident

T0 = 1_760_000_000_000_000
runner = CliRunner()


@pytest.fixture
def cli_db(db: Database, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Database:
    monkeypatch.setenv("RHIP_DATABASE_URL", database_url)
    monkeypatch.setenv("RHIP_LOG_FORMAT", "text")
    monkeypatch.setattr(rhip.cli.audit, "out", Console(width=250))  # whole table rows, not wrapped ones
    for n in range(8):
        add(db, clinician(f"doc{n % 2}", f"450{n % 2}"), T0 + n * 60_000_000, patients=[f"p{n % 3}"])
    add(db, resident("res1", ("p1",)), T0 + 9 * 60_000_000, patients=["p1"])
    return db


def ids(db: Database) -> dict[int, str]:
    with db.read() as conn:
        return {int(r[0]): r[1] for r in conn.execute(text("SELECT seq, id FROM audit_log"))}


def test_verify_an_intact_log(cli_db: Database) -> None:
    result = runner.invoke(audit_app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 9 entries" in result.stdout
    head = result.stdout.split("head: ")[1].split()[0]
    again = runner.invoke(audit_app, ["verify", "--anchor", head, "--algorithm", "sm3"])
    assert again.exit_code == 0, again.output
    wrong = runner.invoke(audit_app, ["verify", "--anchor", "3:" + "0" * 64])
    assert wrong.exit_code == 1
    assert "entry seq 3: its hash differs from the anchor noted earlier" in wrong.stdout
    assert runner.invoke(audit_app, ["verify", "--anchor", "3:zz"]).exit_code == 2


def test_verify_names_each_altered_deleted_and_reordered_entry(cli_db: Database) -> None:
    known = ids(cli_db)
    with cli_db.write() as conn:
        conn.execute(text("UPDATE audit_log SET event = :e WHERE seq = 2"), {"e": b"{}"})
        conn.execute(text("DELETE FROM audit_log WHERE seq = 4"))
        for old, new in ((6, -1), (7, 6), (-1, 7)):
            conn.execute(text("UPDATE audit_log SET seq = :n WHERE seq = :o"), {"n": new, "o": old})
    result = runner.invoke(audit_app, ["verify"])
    assert result.exit_code == 1
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert f"entry seq 2 (id {known[2]}) altered" in lines
    assert "entry seq 4 deleted" in lines
    assert "entries 6 and 7 reordered" in lines


def test_search_and_who_viewed_print_tables(cli_db: Database) -> None:
    found = runner.invoke(audit_app, ["search", "--patient", "p1", "--user", "user:doc1", "--limit", "5"])
    assert found.exit_code == 0, found.output
    assert "user:doc1" in found.stdout and "user:doc0" not in found.stdout
    timed = runner.invoke(
        audit_app, ["search", "--since", "2025-10-09T08:55:00Z", "--until", "2025-10-09T08:57:30Z"]
    )
    assert timed.exit_code == 0, timed.output
    assert "3 audit entries" in timed.stdout
    assert runner.invoke(audit_app, ["search", "--since", "yesterday"]).exit_code == 2
    viewed = runner.invoke(audit_app, ["who-viewed", "--patient", "p1", "--exclude", "user:res1"])
    assert viewed.exit_code == 0, viewed.output
    assert "3 accesses" in viewed.stdout and "user:res1" not in viewed.stdout
