"""What the store's parts share: database, extractor, validator, clock and limits (wired by bootstrap)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rhip.core.clock import Clock
from rhip.core.events import EventBus
from rhip.db.engine import Database
from rhip.fhir.definitions import StructureTable
from rhip.fhir.repository import ResourceValidator
from rhip.fhir.search.extract import IndexExtractor
from rhip.fhir.search.params import SearchParamRegistry


@dataclass(frozen=True)
class StoreLimits:
    """Tunable limits of the store."""

    max_include: int = 1000  # resources added by _include/_revinclude to one page
    search_cache_max: int = 100_000  # pids kept for paging a sorted search
    search_cache_ttl_s: int = 3600
    history_max_count: int = 1000


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
