"""Settings that derive values: the server's own base URLs and the database options."""

from __future__ import annotations

import socket

from rhip.bootstrap.settings import ServerSettings, Settings
from rhip.db.engine import DatabaseConfig


def test_public_base_url_is_the_only_own_base_when_set() -> None:
    server = ServerSettings(host="0.0.0.0", public_base_url="https://rhip.example.cn/fhir/")
    assert server.own_base_urls() == ("https://rhip.example.cn/fhir",)


def test_loopback_listener_answers_to_every_loopback_name() -> None:
    assert ServerSettings(host="127.0.0.1", port=8080).own_base_urls() == (
        "http://127.0.0.1:8080/fhir",
        "http://localhost:8080/fhir",
        "http://[::1]:8080/fhir",
    )


def test_every_interface_adds_the_host_name_and_never_the_wildcard() -> None:
    urls = ServerSettings(host="0.0.0.0", port=9000).own_base_urls()
    assert f"http://{socket.gethostname()}:9000/fhir" in urls
    assert "http://127.0.0.1:9000/fhir" in urls
    assert not any("0.0.0.0" in u for u in urls)


def test_a_specific_address_is_its_own_base() -> None:
    assert ServerSettings(host="10.1.2.3", port=8443).own_base_urls() == ("http://10.1.2.3:8443/fhir",)
    assert ServerSettings(host="fd00::5", port=8080).own_base_urls() == ("http://[fd00::5]:8080/fhir",)


def test_port_80_may_be_left_out() -> None:
    assert ServerSettings(host="10.1.2.3", port=80).own_base_urls() == (
        "http://10.1.2.3:80/fhir",
        "http://10.1.2.3/fhir",
    )


def test_database_options_build_a_database_config() -> None:
    settings = Settings(database_url="sqlite:///x.db")
    config = DatabaseConfig(**settings.database_options(cache_mb=99))
    assert config.url == "sqlite:///x.db"
    assert config.sqlite_cache_mb == 99
    assert DatabaseConfig(**settings.database_options()).sqlite_cache_mb == settings.sqlite.cache_mb
