"""Dictionaries institutions register through the HL7 v3 terminology service (术语注册, PRVS_IN000001UV01).

The v3 service keeps each registered value set as a CodeSystem resource in the store (one per url and
version, identified under :data:`V3_VALUE_SET`); this reads them back so that the terminology service answers
``$lookup``, ``$validate-code``, ``$expand`` and ``$subsumes`` over them as over the shipped tables. Where
several versions of one url are stored, the one stored last is used. They are never judged on write: a
hospital's own dictionary says what it sends, not what the platform must refuse.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rhip.terminology.codesystems import CodeSystem, CodeTableError, code_system_from_fhir
from rhip.terminology.following import ResourceSource, StoreFollower

V3_VALUE_SET = "urn:rhip:v3:value-set"  # CodeSystem.identifier.system of the v3 service's dictionaries
log = logging.getLogger(__name__)


class RegisteredSystems:
    """The registered dictionaries by url, read from the store when due."""

    def __init__(
        self,
        source: ResourceSource | None = None,
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.follower = StoreFollower(ttl_s, clock)
        self._systems: dict[str, CodeSystem] = {}
        self._children: dict[str, dict[str, tuple[str, ...]]] = {}

    def reload(self) -> None:
        """Read them now (one that cannot be read is skipped and logged, by id)."""
        if self.source is None:
            return
        stored = sorted(self.source(), key=lambda r: str((r.get("meta") or {}).get("lastUpdated") or ""))
        systems: dict[str, CodeSystem] = {}
        for resource in stored:
            try:
                cs = code_system_from_fhir(resource)
            except CodeTableError as exc:
                log.warning("CodeSystem/%s is not used: %s", resource.get("id"), exc)
                continue
            systems[cs.url] = cs  # sorted by lastUpdated: the latest of a url wins
        self._systems, self._children = systems, {url: cs.children() for url, cs in systems.items()}

    def changed(self) -> None:
        """A CodeSystem was stored or deleted: read them again before the next use."""
        self.follower.changed()

    def get(self, url: str) -> CodeSystem | None:
        """The registered dictionary of ``url``, if any."""
        if self.source is not None:
            self.follower.fresh(self.reload)
        return self._systems.get(url)

    def children(self, url: str, code: str) -> tuple[str, ...]:
        """The codes directly under ``code``."""
        return self._children.get(url, {}).get(code, ())
