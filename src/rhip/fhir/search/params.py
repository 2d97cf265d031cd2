"""The search parameter registry: every official R4 SearchParameter per resource type, compiled.

Parameters come from ``data/r4-search-parameters.json``; their FHIRPath expressions are compiled once
(see :mod:`rhip.fhir.fhirpath`). ``_id`` and ``_lastUpdated`` are answered from resource columns and
are marked ``column``; ``_content``, ``_text``, ``_query`` and ``_filter`` are not offered.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from rhip.fhir.definitions import StructureTable, raw_table, structure
from rhip.fhir.fhirpath import Evaluator, FhirPathCompiler, Nodes
from rhip.fhir.fhirpath_codegen import StaticCompiler, as_relative_function, as_root_function

# Resource-level parameters answered by this server, and those it deliberately does not offer.
NOT_OFFERED = frozenset({"_content", "_text", "_query", "_filter"})
COLUMN_PARAMS = frozenset({"_id", "_lastUpdated"})
# Parameters that are part of search control rather than filters.
RESULT_PARAMS = frozenset(
    {
        "_sort",
        "_count",
        "_include",
        "_revinclude",
        "_summary",
        "_total",
        "_elements",
        "_contained",
        "_containedType",
        "_format",
        "_pretty",
        "_page",
        "_getpages",
        "_getpagesoffset",
        "_since",
        "_type",
        "_offset",
    }
)


@dataclass(frozen=True)
class Component:
    """One component of a composite parameter."""

    code: str
    type: str
    expression: str
    evaluate: Evaluator


@dataclass(frozen=True)
class SearchParam:
    """A search parameter bound to one resource type."""

    resource_type: str
    code: str
    type: str  # string | token | date | number | quantity | reference | uri | composite | special
    expression: str
    url: str
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    extract: Callable[[dict[str, Any]], Nodes] | None = field(default=None, compare=False, repr=False)
    # JSON keys of the resource the expression can read from; None when that cannot be told.
    first_keys: frozenset[str] | None = field(default=None, compare=False, repr=False)
    # Codes of the parameters whose union this one is (Observation combo-code = code | component-code).
    # Such a parameter stores no index rows of its own; searches on it look under its parts.
    derived_from: tuple[str, ...] = ()
    # For ``X.where(resolve() is T)`` where another parameter is ``X``: the only target type it admits.
    # Its values are read from that parameter's rows with this target type (Observation.patient is
    # Observation.subject pointing at a Patient), which saves an index row per clinical resource.
    restrict_target: str | None = None

    @property
    def index_codes(self) -> tuple[str, ...]:
        """The parameter codes under which this parameter's values are indexed."""
        return self.derived_from or (self.code,)

    @property
    def column(self) -> bool:
        """Whether the parameter is answered from the resource table rather than an index table."""
        return self.code in COLUMN_PARAMS


_TERM = re.compile(r"^\(*\s*(?P<root>[A-Z][A-Za-z]*)(?:\.(?P<step>[a-z][A-Za-z0-9]*))?(?P<rest>.*)$")
_RELATIVE = re.compile(r"^\(*\s*(?P<step>[a-z][A-Za-z0-9]*)")
_AS_TYPE = re.compile(r"^\(*\s*[a-z][A-Za-z0-9]*\s*(?:\.as\(|as\s+)(?P<type>[A-Za-z]+)\)?\)?$")


def _split_union(expression: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in expression:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return [p for p in parts if p]


def _keys_of(table: StructureTable, rtype: str, step: str) -> set[str]:
    el = table.type(rtype).elements.get(step)
    if el is None:
        return set()
    if el.choice:
        return {step + t[:1].upper() + t[1:] for t in el.types}
    return {step}


def _first_keys(
    table: StructureTable, rtype: str, expression: str, components: list[str]
) -> frozenset[str] | None:
    """The top-level JSON keys an expression reads, so extraction can skip absent parameters cheaply."""
    if not expression or "%" in expression:
        return None
    if any(marker in expression for marker in ("exists(", "empty(", "not(", " and ", " or ")):
        return None  # a boolean expression has a value (false) also when its elements are absent
    keys: set[str] = set()
    for part in _split_union(expression):
        m = _TERM.match(part)
        if not m or m["root"] not in (rtype, "Resource", "DomainResource"):
            return None
        if m["step"] is None:
            # The whole resource is the focus (composites on Observation): without a value for the last
            # component there is nothing to index, so its keys decide (valueQuantity for code-value-quantity).
            if m["rest"].strip(" )") or not components:
                return None
            cm = _RELATIVE.match(components[-1])
            if not cm:
                return None
            step_keys = _keys_of(table, rtype, cm["step"])
            narrowed = _AS_TYPE.search(components[-1])
            if narrowed:
                wanted = cm["step"] + narrowed["type"][:1].upper() + narrowed["type"][1:]
                step_keys = {k for k in step_keys if k.lower() == wanted.lower()} or step_keys
            keys |= step_keys
        else:
            keys |= _keys_of(table, rtype, m["step"])
    return frozenset(keys)


_RESOLVE_IS = re.compile(r"(?P<path>.+)\.where\(resolve\(\) is (?P<type>[A-Z][A-Za-z]+)\)")


def _with_derived(params: dict[str, SearchParam]) -> dict[str, SearchParam]:
    """Mark parameters whose expression is exactly the union of other parameters' expressions."""
    out = dict(params)
    for code, p in params.items():
        if p.extract is None:
            continue
        parts = set(_split_union(p.expression))
        comps = tuple(c.expression for c in p.components)
        cover: list[str] = []
        covered: set[str] = set()
        for other_code, q in sorted(params.items()):
            if (
                q is p
                or q.extract is None
                or q.type != p.type
                or tuple(c.expression for c in q.components) != comps
            ):
                continue
            q_parts = set(_split_union(q.expression))
            if q_parts < parts:
                cover.append(other_code)
                covered |= q_parts
        if cover and covered == parts:
            out[code] = replace(p, derived_from=tuple(cover))
    by_expression = {
        p.expression: code for code, p in params.items() if p.type == "reference" and p.extract is not None
    }
    for code, p in params.items():
        m = _RESOLVE_IS.fullmatch(p.expression)
        if p.type == "reference" and m and m["path"] in by_expression:
            out[code] = replace(
                p, derived_from=(by_expression[m["path"]],), restrict_target=m["type"], targets=(m["type"],)
            )
    return out


@dataclass(frozen=True)
class CustomParam:
    """A search parameter a capability defines beyond the official R4 ones (its own SearchParameter).

    ``expression`` is FHIRPath of the supported subset. ``derive`` is an index hook for values FHIRPath
    cannot compute (a name's pinyin): each node the expression yields becomes the strings it returns,
    indexed as the parameter's values; ``derive_name`` names it in the parameter's expression.
    """

    resource_type: str
    code: str
    type: str
    expression: str
    url: str
    targets: tuple[str, ...] = ()
    derive: Callable[[Any, str], Iterable[str]] | None = field(default=None, compare=False)
    derive_name: str = ""


def _deriving(
    base: Callable[[dict[str, Any]], Nodes], derive: Callable[[Any, str], Iterable[str]]
) -> Callable[[dict[str, Any]], Nodes]:
    def extract(resource: dict[str, Any]) -> Nodes:
        return [(text, "string") for value, typ in base(resource) for text in derive(value, typ)]

    return extract


class SearchParamRegistry:
    """Search parameters by resource type and code."""

    def __init__(self, table: StructureTable, data: Mapping[str, Any]) -> None:
        self.table = table
        compiler = FhirPathCompiler(table)
        static = StaticCompiler(table)

        def root_fn(expression: str, rtype: str) -> Callable[[dict[str, Any]], Nodes]:
            fast = static.compile(expression, rtype)
            return as_root_function(fast) if fast is not None else compiler.compile(expression)

        def relative_fn(expression: str) -> Evaluator:
            return as_relative_function(
                lambda t: static.compile(expression, t), compiler.compile_relative(expression)
            )

        self._root_fn = root_fn  # for the parameters capabilities add (extended)
        raw: Mapping[str, Mapping[str, Any]] = data["params"]
        common = {
            code: p
            for base in ("Resource", "DomainResource")
            for code, p in raw.get(base, {}).items()
            if code not in NOT_OFFERED
        }
        self._by_type: dict[str, dict[str, SearchParam]] = {}
        for rtype in sorted(table.resource_types):
            params: dict[str, SearchParam] = {}
            for code, p in {**common, **raw.get(rtype, {})}.items():
                if code in NOT_OFFERED or (not p["expression"] and code not in COLUMN_PARAMS):
                    continue
                expression = p["expression"]
                params[code] = SearchParam(
                    resource_type=rtype,
                    code=code,
                    type=p["type"],
                    expression=expression,
                    url=p["url"],
                    targets=tuple(p.get("targets", ())),
                    components=tuple(
                        Component(c["code"], c["type"], c["expression"], relative_fn(c["expression"]))
                        for c in p.get("components", ())
                    ),
                    extract=None if code in COLUMN_PARAMS else root_fn(expression, rtype),
                    first_keys=_first_keys(
                        table, rtype, expression, [c["expression"] for c in p.get("components", ())]
                    ),
                )
            self._by_type[rtype] = _with_derived(params)

    def extended(self, custom: Sequence[CustomParam]) -> SearchParamRegistry:
        """A registry with the official parameters and ``custom`` ones; ValueError for a taken code."""
        out = copy.copy(self)
        out._by_type = {t: dict(params) for t, params in self._by_type.items()}
        for c in custom:
            params = out._by_type.get(c.resource_type)
            if params is None or c.code in params or c.code.startswith("_"):
                raise ValueError(f"search parameter {c.resource_type}.{c.code}: unknown type or code taken")
            base = self._root_fn(c.expression, c.resource_type)
            params[c.code] = SearchParam(
                resource_type=c.resource_type,
                code=c.code,
                type=c.type,
                # The extractor shares nodes between parameters of one expression: a derived parameter's
                # expression names its function, so it never shares the nodes of the plain one.
                expression=c.expression if c.derive is None else f"({c.expression}).{c.derive_name}()",
                url=c.url,
                targets=c.targets,
                extract=base if c.derive is None else _deriving(base, c.derive),
                first_keys=_first_keys(self.table, c.resource_type, c.expression, []),
            )
        return out

    def for_type(self, resource_type: str) -> dict[str, SearchParam]:
        """Every parameter of a resource type by code (empty for unknown types)."""
        return self._by_type.get(resource_type, {})

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        """One parameter, or None when the type has no such parameter."""
        return self._by_type.get(resource_type, {}).get(code)

    def reference_params(self, resource_type: str) -> list[SearchParam]:
        """The reference parameters of a type, for ``_include=Type:*``."""
        return [p for p in self.for_type(resource_type).values() if p.type == "reference"]


@cache
def registry() -> SearchParamRegistry:
    """The process-wide registry of official R4 search parameters."""
    return SearchParamRegistry(structure(), raw_table("r4-search-parameters.json"))


@cache
def patient_compartment() -> dict[str, tuple[str, ...]]:
    """Resource type → the parameters that place a resource in a Patient's compartment."""
    data = raw_table("r4-compartment-patient.json")["resources"]
    return {rtype: tuple(params) for rtype, params in data.items()}
