"""The FHIR R4 structure table: resource types, datatypes, elements, choice types and required bindings.

Loaded from ``data/r4-structure.json`` (derived from the official package by
``scripts/derive_fhir_tables.py``). Lookups are precomputed per type so that validation and index
extraction, which run on every write, never walk the raw table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PRIMITIVE_TYPES = frozenset(
    {
        "boolean",
        "integer",
        "string",
        "decimal",
        "uri",
        "url",
        "canonical",
        "base64Binary",
        "instant",
        "date",
        "dateTime",
        "time",
        "code",
        "oid",
        "id",
        "markdown",
        "unsignedInt",
        "positiveInt",
        "uuid",
        "xhtml",
    }
)


@dataclass(frozen=True, slots=True)
class ElementDef:
    """One element of a type: its name, allowed types, cardinality and required binding."""

    name: str
    types: tuple[str, ...]
    min: int
    many: bool
    choice: bool = False
    binding: str | None = None
    targets: tuple[str, ...] = ()
    modifier: bool = False
    summary: bool = False


@dataclass(frozen=True, slots=True)
class JsonKey:
    """What a JSON property name of an object of some type means: element and concrete type."""

    element: ElementDef
    type: str


@dataclass(frozen=True, slots=True)
class TypeDef:
    """A resource, complex datatype or backbone element with all its elements (inherited ones included)."""

    name: str
    kind: str  # resource | complex-type | backbone
    elements: dict[str, ElementDef]
    keys: dict[str, JsonKey]  # JSON property → element and type (choices expanded: valueQuantity)
    required: tuple[ElementDef, ...]
    abstract: bool = False


def _load_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("rhip.fhir").joinpath("data").joinpath(name).read_text("utf-8")
    )
    return data


@cache
def raw_table(name: str) -> dict[str, Any]:
    """A derived data table by file name (cached)."""
    return _load_json(name)


def _upper_first(name: str) -> str:
    return name[:1].upper() + name[1:]


class StructureTable:
    """Query the R4 structure table. Build one per process with :func:`structure`."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._raw: dict[str, Any] = data["types"]
        self.resource_types: frozenset[str] = frozenset(data["resourceTypes"])
        self.primitive_regex: dict[str, str | None] = {k: v["regex"] for k, v in data["primitives"].items()}
        self._types: dict[str, TypeDef] = {}

    def is_resource_type(self, name: str) -> bool:
        """Whether ``name`` is a concrete R4 resource type."""
        return name in self.resource_types

    def has_type(self, name: str) -> bool:
        """Whether ``name`` is a known complex type, backbone element or resource."""
        return name in self._raw

    def type(self, name: str) -> TypeDef:
        """The definition of a resource, datatype or backbone element (with inherited elements)."""
        found = self._types.get(name)
        if found is None:
            found = self._build(name)
            self._types[name] = found
        return found

    def _build(self, name: str) -> TypeDef:
        raw = self._raw[name]
        elements: dict[str, ElementDef] = {}
        chain = []
        cursor: str | None = name
        while cursor:
            chain.append(self._raw[cursor])
            cursor = self._raw[cursor].get("base")
            if cursor not in self._raw:
                cursor = None
        for layer in reversed(chain):
            for el_name, el in layer["elements"].items():
                elements[el_name] = ElementDef(
                    name=el_name,
                    types=tuple(el["types"]),
                    min=int(el["min"]),
                    many=el["max"] != "1" and el["max"] != "0",
                    choice=bool(el.get("choice")),
                    binding=el.get("binding"),
                    targets=tuple(el.get("targets", ())),
                    modifier=bool(el.get("modifier")),
                    summary=bool(el.get("summary")),
                )
        if raw["kind"] == "resource":
            elements.pop("resourceType", None)
        keys: dict[str, JsonKey] = {}
        for el in elements.values():
            if el.choice:
                for t in el.types:
                    keys[el.name + _upper_first(t)] = JsonKey(el, t)
            else:
                keys[el.name] = JsonKey(el, el.types[0] if el.types else "string")
        required = tuple(el for el in elements.values() if el.min > 0)
        return TypeDef(name, raw["kind"], elements, keys, required, bool(raw.get("abstract")))

    def element_type(self, owner: str, element: str) -> tuple[str, ...]:
        """The types an element of ``owner`` may take (several for choice elements)."""
        el = self.type(owner).elements.get(element)
        return el.types if el else ()


@cache
def structure() -> StructureTable:
    """The process-wide structure table (immutable once built)."""
    return StructureTable(raw_table("r4-structure.json"))
