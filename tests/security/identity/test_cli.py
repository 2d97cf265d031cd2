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

        answer = identity.token({**form, "totp": totp.code_at(secret, identity.clock())}, token_url="x")
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
