"""rhip.bootstrap.secrets: settings from RHIP_…_FILE files (Docker and Kubernetes secrets)."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from rhip.bootstrap.logging import JsonFormatter
from rhip.bootstrap.secrets import MAX_BYTES, PATH_SETTINGS, FileSecretsSource, SecretFileError, file_secrets
from rhip.bootstrap.settings import Settings

DB_URL = "postgresql+psycopg://rhip:W0lf-P@ss@db.example.cn:5432/rhip"


class WiredSettings(Settings):
    """The settings tree with the file source, as the lead wires it into Settings."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            FileSecretsSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.upper().startswith("RHIP_"):
            monkeypatch.delenv(name)


def _secret(tmp_path: Path, name: str, content: str | bytes) -> str:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return str(path)


def test_files_give_values_with_one_trailing_newline_dropped(tmp_path: Path) -> None:
    environ = {
        "RHIP_DATABASE_URL_FILE": _secret(tmp_path, "db", DB_URL + "\n"),
        "RHIP_SECURITY__OIDC_AUDIENCE_FILE": _secret(tmp_path, "aud", "rhip\r\n"),
        "RHIP_SECURITY__ISSUER_FILE": _secret(tmp_path, "iss", "  spaced  \n\n"),
        "RHIP_SERVER__PORT": "9090",
        "OTHER_FILE": "/nonexistent",
        "RHIP__FILE": "/nonexistent",
    }
    assert file_secrets(environ) == {
        "RHIP_DATABASE_URL": DB_URL,
        "RHIP_SECURITY__OIDC_AUDIENCE": "rhip",
        "RHIP_SECURITY__ISSUER": "  spaced  \n",
    }


def test_settings_read_them_nested_and_beside_plain_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RHIP_DATABASE_URL_FILE", _secret(tmp_path, "db", DB_URL + "\n"))
    monkeypatch.setenv(
        "RHIP_SECURITY__CORS_ORIGINS_FILE", _secret(tmp_path, "cors", '["https://a.example.cn"]')
    )
    monkeypatch.setenv("RHIP_SECURITY__RATE_BURST_FILE", _secret(tmp_path, "burst", "7\n"))
    monkeypatch.setenv("RHIP_SECURITY__RATE_PER_SECOND", "3.5")
    monkeypatch.setenv("rhip_security__oidc_audience_file", _secret(tmp_path, "aud", "rhip-portal\n"))
    settings = WiredSettings()
    assert settings.database_url == DB_URL
    assert settings.security.cors_origins == ["https://a.example.cn"]
    assert settings.security.rate_burst == 7
    assert settings.security.rate_per_second == 3.5  # the plain variable of the same section still counts
    assert settings.security.oidc_audience == "rhip-portal"  # lower-case variable names too
    assert settings.server.port == 8080


def test_both_ways_at_once_is_an_error_unless_they_agree(tmp_path: Path) -> None:
    path = _secret(tmp_path, "db", DB_URL)
    with pytest.raises(SecretFileError, match="both RHIP_DATABASE_URL and RHIP_DATABASE_URL_FILE") as caught:
        file_secrets({"RHIP_DATABASE_URL": "sqlite:///x.db", "RHIP_DATABASE_URL_FILE": path})
    assert DB_URL not in str(caught.value) and "sqlite:///x.db" not in str(caught.value)
    agreed = {"RHIP_DATABASE_URL": DB_URL, "RHIP_DATABASE_URL_FILE": path}
    assert file_secrets(agreed) == {"RHIP_DATABASE_URL": DB_URL}
    assert file_secrets({"RHIP_DATABASE_URL": "", "RHIP_DATABASE_URL_FILE": path}) == {
        "RHIP_DATABASE_URL": DB_URL
    }


def test_errors_name_the_file_but_never_the_content(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = str(tmp_path / "missing")
    with pytest.raises(SecretFileError, match=r"RHIP_DATABASE_URL_FILE names .*missing.*cannot be read"):
        file_secrets({"RHIP_DATABASE_URL_FILE": missing})
    with pytest.raises(SecretFileError, match="not UTF-8") as caught:
        file_secrets({"RHIP_X_FILE": _secret(tmp_path, "bin", b"pass\xffword")})
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "pass" not in str(caught.value)
    with pytest.raises(SecretFileError, match="larger than"):
        file_secrets({"RHIP_X_FILE": _secret(tmp_path, "big", b"x" * (MAX_BYTES + 1))})
    with pytest.raises(SecretFileError):
        file_secrets({"RHIP_X_FILE": str(tmp_path)})  # a directory
    monkeypatch.setenv("RHIP_DATABASE_URL_FILE", missing)
    with pytest.raises(SecretFileError):
        WiredSettings()


def test_values_never_reach_the_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        monkeypatch.setenv("RHIP_DATABASE_URL_FILE", _secret(tmp_path, "db", DB_URL))
        WiredSettings()
        logging.getLogger("rhip.test").info("connecting to %s", DB_URL)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    assert "W0lf" not in stream.getvalue() and "P@ss" not in stream.getvalue()
    assert "rhip:[redacted]@db.example.cn" in stream.getvalue()


PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"


@pytest.mark.parametrize("setting", sorted(PATH_SETTINGS))
def test_path_settings_cannot_come_from_files(tmp_path: Path, setting: str) -> None:
    variable = f"RHIP_{setting.upper()}_FILE"
    with pytest.raises(SecretFileError, match="is itself a file path") as caught:
        file_secrets({variable: _secret(tmp_path, "key.pem", PEM)})
    message = str(caught.value)
    assert variable in message and f"RHIP_{setting.upper()}=<path" in message
    assert "BEGIN" not in message and "MIGHAgEA" not in message and caught.value.__cause__ is None
    # Refused before reading: a file that is not there gets the same answer.
    with pytest.raises(SecretFileError, match="is itself a file path"):
        file_secrets({variable.lower(): str(tmp_path / "missing")})


def test_a_section_file_may_not_set_a_path_setting(tmp_path: Path) -> None:
    section = _secret(
        tmp_path, "server.json", '{"TLS_KEY": "' + PEM.replace("\n", "\\n") + '", "port": 9443}'
    )
    with pytest.raises(SecretFileError, match=r"server\.tls_key is itself a file path") as caught:
        file_secrets({"RHIP_SERVER_FILE": section})
    assert "BEGIN" not in str(caught.value)
    nested = _secret(tmp_path, "exchange.json", '{"mllp": {"tls_cert": "/etc/x.pem"}}')
    with pytest.raises(SecretFileError, match=r"exchange\.mllp\.tls_cert"):
        file_secrets({"RHIP_EXCHANGE_FILE": nested})
    fine = _secret(tmp_path, "fine.json", '{"port": 9443}')
    assert file_secrets({"RHIP_SERVER_FILE": fine}) == {"RHIP_SERVER": '{"port": 9443}'}
    assert file_secrets({"RHIP_DATABASE_URL_FILE": _secret(tmp_path, "db", DB_URL)})  # database URLs are fine


def test_settings_refuse_a_key_file_given_as_a_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RHIP_SECURITY__SIGNING_KEY_FILE", _secret(tmp_path, "signer.key", PEM))
    with pytest.raises(SecretFileError) as caught:
        WiredSettings()
    assert "BEGIN" not in str(caught.value)


def test_a_pem_where_the_signing_key_path_belongs_is_not_echoed(tmp_path: Path) -> None:
    from rhip.security.signatures.keys import InvalidKey
    from rhip.security.signatures.provenance import Signer, SignerConfig

    with pytest.raises(InvalidKey) as caught:
        Signer.from_config(SignerConfig(Path(PEM), tmp_path / "signer.pem"))
    assert "BEGIN" not in str(caught.value) and "MIGHAgEA" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(InvalidKey, match=r"missing\.key"):  # a real path is still named
        Signer.from_config(SignerConfig(tmp_path / "missing.key", tmp_path / "signer.pem"))
