"""``rhip users``, ``rhip clients`` and ``rhip tokens`` on a migrated SQLite database (in process)."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from rhip.bootstrap.settings import Settings
from rhip.cli.accounts import clients_app, tokens_app, users_app
from rhip.db.engine import Database
from rhip.security.identity.service import IdentityService

from .conftest import open_database
from .support import PASSWORD, ClientKey, identity_config

app = typer.Typer()
app.add_typer(users_app, name="users")
app.add_typer(clients_app, name="clients")
app.add_typer(tokens_app, name="tokens")


@pytest.fixture
def settings(identity_template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    shutil.copyfile(identity_template, tmp_path / "rhip.db")
    settings = Settings(
        database_url=f"sqlite:///{tmp_path}/rhip.db",
        log_format="text",
        security={"keys_dir": str(tmp_path / "keys")},  # type: ignore[arg-type]
        server={"public_base_url": "https://rhip.test/fhir"},  # type: ignore[arg-type]
    )
    monkeypatch.setattr("rhip.cli.main._settings", lambda: settings)
    return settings


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def service(settings: Settings, tmp_path: Path) -> tuple[IdentityService, Database]:
    db = open_database(settings.database_url)
    config = identity_config(
        tmp_path / "keys", issuer="https://rhip.test", audiences=("https://rhip.test/fhir",)
    )
    return IdentityService(db, config), db


def test_users(settings: Settings, tmp_path: Path) -> None:
    code, _, err = run(
        "users", "add", "--username", "mother", "--role", "resident",
        "--patient", "p1", "--patient", "p2", "--password-stdin", "--totp",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run("users", "list", "--json")
    row = orjson.loads(out.strip())
    assert row["username"] == "mother" and row["patients"] == ["p1", "p2"] and row["has_totp"]
    assert "password" not in out and "argon2" not in out
    code, out, _ = run("users", "list")
    assert code == 0 and "mother" in out
    assert run("users", "disable", "mother")[0] == 0
    assert orjson.loads(run("users", "list", "--json")[1])["disabled"] is True
    assert run("users", "enable", "mother")[0] == 0
    assert run("users", "unlock", "mother")[0] == 0
    assert run("users", "reset-password", "mother", "--password-stdin", stdin="another passphrase\n")[0] == 0
    code, _, err = run("users", "disable", "nobody")
    assert code == 1 and "no user" in err
    code, _, err = run(
        "users", "add", "--username", "x", "--role", "system", "--password-stdin", stdin=PASSWORD
    )
    assert code == 1 and "cannot have role" in err
    identity, db = service(settings, tmp_path)
    try:
        form = {"grant_type": "password", "username": "mother", "password": "another passphrase"}
        uri = run("users", "totp", "mother")[1].strip()
        secret = uri.split("secret=")[1].split("&")[0]
        from rhip.security.identity import totp

        answer = identity.token({**form, "totp": totp.code_at(secret, identity.clock())})
        assert identity.authenticate(answer["access_token"]).patients == ("p1", "p2")
    finally:
        db.dispose()


def test_clients_and_tokens(settings: Settings, tmp_path: Path) -> None:
    key = ClientKey("ES256")
    jwks = tmp_path / "his.jwks.json"
    jwks.write_bytes(orjson.dumps(key.jwks()))
    code, _, err = run(
        "clients", "add", "--client-id", "his-1", "--scopes", "system/*.cruds",
        "--institution", "H001", "--jwks", str(jwks),
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run("clients", "list", "--json")
    row = orjson.loads(out.strip())
    assert row["client_id"] == "his-1" and row["jwks"] is True
    assert run("clients", "list")[0] == 0
    code, token, err = run(
        "tokens", "issue", "--client-id", "his-1", "--scopes", "system/Patient.rs", "--minutes", "60"
    )
    assert code == 0, err
    identity, db = service(settings, tmp_path)
    try:
        principal = identity.authenticate(token.strip())
        assert principal.client_id == "his-1" and principal.institution == "H001"
        old_kid = identity.jwks()["keys"][0]["kid"]
        code, _, err = run("tokens", "rotate-key")
        assert code == 0 and "in use" in err
        assert {k["kid"] for k in identity.jwks()["keys"]} >= {old_kid}
        assert len(identity.jwks()["keys"]) == 2
        assert run("clients", "disable", "his-1")[0] == 0
        from rhip.core.errors import Unauthenticated

        identity.authenticator.forget()
        with pytest.raises(Unauthenticated):
            identity.authenticate(token.strip())
    finally:
        db.dispose()
    code, _, err = run("tokens", "issue", "--client-id", "his-1")
    assert code == 1 and "no enabled client" in err
    assert run("clients", "enable", "his-1")[0] == 0
    code, _, err = run(
        "clients", "add", "--client-id", "c2", "--scopes", "system/*.rs", "--jwks", str(tmp_path / "none")
    )
    assert code == 1


def test_client_with_a_certificate(settings: Settings, tmp_path: Path) -> None:
    from .test_service import _certificate

    pem = tmp_path / "client.pem"
    pem.write_bytes(_certificate())
    code, _, err = run(
        "clients", "add", "--client-id", "mllp-1", "--scopes", "system/*.cu", "--cert", str(pem)
    )
    assert code == 0, err
    identity, db = service(settings, tmp_path)
    try:
        from rhip.security.identity.accounts import certificate_fingerprint

        principal = identity.principal_for_certificate(certificate_fingerprint(pem.read_bytes()))
        assert principal is not None and principal.client_id == "mllp-1"
    finally:
        db.dispose()


def test_the_keys_client_hint_registers_the_certificate(settings: Settings, tmp_path: Path) -> None:
    import shlex

    from rhip.cli.keys import keys_app

    runner = CliRunner()
    assert runner.invoke(keys_app, ["ca", "--out", str(tmp_path / "ca")]).exit_code == 0
    made = runner.invoke(
        keys_app,
        ["client", "--ca", str(tmp_path / "ca"), "--name", "lab-002", "--institution", "H002",
         "--out", str(tmp_path / "my certs")],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    lines = made.output.splitlines()
    command = shlex.split(lines[lines.index("register it with:") + 1])
    assert command[:3] == ["rhip", "clients", "add"]
    # The printed command works as printed (a folder with a space in its name included).
    code, _, err = run(*command[1:])
    assert code == 0, err
    row = orjson.loads(run("clients", "list", "--json")[1].strip())
    assert (row["client_id"], row["institution"], row["role"]) == ("lab-002", "H002", "system")
    assert row["cert_sha256"] and row["cert_sha256"] in made.output.replace(":", "").lower()
    bare = runner.invoke(
        keys_app, ["client", "--ca", str(tmp_path / "ca"), "--name", "lab-003", "--out", str(tmp_path / "c3")]
    )
    assert "add --institution" in bare.output and "--client-id lab-003" in bare.output


def test_the_commands_are_audited(settings: Settings, tmp_path: Path) -> None:
    from sqlalchemy import text

    assert (
        run("users", "add", "--username", "ops-1", "--role", "admin", "--password-stdin", stdin=PASSWORD)[0]
        == 0
    )
    assert run("users", "disable", "ops-1")[0] == 0
    assert run("users", "disable", "nobody")[0] == 1
    assert run("tokens", "issue", "--username", "ops-1")[0] == 1  # disabled
    db = open_database(settings.database_url)
    try:
        with db.read() as conn:
            rows = conn.execute(
                text("SELECT subtype, outcome, subject, event FROM audit_log ORDER BY seq")
            ).all()
    finally:
        db.dispose()
    assert [(r.subtype, r.outcome) for r in rows] == [
        ("security-admin", "0"),
        ("security-admin", "0"),
        ("security-admin", "4"),
        ("security-admin", "4"),
    ]
    assert all(r.subject.startswith("platform:") for r in rows)
    assert all(PASSWORD.encode() not in r.event for r in rows)
