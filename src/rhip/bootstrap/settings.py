"""The one settings tree (pydantic-settings, prefix ``RHIP_``), built once and passed down.

Top-level ``RHIP_DATABASE_URL`` chooses the database; nested sections use ``__``, for example
``RHIP_SERVER__PORT=9090`` or ``RHIP_FHIR__MAX_COUNT=500``.
"""

from __future__ import annotations

import socket
from typing import Any, Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from rhip.bootstrap.secrets import FileSecretsSource


class SqliteSettings(BaseModel):
    """Tuning of the embedded SQLite database."""

    synchronous: Literal["FULL", "NORMAL"] = Field("FULL", description="FULL: a commit survives power loss")
    cache_mb: int = Field(16, ge=1, description="page cache per connection (the OS caches the file too)")
    busy_timeout_ms: int = Field(30_000, ge=0)
    wal_autocheckpoint: int = Field(10_000, ge=100, description="WAL pages before a checkpoint")
    writer_cache_mb: int = Field(
        64, ge=1, description="page cache of the writer process (multi-worker servers)"
    )
    writer_linger_ms: float = Field(
        3.0, ge=0, description="how long the writer waits to commit several requests at once"
    )


class ServerSettings(BaseModel):
    """The HTTP server."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    workers: int = Field(1, ge=1, description="worker processes (each with its own connection pool)")
    threads: int = Field(4, ge=1, description="requests served at once per worker process")
    public_base_url: str | None = Field(
        None, description="the FHIR base URL clients see, e.g. https://rhip.example.cn/fhir"
    )
    max_body_mb: int = Field(32, ge=1, description="largest accepted request body")
    writer_process: bool = Field(
        True, description="with several workers on SQLite, let one process do the writes"
    )
    writer_socket: str | None = Field(None, description="set by `rhip serve` for its workers; not for users")
    tls_cert: str | None = Field(None, description="PEM certificate file: HTTPS when set")
    tls_key: str | None = Field(None, description="PEM private key file of tls_cert")
    tls_client_ca: str | None = Field(
        None, description="PEM CA bundle: ask for client certificates it signed"
    )

    def own_base_urls(self) -> tuple[str, ...]:
        """The FHIR base URLs of this server: absolute references under them are references to it.

        The public base URL when set; otherwise what the listening address is reached by (loopback names
        too when it listens on loopback or on every interface). Behind a proxy or under another host name,
        only ``public_base_url`` can say which URLs are this server's.
        """
        if self.public_base_url:
            return (self.public_base_url.rstrip("/"),)
        hosts = [] if self.host in _EVERY_INTERFACE else [self.host]
        if self.host in _EVERY_INTERFACE or self.host in _LOOPBACK:
            hosts += ["127.0.0.1", "localhost", "::1"]
        if self.host in _EVERY_INTERFACE:
            hosts.append(socket.gethostname())
        # On port 80 clients may leave the port out, as they usually do.
        ports = [f":{self.port}", ""] if self.port == 80 else [f":{self.port}"]
        scheme = "https" if self.tls_cert else "http"
        urls = (f"{scheme}://{f'[{h}]' if ':' in h else h}{p}/fhir" for h in hosts for p in ports)
        return tuple(dict.fromkeys(urls))


_EVERY_INTERFACE = frozenset({"0.0.0.0", "::"})  # noqa: S104 -- compared with, never bound here
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class FhirSettings(BaseModel):
    """Behaviour of the FHIR API and store."""

    default_count: int = Field(20, ge=1)
    max_count: int = Field(1000, ge=1)
    allow_multiple_delete: bool = False
    validate_on_write: bool = True
    index_token_text: bool = Field(
        True, description="index Coding.display / CodeableConcept.text for :text searches"
    )
    max_bundle_entries: int = Field(10_000, ge=1)
    search_cache_max: int = Field(100_000, ge=100, description="results kept for paging a sorted search")
    max_include: int = Field(1000, ge=1)


class EmpiSettings(BaseModel):
    """The resident index (EMPI, 居民主索引)."""

    online: bool = Field(True, description="match each Patient in the request that stores it")
    survivorship: dict[str, str] = Field(
        default_factory=dict,
        description="master field -> most-trusted | most-recent | most-common (name, gender, birthDate, telecom, address)",
    )
    trusted_sources: list[str] = Field(
        default_factory=list,
        description="source-system prefixes, most trusted first (e.g. urn:rhip:mrn:510703H)",
    )
    card_systems: dict[str, str] = Field(
        default_factory=dict, description="further person-level identifier systems -> a short kind name"
    )


class MllpSettings(BaseModel):
    """The HL7 v2 listener (MLLP) of `rhip serve`."""

    enabled: bool = Field(True, description="listen for HL7 v2 over MLLP beside HTTP")
    host: str = "127.0.0.1"
    port: int = Field(2575, ge=1, le=65535)
    tls_cert: str | None = Field(None, description="PEM certificate file: MLLP over TLS when set")
    tls_key: str | None = Field(None, description="PEM private key file of tls_cert")
    tls_client_ca: str | None = Field(
        None, description="PEM CA bundle: require client certificates it signed"
    )
    default_charset: str | None = Field(
        None, description="charset of messages without MSH-18 (default: UTF-8 when valid, else GB 18030)"
    )
    charsets: dict[str, str] = Field(
        default_factory=dict,
        description="sending facility (MSH-4) or peer IP -> charset, for HIS that send GBK without MSH-18",
    )
    max_message_kb: int = Field(4096, ge=1, description="largest accepted message")
    idle_timeout_s: float = Field(600.0, gt=0, description="close connections silent this long")
    batch_linger_ms: float = Field(
        2.0, ge=0, description="how long to gather messages of several connections into one commit"
    )
    batch_max: int = Field(64, ge=1, description="most messages committed together")


class ExchangeSettings(BaseModel):
    """HL7 v2, HL7 v3 and CDA doors."""

    mllp: MllpSettings = MllpSettings()
    max_xml_mb: int = Field(20, ge=1, description="largest accepted HL7 v3 request or CDA document")
    hl7v3_devices: dict[str, str] = Field(
        default_factory=dict,
        description="HL7 v3 sender device id -> institution code, for senders whose messages name none",
    )


class TerminologySettings(BaseModel):
    """The code tables of the terminology service (docs/terminology.md)."""

    tables_dir: str | None = Field(
        None,
        description=(
            "a folder of code table files (*.csv) read at start beside the shipped ones; a table with the "
            "URL of a shipped one replaces it"
        ),
    )
    store_ttl_s: float = Field(
        30.0,
        gt=0,
        description=(
            "seconds after which a process reads the ConceptMaps and the dictionaries registered through HL7 v3 "
            "in the store again (a change stored through another worker takes effect here within this time; in "
            "the process that stored it, at once)"
        ),
    )
    map_codes_on_write: bool = Field(
        True, description="add the standard code beside each mapped local code of incoming resources"
    )


class QualitySettings(BaseModel):
    """Data quality (数据质控, docs/data-quality.md)."""

    follow: bool = Field(
        True, description="score new resources while `rhip serve` runs (else: rhip quality score)"
    )
    interval_s: float = Field(
        5.0, gt=0, description="seconds between catch-ups when nothing wakes the scorer"
    )
    rules_dir: str | None = Field(
        None, description="a folder of rule files (<family>.toml) replacing the shipped ones of that family"
    )
    examples_per_rule: int = Field(
        3, ge=0, le=100, description="failing examples kept per day, institution, rule"
    )


class SecuritySettings(BaseModel):
    """Identity, authorization, audit, signatures and hardening (docs/security.md)."""

    enabled: bool = Field(True, description="every door needs a token (or a trusted MLLP peer) and a policy")
    issuer: str | None = Field(None, description="token issuer URL (default: the server's own base URL)")
    keys_dir: str = Field("var/keys", description="token signing keys, test CA and certificates")
    access_token_minutes: int = Field(15, ge=1, le=1440)
    refresh_token_hours: int = Field(8, ge=1, le=720, description="portal session length")
    client_assertion_max_minutes: int = Field(5, ge=1, le=60, description="longest private_key_jwt life")
    lockout_attempts: int = Field(5, ge=1, description="failed sign-ins before an account locks")
    lockout_minutes: int = Field(15, ge=1)
    signin_attempts_per_minute: float = Field(
        10.0, gt=0, description="password and client-assertion attempts per address and per account name"
    )
    signin_attempt_burst: int = Field(
        10, ge=1, description="attempts allowed at once before the rate applies"
    )
    oidc_issuer: str | None = Field(None, description="trust tokens of this external OpenID provider")
    oidc_jwks_url: str | None = Field(None, description="its JWKS (https URL or a file path)")
    oidc_audience: str | None = Field(None, description="audience its tokens must name")
    oidc_role_claim: str = Field("rhip_role", description="claim holding the platform role")
    oidc_institution_claim: str = Field("rhip_institution", description="claim holding the institution code")
    care_window_days: int = Field(
        365, ge=1, description="an encounter, referral or appointment this recent is a care relationship"
    )
    break_glass_alert_url: str | None = Field(None, description="POST break-the-glass alerts here (JSON)")
    audit_hash: Literal["sm3", "sha256"] = Field("sm3", description="hash of the audit chain (GM/T 0004 SM3)")
    audit_flush_ms: int = Field(1000, ge=1, description="reads are audited in batches at least this often")
    audit_appender: Literal["auto", "process", "thread"] = Field(
        "auto",
        description=(
            "who builds and chains the batches of read audits: a process of its own (process), or a thread "
            "of the serving process (thread); auto: process under `rhip serve`, thread elsewhere"
        ),
    )
    rate_per_second: float = Field(100.0, gt=0, description="requests per second per client or user")
    rate_burst: int = Field(200, ge=1)
    cors_origins: list[str] = Field(default_factory=list, description="browser origins allowed (none)")
    mllp_trusted_peers: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="MLLP peers without a client certificate that act as the institution of MSH-4",
    )
    ca_bundle: str | None = Field(
        None, description="PEM CA certificates that signature certificates chain to"
    )
    signing_key: str | None = Field(None, description="PEM private key the platform signs documents with")
    signing_cert: str | None = Field(None, description="PEM certificate of signing_key")


class Settings(BaseSettings):
    """Every setting of the platform."""

    model_config = SettingsConfigDict(env_prefix="RHIP_", env_nested_delimiter="__", extra="ignore")

    database_url: str = Field(
        "sqlite:///./var/rhip.db", description="sqlite:///path or postgresql+psycopg://…"
    )
    pool_size: int = Field(8, ge=1)
    sqlite: SqliteSettings = SqliteSettings()
    server: ServerSettings = ServerSettings()
    fhir: FhirSettings = FhirSettings()
    empi: EmpiSettings = EmpiSettings()
    exchange: ExchangeSettings = ExchangeSettings()
    security: SecuritySettings = SecuritySettings()
    terminology: TerminologySettings = TerminologySettings()
    quality: QualitySettings = QualitySettings()
    timezone: str = Field("Asia/Shanghai", description="zone of dates without an offset, and of display")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, then the environment, then ``RHIP_…_FILE`` files (Docker and Kubernetes secrets)."""
        return (
            init_settings,
            env_settings,
            FileSecretsSource(settings_cls),
            dotenv_settings,
            file_secret_settings,
        )

    def database_options(self, cache_mb: int | None = None) -> dict[str, Any]:
        """The fields of ``rhip.db.engine.DatabaseConfig`` (plain values: the writer process gets them as JSON)."""
        return {
            "url": self.database_url,
            "sqlite_synchronous": self.sqlite.synchronous,
            "sqlite_cache_mb": cache_mb or self.sqlite.cache_mb,
            "sqlite_busy_timeout_ms": self.sqlite.busy_timeout_ms,
            "sqlite_wal_autocheckpoint": self.sqlite.wal_autocheckpoint,
            "pool_size": self.pool_size,
        }
