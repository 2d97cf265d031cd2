"""The concept maps the platform holds, and the standard codes they add to incoming data on the way in.

Every CodeableConcept of an incoming resource is looked at: a coding whose system is a mapped local code
system gets the standard codings its map allows (:data:`rhip.terminology.conceptmaps.ADDABLE`) added after it,
marked with the extension :data:`MAPPED_BY` (the map's ``url|version``) and ``userSelected: false``. The
local coding is kept as it came. The maps live in the FHIR store (``ConceptMap`` resources, so they have
history and any client can read them), followed as :mod:`rhip.terminology.following` explains.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from rhip.terminology.conceptmaps import ConceptMap, ConceptMapError, Target, concept_map_from_fhir
from rhip.terminology.following import ResourceSource, StoreFollower

MAPPED_BY = "urn:rhip:ext:mapped-by"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Translation:
    """One answer of ``$translate``: a target code and the map that says so."""

    target: Target
    map_url: str
    map_version: str


_Index = dict[str, dict[str, tuple[tuple[ConceptMap, Target], ...]]]


class ConceptMaps:
    """Concept maps by URL, indexed by local (system, code); reloaded from a source when due."""

    def __init__(
        self,
        source: ResourceSource | None = None,
        *,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.follower = StoreFollower(ttl_s, clock)
        self.maps: dict[str, ConceptMap] = {}
        self._index: _Index = {}

    # -- holding maps ------------------------------------------------------------------------------
    def replace(self, maps: Iterable[ConceptMap]) -> None:
        """Hold exactly ``maps`` (the latest of a URL wins)."""
        held = {m.url: m for m in maps}
        index: _Index = {}
        for m in held.values():
            for (system, code), targets in m.elements.items():
                by_code = index.setdefault(system, {})
                by_code[code] = by_code.get(code, ()) + tuple((m, t) for t in targets)
        self.maps, self._index = held, index

    def reload(self) -> None:
        """Read the maps from the source now (a stored map that cannot be read is skipped and logged)."""
        if self.source is None:
            return
        maps = []
        for resource in self.source():
            try:
                maps.append(concept_map_from_fhir(resource))
            except ConceptMapError as exc:
                log.warning("ConceptMap/%s is not used: %s", resource.get("id"), exc)
        self.replace(maps)

    def changed(self) -> None:
        """A map was stored or deleted: read them again before the next use."""
        self.follower.changed()

    def fresh(self) -> None:
        """Read the maps again when due."""
        if self.source is not None:
            self.follower.fresh(self.reload)

    # -- using them --------------------------------------------------------------------------------
    def translate(
        self, system: str, code: str, *, url: str | None = None, target_system: str | None = None
    ) -> list[Translation]:
        """The standard codes ``code`` of ``system`` maps to (in ``url``'s map, to ``target_system``)."""
        self.fresh()
        found = self._index.get(system, {}).get(code, ())
        return [
            Translation(t, m.url, m.version)
            for m, t in found
            if (url is None or m.url == url) and (target_system is None or t.system == target_system)
        ]

    def add_standard_codes(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """A copy of ``resource`` with standard codings beside the mapped local ones (None: nothing to add)."""
        self.fresh()
        if not self._index:
            return None
        changed = _walk(resource, self._index)
        return changed if isinstance(changed, dict) else None


def _walk(node: Any, index: _Index) -> Any:
    """The node with codings added (copied along the changed path only), or None when unchanged."""
    changed: Any = None
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(value, (dict, list)):
                continue
            new = _codings(value, index) if key == "coding" else _walk(value, index)
            if new is not None:
                if changed is None:
                    changed = dict(node)
                changed[key] = new
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                new = _walk(value, index)
                if new is not None:
                    if changed is None:
                        changed = list(node)
                    changed[i] = new
    return changed


def _codings(codings: Any, index: _Index) -> list[Any] | None:
    """The coding list with the standard codings its local codings map to, or None when none are new."""
    if not isinstance(codings, list):
        return None
    present = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
    added: list[dict[str, Any]] = []
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            continue
        for m, target in index.get(system, {}).get(code, ()):
            if not target.addable or (target.system, target.code) in present:
                continue
            present.add((target.system, target.code))
            item: dict[str, Any] = {
                "extension": [
                    {"url": MAPPED_BY, "valueCanonical": f"{m.url}|{m.version}" if m.version else m.url}
                ],
                "system": target.system,
                "code": target.code,
            }
            if target.display:
                item["display"] = target.display
            item["userSelected"] = False
            added.append(item)
    return [*codings, *added] if added else None
