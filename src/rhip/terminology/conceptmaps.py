"""Concept maps: an institution's local codes and the standard codes they stand for (本地字典对照).

A hospital codes sex, departments, drugs and diagnoses its own way; it registers the correspondence once
and the platform adds the standard code beside each local one on the way in (:mod:`rhip.terminology.mapping`).
A map comes as a FHIR R4 ``ConceptMap`` or as a CSV file in the layout of the code tables: ``#`` lines first
(``url``, ``name``, ``version``, ``source`` and ``source_system``, the local code system's URL, and
``target_system``, the standard's, are required; ``title``, ``institution`` optional), then the columns
``local_code, local_display, standard_code, standard_display, equivalence``. ``equivalence`` is R4's
ConceptMapEquivalence (``equivalent`` when empty).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

COLUMNS = ("local_code", "local_display", "standard_code", "standard_display", "equivalence")
REQUIRED_META = ("url", "name", "version", "source", "source_system", "target_system")
EQUIVALENCES = frozenset(
    {
        "relatedto", "equivalent", "equal", "wider", "subsumes",
        "narrower", "specializes", "inexact", "unmatched", "disjoint",
    }
)  # fmt: skip
# The standard code is true of what the local code says: it may be added beside it. A narrower or inexact
# target would claim more than the sender said.
ADDABLE = frozenset({"equivalent", "equal", "wider", "subsumes"})
MAX_ELEMENTS = 100_000


class ConceptMapError(ValueError):
    """A concept map (file or resource) that cannot be read as one."""


@dataclass(frozen=True, slots=True)
class Target:
    """A standard code one local code maps to."""

    system: str
    code: str
    display: str = ""
    equivalence: str = "equivalent"

    @property
    def addable(self) -> bool:
        """Whether the code may be added beside the local one on the way in."""
        return self.equivalence in ADDABLE


@dataclass(frozen=True)
class ConceptMap:
    """A map from codes of local code systems to standard codes: (source system, code) → targets."""

    url: str
    name: str
    version: str
    source: str = ""
    title: str = ""
    institution: str = ""
    elements: Mapping[tuple[str, str], tuple[Target, ...]] = field(default_factory=dict)
    displays: Mapping[tuple[str, str], str] = field(default_factory=dict, compare=False, repr=False)

    def source_systems(self) -> frozenset[str]:
        """The local code systems it maps from."""
        return frozenset(system for system, _ in self.elements)

    def to_fhir(self) -> dict[str, Any]:
        """The FHIR R4 ConceptMap resource (one group per pair of source and target systems)."""
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for (system, code), targets in self.elements.items():
            by_target: dict[str, list[dict[str, Any]]] = {}
            for t in targets:
                item: dict[str, Any] = {"code": t.code, "equivalence": t.equivalence}
                if t.display:
                    item["display"] = t.display
                by_target.setdefault(t.system, []).append(item)
            for target_system, items in by_target.items():
                element: dict[str, Any] = {"code": code}
                if self.displays.get((system, code)):
                    element["display"] = self.displays[(system, code)]
                element["target"] = items
                groups.setdefault((system, target_system), []).append(element)
        resource: dict[str, Any] = {
            "resourceType": "ConceptMap",
            "url": self.url,
            "version": self.version,
            "name": self.name,
            "title": self.title or self.name,
            "status": "active",
            "group": [{"source": s, "target": t, "element": elements} for (s, t), elements in groups.items()],
        }
        if self.source:
            resource["description"] = f"Source: {self.source}"
        if self.institution:
            resource["publisher"] = self.institution
        return resource


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConceptMapError(f"{what} is required (a non-empty string)")
    return value.strip()


def _equivalence(value: Any, where: str) -> str:
    found = (value or "equivalent").strip() if isinstance(value, str) or value is None else value
    if found not in EQUIVALENCES:
        raise ConceptMapError(
            f"{where}: equivalence {found!r} is not one of R4's ({', '.join(sorted(EQUIVALENCES))})"
        )
    return str(found)


class _Builder:
    """Collects elements, refusing a (system, code, target) stated twice and overlong maps."""

    def __init__(self) -> None:
        self.elements: dict[tuple[str, str], list[Target]] = {}
        self.displays: dict[tuple[str, str], str] = {}
        self.count = 0

    def add(self, system: str, code: str, display: str, target: Target, where: str) -> None:
        key = (system, code)
        held = self.elements.setdefault(key, [])
        if any(t.system == target.system and t.code == target.code for t in held):
            raise ConceptMapError(f"{where}: {code!r} → {target.code!r} is stated twice")
        held.append(target)
        if display:
            self.displays[key] = display
        self.count += 1
        if self.count > MAX_ELEMENTS:
            raise ConceptMapError(f"a concept map holds at most {MAX_ELEMENTS:,} mappings")

    def build(self, meta: Mapping[str, str]) -> ConceptMap:
        if not self.elements:
            raise ConceptMapError("a concept map maps at least one code")
        return ConceptMap(
            url=meta["url"],
            name=meta["name"],
            version=meta["version"],
            source=meta.get("source", ""),
            title=meta.get("title", ""),
            institution=meta.get("institution", ""),
            elements={k: tuple(v) for k, v in self.elements.items()},
            displays=dict(self.displays),
        )


def concept_map_from_fhir(resource: Mapping[str, Any]) -> ConceptMap:
    """A concept map from a FHIR R4 ConceptMap resource (its groups' source, target and elements)."""
    if resource.get("resourceType") != "ConceptMap":
        raise ConceptMapError("not a ConceptMap resource")
    meta = {
        "url": _text(resource.get("url"), "ConceptMap.url"),
        "name": str(resource.get("name") or resource.get("title") or resource.get("id") or "ConceptMap"),
        "version": str(resource.get("version") or ""),
        "title": str(resource.get("title") or ""),
        "institution": str(resource.get("publisher") or ""),
        "source": str(resource.get("description") or ""),
    }
    builder = _Builder()
    for g, group in enumerate(_items(resource.get("group"))):
        where = f"ConceptMap.group[{g}]"
        system = _text(group.get("source"), f"{where}.source")
        target_system = _text(group.get("target"), f"{where}.target")
        for e, element in enumerate(_items(group.get("element"))):
            at = f"{where}.element[{e}]"
            code = _text(element.get("code"), f"{at}.code")
            for t, target in enumerate(_items(element.get("target"))):
                equivalence = _equivalence(target.get("equivalence"), f"{at}.target[{t}]")
                if equivalence in ("unmatched", "disjoint") and not target.get("code"):
                    continue  # states that nothing matches: nothing to add
                found = Target(
                    target_system,
                    _text(target.get("code"), f"{at}.target[{t}].code"),
                    str(target.get("display") or ""),
                    equivalence,
                )
                builder.add(system, code, str(element.get("display") or ""), found, at)
    return builder.build(meta)


def _items(value: Any) -> Iterable[Mapping[str, Any]]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ConceptMapError("ConceptMap.group, element and target are lists of objects")
    return value


def parse_concept_map_csv(text: str, where: str = "concept map") -> ConceptMap:
    """A concept map from a CSV local dictionary (``#`` metadata lines, then the mapping columns)."""
    meta: dict[str, str] = {}
    body: list[str] = []
    for line in text.lstrip("\ufeff").splitlines():
        if line.startswith("#") and not body:
            key, sep, value = line[1:].strip().partition(":")
            if sep:
                meta[key.strip().lower()] = value.strip()
            continue
        if line.strip():
            body.append(line)
    missing = [k for k in REQUIRED_META if not meta.get(k)]
    if missing:
        raise ConceptMapError(f"{where}: the # lines must give {', '.join(missing)}")
    if not body or tuple(h.strip() for h in next(csv.reader([body[0]]))) != COLUMNS:
        raise ConceptMapError(f"{where}: the first line after the # lines must be {','.join(COLUMNS)}")
    builder = _Builder()
    for n, row in enumerate(csv.DictReader(io.StringIO("\n".join(body))), start=2):
        at = f"{where} row {n}"
        local, standard = (row["local_code"] or "").strip(), (row["standard_code"] or "").strip()
        if not local or not standard:
            raise ConceptMapError(f"{at}: a local code and a standard code are required")
        target = Target(
            meta["target_system"],
            standard,
            (row["standard_display"] or "").strip(),
            _equivalence(row["equivalence"], at),
        )
        builder.add(meta["source_system"], local, (row["local_display"] or "").strip(), target, at)
    return builder.build(meta)
