"""What the store's parts share: database, extractor, validator, clock and limits (wired by bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rhip.core.clock import Clock
from rhip.core.events import EventBus
from rhip.db.engine import Database
from rhip.fhir.definitions import StructureTable
from rhip.fhir.repository import ResourcePreparer, ResourceValidator
from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import SearchParamRegistry
from rhip.store.apply import PreparedWrite


@dataclass(frozen=True)
class StoreLimits:
    """Tunable limits of the store."""

    max_include: int = 1000  # resources added by _include/_revinclude to one page
    search_cache_max: int = 100_000  # pids kept for paging a sorted search
    search_cache_ttl_s: int = 3600
    history_max_count: int = 1000


class Writer(Protocol):
    """Where prepared writes go when another process owns the database's writes."""

    def write(self, prepared: PreparedWrite) -> None:
        """Store ``prepared``; return once committed."""


@dataclass(frozen=True)
class StoreContext:
    """Dependencies of the SQL store."""

    db: Database
    table: StructureTable
    registry: SearchParamRegistry
    extractor: IndexExtractor
    validator: ResourceValidator | None
    clock: Clock
    events: EventBus | None = None
    limits: StoreLimits = field(default_factory=StoreLimits)
    writer: Writer | None = None  # the writer process, when this process is one of several HTTP workers
    preparer: ResourcePreparer | None = None  # runs on every incoming resource before validation
