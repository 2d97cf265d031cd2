"""Builds the platform from settings: database, FHIR store, validator and the FHIR service."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rhip import __version__
from rhip.bootstrap.adapters import EmpiPatientLinks, PreparerChain
from rhip.bootstrap.exchange import ExchangeServices, build_exchange
from rhip.bootstrap.runtime import settle_heap
from rhip.bootstrap.security import SecurityServices, build_security
from rhip.bootstrap.settings import Settings
from rhip.core.clock import SystemClock, fhir_instant
from rhip.core.errors import InvalidRequest, RhipError
from rhip.core.events import Event, InProcessEventBus
from rhip.db.engine import Database, DatabaseConfig, build_engine
from rhip.db.migrate import current_revision, head_revision
from rhip.empi.fhir_api import register as register_empi
from rhip.empi.service import EmpiConfig, EmpiService
from rhip.fhir.definitions import StructureTable, structure
from rhip.fhir.events import ResourceChanged, ResourceCreated, ResourceDeleted, ResourceUpdated
from rhip.fhir.repository import FhirRepository
from rhip.fhir.rest.capability import capability_statement
from rhip.fhir.rest.extensions import Extensions
from rhip.fhir.rest.interactions import Interactions, RestSettings
from rhip.fhir.rest.service import FhirService
from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import SearchParamRegistry, registry
from rhip.fhir.search.parse import SearchParser
from rhip.fhir.validation import Validator
from rhip.fhir.valuesets import required_valuesets
from rhip.registries.fhir_port import calling
from rhip.registries.resolver import RegisteredInstitutions
from rhip.registries.rules import CheckedOnWrite
from rhip.registries.search import registry_params
from rhip.security.context import acting_as
from rhip.security.lookup import StoreLookup
from rhip.security.principal import platform_principal
from rhip.store.context import StoreContext, StoreLimits
from rhip.store.reindex import reindex, stored_types
from rhip.store.repository import SqlFhirRepository
from rhip.store.write_service import RemoteWriter
from rhip.terminology.codesystems import CodeSystem, CodeTableError, builtin_code_systems, read_code_table
from rhip.terminology.fhir_api import register as register_terminology
from rhip.terminology.mapping import ConceptMaps
from rhip.terminology.registered import V3_VALUE_SET, RegisteredSystems
from rhip.terminology.service import TerminologyService

__all__ = ["Platform", "SchemaOutOfDate", "build_platform", "database", "settle_heap"]


class SchemaOutOfDate(RuntimeError):
    """The database schema is older than the code: run ``rhip db upgrade``."""


@dataclass
class Platform:
    """The wired platform: what entry points (web, CLI, workers) use."""

    settings: Settings
    db: Database
    table: StructureTable
    registry: SearchParamRegistry
    validator: Validator
    events: InProcessEventBus
    repository: FhirRepository  # what every door uses: behind the security layer when it is enabled
    fhir: FhirService
    parser: SearchParser | None = None
    empi: EmpiService | None = None
    exchange: ExchangeServices | None = None
    security: SecurityServices | None = None
    store: FhirRepository | None = None  # the unsecured repository: the platform's own processes only
    terminology: TerminologyService | None = None

    def close(self) -> None:
        """Write what the audit trail still holds; release database connections."""
        try:
            if self.security is not None:
                self.security.close()
        finally:
            self.db.dispose()

    def readiness(self) -> tuple[bool, str]:
        """Whether the database answers and its schema is the one the code needs."""
        with self.db.read() as conn:
            conn.exec_driver_sql("SELECT 1")
        current, head = current_revision(self.db.engine), head_revision()
        return current == head, f"schema {current}, code {head}"


def database(settings: Settings, cache_mb: int | None = None) -> Database:
    """The database of the settings (not migrated)."""
    return Database(build_engine(DatabaseConfig(**settings.database_options(cache_mb))))


def build_platform(
    settings: Settings,
    *,
    require_schema: bool = True,
    extensions: Extensions | None = None,
    empi: bool = True,
    empi_online: bool | None = None,
    exchange: bool = True,
    signatures: bool = True,
    terminology: bool = True,
) -> Platform:
    """Wire everything; refuses to start on a database whose schema is not current.

    ``extensions``: the FHIR operations and search parameters capabilities contribute (the EMPI adds its
    own unless ``empi`` is false). ``empi_online`` overrides ``settings.empi.online`` (bulk import turns
    matching per request off and links in batch at the end). ``exchange``: wire the HL7 v2/v3 doors and
    the document registry (with its MHD and CDA operations). ``signatures``: add the document-signature
    operations ($sign, $verify-signature). ``terminology``: add the terminology operations ($lookup,
    $validate-code, $expand, $subsumes; the service itself is always built).
    """
    db = database(settings)
    if require_schema:
        current, head = current_revision(db.engine), head_revision()
        if current != head:
            db.dispose()
            raise SchemaOutOfDate(
                f"database schema is at {current or 'nothing'}, the code needs {head}: run `rhip db upgrade`"
            )
    zone = ZoneInfo(settings.timezone)
    table = structure()
    params = registry().extended(registry_params())  # + the registries' pinyin and division
    base_urls = settings.server.own_base_urls()
    maps = ConceptMaps(ttl_s=settings.terminology.store_ttl_s)
    registered = RegisteredSystems(ttl_s=settings.terminology.store_ttl_s)
    codes = TerminologyService(code_tables(settings), required_valuesets(), maps, registered)
    # Required bindings and every Coding of a complete code system are checked against the terminology.
    the_validator = Validator(table, codes, codings=codes)
    events = InProcessEventBus()
    # Before validation: the registries' identifier rules and institution references, then the terminology's
    # standard codes beside mapped local ones (the resolver joins once the FHIR service exists, below).
    checked = CheckedOnWrite()
    preparer = PreparerChain(checked, codes) if settings.terminology.map_codes_on_write else checked
    ctx = StoreContext(
        db=db,
        table=table,
        registry=params,
        extractor=IndexExtractor(params, zone, base_urls, settings.fhir.index_token_text),
        validator=the_validator if settings.fhir.validate_on_write else None,
        clock=SystemClock(),
        events=events,
        limits=StoreLimits(
            max_include=settings.fhir.max_include, search_cache_max=settings.fhir.search_cache_max
        ),
        writer=RemoteWriter(settings.server.writer_socket) if settings.server.writer_socket else None,
        preparer=preparer,
    )
    repository = SqlFhirRepository(ctx)
    parser = SearchParser(params, zone, base_urls, settings.fhir.default_count, settings.fhir.max_count)
    _follow_the_store(maps, registered, StoreLookup(repository, parser), events)
    rest = RestSettings(
        settings.fhir.default_count,
        settings.fhir.max_count,
        settings.fhir.allow_multiple_delete,
        settings.fhir.max_bundle_entries,
    )
    interactions = Interactions(table, parser, rest, zone)
    started = fhir_instant(datetime.now(UTC))
    fhir_extensions = extensions if extensions is not None else Extensions()

    def capability(base_url: str) -> dict[str, Any]:
        return capability_statement(
            params,
            base_url,
            __version__,
            started,
            allow_multiple_delete=settings.fhir.allow_multiple_delete,
            extensions=fhir_extensions,
        )

    if terminology:
        register_terminology(fhir_extensions, codes)
    resident_index = None
    if empi:
        resident_index = _empi(settings, db, repository, events, fhir_extensions, empi_online)
    links = EmpiPatientLinks(resident_index) if resident_index is not None else None
    security = build_security(
        settings, db, repository, parser, params, links, fhir_extensions if signatures else None
    )
    secured = security.secure(repository)
    gate = security.gate if security.enabled else None
    service = FhirService(secured, interactions, capability, the_validator, fhir_extensions, gate)
    checked.institutions = _registered_institutions(service, events)
    doors = None
    if exchange:
        doors = build_exchange(settings, db, service, fhir_extensions, parser, resident_index)
    return Platform(
        settings,
        db,
        table,
        params,
        the_validator,
        events,
        secured,
        service,
        parser,
        resident_index,
        doors,
        security,
        repository,
        terminology=codes,
    )


def _follow_the_store(
    maps: ConceptMaps, registered: RegisteredSystems, lookup: StoreLookup, events: InProcessEventBus
) -> None:
    """The terminology reads the concept maps and the dictionaries registered through HL7 v3 from the store
    (as the platform: they hold no resident data), and again when this process stores a change to them."""

    def concept_maps() -> Iterator[dict[str, Any]]:
        for found in lookup.each("ConceptMap", [("status", "active")]):
            yield found.resource()

    def dictionaries() -> Iterator[dict[str, Any]]:
        for found in lookup.each("CodeSystem", [("identifier", f"{V3_VALUE_SET}|")]):
            yield found.resource()

    def on_event(event: Event) -> None:
        if not isinstance(event, ResourceChanged):
            return
        if event.resource_type == "ConceptMap":
            maps.changed()
        elif event.resource_type == "CodeSystem":
            registered.changed()

    maps.source, registered.source = concept_maps, dictionaries
    for event_type in (ResourceCreated, ResourceUpdated, ResourceDeleted):
        events.subscribe(event_type, on_event)


def _registered_institutions(service: FhirService, events: InProcessEventBus) -> RegisteredInstitutions:
    """Institution code → registered Organization, asked of the FHIR service as the platform (not the caller:
    a hospital's client naming another institution need not be allowed to search the directory)."""
    call = calling(service)

    def as_platform(
        method: str, path: str, query: Iterable[tuple[str, str]] = (), body: Mapping[str, Any] | None = None
    ) -> dict[str, Any] | None:
        with acting_as(platform_principal("registries")):
            return call(method, path, query, body)

    institutions = RegisteredInstitutions(as_platform, ttl_s=30.0)
    for event_type in (ResourceCreated, ResourceUpdated, ResourceDeleted):
        events.subscribe(event_type, institutions.on_event)
    return institutions


def reindex_store(
    platform: Platform,
    resource_types: Sequence[str] | None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Rebuild the search index of the types named (None: every type the store holds); how many per type."""
    store = platform.store
    if not isinstance(store, SqlFhirRepository):
        raise RhipError("this platform's store is not the SQL store: nothing to reindex")
    types = list(resource_types) if resource_types is not None else stored_types(store.ctx)
    unknown = [t for t in types if not platform.table.is_resource_type(t)]
    if unknown:
        raise InvalidRequest(f"not FHIR R4 resource types: {', '.join(unknown)}")
    return reindex(store.ctx, types, progress=progress)


def code_tables(settings: Settings) -> list[CodeSystem]:
    """The shipped code tables, then the operator's (``RHIP_TERMINOLOGY__TABLES_DIR``), which may replace them.

    A table that cannot be read stops the start with the file and the reason (CodeTableError).
    """
    tables = list(builtin_code_systems())
    folder = settings.terminology.tables_dir
    if folder:
        path = Path(folder)
        if not path.is_dir():
            raise CodeTableError(f"RHIP_TERMINOLOGY__TABLES_DIR={folder}: no such folder")
        tables += [read_code_table(f) for f in sorted(path.glob("*.csv"))]
    return tables


def _empi(
    settings: Settings,
    db: Database,
    repository: FhirRepository,
    events: InProcessEventBus,
    extensions: Extensions,
    online: bool | None,
) -> EmpiService:
    """The resident index, subscribed to the store's Patient events, with its FHIR operations."""
    config = EmpiConfig(
        online=settings.empi.online if online is None else online,
        survivorship=dict(settings.empi.survivorship),
        trusted_sources=list(settings.empi.trusted_sources),
        card_systems=dict(settings.empi.card_systems),
    )
    service = EmpiService(db, repository, config, events)
    for event_type in (ResourceCreated, ResourceUpdated, ResourceDeleted):
        events.subscribe(event_type, service.on_event)
    register_empi(extensions, service)
    return service
