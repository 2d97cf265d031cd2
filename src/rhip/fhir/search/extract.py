"""Index extraction: a resource → the normalised values of every search parameter of its type.

Pure and storage-agnostic: the store turns these entries into rows with hashed columns. Entries are
plain tuples (this runs for every resource written) and are de-duplicated per resource, so one
resource contributes one row per distinct value, which lets single-parameter counts skip DISTINCT.

Composite parameters become entries of their last component's kind whose code carries the leading
components' values: ``code-value-quantity$http://loinc.org|8480-6`` (and the system-less form
``code-value-quantity$8480-6``), so a composite search is one indexed lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from rhip.fhir.fhirpath import Node, Nodes
from rhip.fhir.search.params import SearchParam, SearchParamRegistry, patient_compartment
from rhip.fhir.search.values import DateFormatError, date_range, normalize_string

StringEntry = tuple[str, str, str]  # code, normalised, exact
TokenEntry = tuple[str, str | None, str]  # code, system (None: element has none), code/value
DateEntry = tuple[str, int, int]  # code, low µs, high µs
NumberEntry = tuple[str, float]
QuantityEntry = tuple[str, str | None, str | None, float, float]  # code, system, unit code, low, high
ReferenceEntry = tuple[str, str | None, str | None, str | None]  # code, target type, target id, url
UriEntry = tuple[str, str]
Handler = Callable[[str, Any, str, "IndexEntries"], None]  # code, value, element type, entries
SHAPE_CACHE = 4096  # resource shapes (type and keys) whose parameters are remembered


@dataclass(slots=True)
class IndexEntries:
    """Everything a resource contributes to the search index."""

    strings: set[StringEntry] = field(default_factory=set)
    tokens: set[TokenEntry] = field(default_factory=set)
    dates: set[DateEntry] = field(default_factory=set)
    numbers: set[NumberEntry] = field(default_factory=set)
    quantities: set[QuantityEntry] = field(default_factory=set)
    references: set[ReferenceEntry] = field(default_factory=set)
    uris: set[UriEntry] = field(default_factory=set)
    compartment: str | None = None


@lru_cache(maxsize=16384)
def parse_reference(ref: str, base_urls: tuple[str, ...] = ()) -> tuple[str | None, str | None, str | None]:
    """Split a literal reference into (type, id, absolute url or None). Local server URLs become relative."""
    ref = ref.strip()
    for base in base_urls:
        if ref.startswith(base + "/"):
            ref = ref[len(base) + 1 :]
            break
    if ref.startswith(("#", "urn:")):
        return None, None, ref if ref.startswith("urn:") else None
    if "://" in ref:
        parts = ref.split("|", 1)[0].split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2], parts[-1], ref
        return None, None, ref
    parts = ref.split("/")
    if len(parts) >= 4 and parts[2] == "_history":
        parts = parts[:2]
    if len(parts) == 2 and parts[0][:1].isupper() and parts[1]:
        return parts[0], parts[1], None
    return None, None, ref or None


def _ignore(code: str, value: Any, typ: str, entries: IndexEntries) -> None:
    """Parameters of kinds without index rows of their own (special)."""


def _text_of(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


class IndexExtractor:
    """Extracts index entries with the registry's compiled expressions."""

    def __init__(
        self,
        registry: SearchParamRegistry,
        zone: tzinfo,
        base_urls: tuple[str, ...] = (),
        index_token_text: bool = True,
    ) -> None:
        self.registry = registry
        self.zone = zone
        self.base_urls = tuple(b.rstrip("/") for b in base_urls)
        self.index_token_text = index_token_text
        self._compartment = patient_compartment()
        self._params: dict[str, list[SearchParam]] = {}
        self._by_key: dict[str, tuple[dict[str, list[SearchParam]], list[SearchParam]]] = {}
        self._shapes: dict[tuple[str, ...], list[tuple[SearchParam, Handler]]] = {}
        self._compartment_codes: dict[str, list[tuple[str, ...]]] = {}
        self._handlers: dict[str, Handler] = {
            "token": self._token,
            "string": self._string,
            "date": self._date,
            "reference": self._reference,
            "uri": self._uri,
            "number": self._number,
            "quantity": self._quantity,
        }

    def params(self, resource_type: str) -> list[SearchParam]:
        """The indexed (non-column) parameters of a type."""
        found = self._params.get(resource_type)
        if found is None:
            found = [
                p
                for p in self.registry.for_type(resource_type).values()
                if p.extract is not None and not p.derived_from
            ]
            by_key: dict[str, list[SearchParam]] = {}
            always: list[SearchParam] = []
            for p in found:
                if p.first_keys is None:
                    always.append(p)
                for key in p.first_keys or ():
                    by_key.setdefault(key, []).append(p)
            # Request threads share this extractor: publish the lookup before the list that says it is built.
            self._by_key[resource_type] = (by_key, always)
            self._params[resource_type] = found
        return found

    def _present_params(
        self, resource_type: str, resource: dict[str, Any]
    ) -> list[tuple[SearchParam, Handler]]:
        """The parameters that can have values in this resource, in registry order, with their handlers.

        Cached by the resource's keys: resources of a kind mostly share their shape.
        """
        shape = (resource_type, *resource)
        found = self._shapes.get(shape)
        if found is not None:
            return found
        if resource_type not in self._by_key:
            self.params(resource_type)
        by_key, always = self._by_key[resource_type]
        chosen: dict[int, SearchParam] = {id(p): p for p in always}
        for key in resource:
            for p in by_key.get(key, ()):
                chosen[id(p)] = p
        found = [(p, self._handler(p.type)) for p in chosen.values()]
        if len(self._shapes) >= SHAPE_CACHE:
            self._shapes.clear()
        self._shapes[shape] = found
        return found

    def _handler(self, kind: str) -> Handler:
        return self._handlers.get(kind, _ignore)

    def extract(self, resource: dict[str, Any]) -> IndexEntries:
        """All index entries of one resource, plus its Patient-compartment id."""
        rtype = resource["resourceType"]
        entries = IndexEntries()
        cache: dict[Any, Any] = {}
        for param, handler in self._present_params(rtype, resource):
            nodes = cache.get(param.expression)
            if nodes is None:
                assert param.extract is not None
                nodes = param.extract(resource)
                cache[param.expression] = nodes
            if not nodes:
                continue
            if param.type == "composite":
                self._composite(param, nodes, resource, entries, cache)
            else:
                code = param.code
                for value, typ in nodes:
                    handler(code, value, typ, entries)
        entries.compartment = self._compartment_of(rtype, resource, entries)
        return entries

    def _compartment_of(self, rtype: str, resource: dict[str, Any], entries: IndexEntries) -> str | None:
        """The Patient whose compartment holds the resource: the first compartment parameter, in the
        CompartmentDefinition's order, that references a Patient; the smallest id among several."""
        if rtype == "Patient":
            rid = resource.get("id")
            return rid if isinstance(rid, str) else None
        codes = self._compartment_codes.get(rtype)
        if codes is None:
            codes = self._compartment_codes[rtype] = self._compartment_index_codes(rtype)
        if not codes:
            return None
        # (an id longer than 64 characters, which no resource can have, names no compartment)
        patients = [
            (code, tid)
            for code, ttype, tid, _url in entries.references
            if ttype == "Patient" and tid and len(tid) <= 64
        ]
        for group in codes:
            found = [tid for code, tid in patients if code in group]
            if found:
                return min(found)
        return None

    def _compartment_index_codes(self, rtype: str) -> list[tuple[str, ...]]:
        out = []
        for code in self._compartment.get(rtype) or ():
            param = self.registry.get(rtype, code)
            out.append(param.index_codes if param is not None else (code,))
        return out

    def add(self, kind: str, code: str, node: Node, entries: IndexEntries) -> None:
        """Add the entries of one extracted node for a parameter of ``kind``."""
        value, typ = node
        self._handler(kind)(code, value, typ, entries)

    def _date(self, code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        rng = self.date_of(value, typ)
        if rng:
            entries.dates.add((code, rng[0], rng[1]))

    @staticmethod
    def _uri(code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        if isinstance(value, str) and value:
            entries.uris.add((code, value))

    @staticmethod
    def _number(code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        if isinstance(value, int | float) and not isinstance(value, bool):
            entries.numbers.add((code, float(value)))
        elif isinstance(value, dict) and isinstance(value.get("value"), int | float):
            entries.numbers.add((code, float(value["value"])))

    def _token(self, code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        if isinstance(value, bool):
            entries.tokens.add((code, None, "true" if value else "false"))
        elif isinstance(value, str):
            if value:
                entries.tokens.add((code, None, value))
        elif isinstance(value, int | float):
            entries.tokens.add((code, None, str(value)))
        elif not isinstance(value, dict):
            return
        elif typ == "CodeableConcept":
            for coding in value.get("coding", ()):
                if isinstance(coding, dict):
                    self._coding(code, coding, entries)
            text = _text_of(value.get("text"))
            if text and self.index_token_text:
                self._text(code, text, entries)
        elif typ == "Coding":
            self._coding(code, value, entries)
        elif typ == "Identifier":
            val = value.get("value")
            if isinstance(val, str) and val:
                system = value.get("system")
                entries.tokens.add((code, system if isinstance(system, str) else None, val))
                idtype = value.get("type")
                if isinstance(idtype, dict):
                    for coding in idtype.get("coding", ()):
                        if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                            key = f"{coding.get('system') or ''}|{coding['code']}|{val}"
                            entries.tokens.add((code + ":of-type", None, key))
                    text = _text_of(idtype.get("text"))
                    if text and self.index_token_text:
                        self._text(code, text, entries)
        elif typ == "ContactPoint":
            val = value.get("value")
            if isinstance(val, str) and val:
                system = value.get("system")
                entries.tokens.add((code, system if isinstance(system, str) else None, val))
        elif typ == "Reference":
            ident = value.get("identifier")
            if isinstance(ident, dict):
                self._token(code, ident, "Identifier", entries)
        elif typ in ("Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity"):
            unit = value.get("code")
            if isinstance(unit, str):
                system = value.get("system")
                entries.tokens.add((code, system if isinstance(system, str) else None, unit))

    def _coding(self, code: str, coding: dict[str, Any], entries: IndexEntries) -> None:
        c = coding.get("code")
        system = coding.get("system")
        if isinstance(c, str) and c:
            entries.tokens.add((code, system if isinstance(system, str) else None, c))
        display = _text_of(coding.get("display"))
        if display and self.index_token_text:
            self._text(code, display, entries)

    @staticmethod
    def _text(code: str, text: str, entries: IndexEntries) -> None:
        # :text matches the normalised form only, so a display and a text that differ in case share a row.
        norm = normalize_string(text)
        entries.strings.add((code + ":text", norm, norm))

    def _string(self, code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        if isinstance(value, str):
            if value.strip():
                entries.strings.add((code, normalize_string(value), value[:200]))
            return
        if not isinstance(value, dict):
            return
        if typ == "HumanName":
            parts = [
                value.get("text"),
                value.get("family"),
                *value.get("given", ()),
                *value.get("prefix", ()),
                *value.get("suffix", ()),
            ]
        elif typ == "Address":
            parts = [
                value.get("text"),
                *value.get("line", ()),
                value.get("city"),
                value.get("district"),
                value.get("state"),
                value.get("postalCode"),
                value.get("country"),
            ]
        else:
            parts = [value.get("text"), value.get("display"), value.get("value")]
        for part in parts:
            if isinstance(part, str) and part.strip():
                entries.strings.add((code, normalize_string(part), part[:200]))

    def date_of(self, value: Any, typ: str) -> tuple[int, int] | None:
        """The microsecond range of a date-like node, or None when it has none."""
        try:
            if isinstance(value, str):
                return date_range(value, self.zone)
            if not isinstance(value, dict):
                return None
            if typ == "Period":
                start, end = value.get("start"), value.get("end")
                low = date_range(start, self.zone)[0] if isinstance(start, str) else None
                high = date_range(end, self.zone)[1] if isinstance(end, str) else None
                if low is None and high is None:
                    return None
                from rhip.fhir.search.values import MAX_US, MIN_US

                return (low if low is not None else MIN_US, high if high is not None else MAX_US)
            if typ == "Timing":
                ranges = [date_range(e, self.zone) for e in value.get("event", ()) if isinstance(e, str)]
                bounds = (value.get("repeat") or {}).get("boundsPeriod")
                if isinstance(bounds, dict):
                    rng = self.date_of(bounds, "Period")
                    if rng:
                        ranges.append(rng)
                if not ranges:
                    return None
                return min(r[0] for r in ranges), max(r[1] for r in ranges)
        except DateFormatError:
            return None
        return None

    def _reference(self, code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        if typ in ("canonical", "uri", "url") and isinstance(value, str):
            entries.references.add((code, None, None, value))
            return
        if not isinstance(value, dict):
            return
        ref = value.get("reference")
        if isinstance(ref, str) and ref:
            rtype, rid, url = parse_reference(ref, self.base_urls)
            if rtype is None and rid is None and url is None:
                return
            if rtype is None and isinstance(value.get("type"), str) and url is None:
                rtype = value["type"]
            # A resource on another server is known by its URL only: Patient/p3 there is not Patient/p3 here.
            entries.references.add((code, rtype, None if url else rid, url))
        ident = value.get("identifier")
        if isinstance(ident, dict):
            self._token(code + ":identifier", ident, "Identifier", entries)

    def _quantity(self, code: str, value: Any, typ: str, entries: IndexEntries) -> None:
        if not isinstance(value, dict):
            return
        if typ == "Range":
            low, high = value.get("low") or {}, value.get("high") or {}
            lv, hv = low.get("value"), high.get("value")
            if lv is None and hv is None:
                return
            unit_src = low if lv is not None else high
            entries.quantities.add(
                (
                    code,
                    unit_src.get("system"),
                    unit_src.get("code") or unit_src.get("unit"),
                    float(lv) if lv is not None else float("-inf"),
                    float(hv) if hv is not None else float("inf"),
                )
            )
            return
        if typ == "Money":
            amount = value.get("value")
            if isinstance(amount, int | float):
                entries.quantities.add(
                    (code, "urn:iso:std:iso:4217", value.get("currency"), float(amount), float(amount))
                )
            return
        number = value.get("value")
        if not isinstance(number, int | float) or isinstance(number, bool):
            return
        system = value.get("system") if isinstance(value.get("system"), str) else None
        unit = value.get("code") or value.get("unit")
        entries.quantities.add(
            (code, system, unit if isinstance(unit, str) else None, float(number), float(number))
        )

    def _composite(
        self,
        param: SearchParam,
        bases: Nodes,
        resource: dict[str, Any],
        entries: IndexEntries,
        cache: dict[Any, Any],
    ) -> None:
        root: Node = (resource, resource["resourceType"])
        *leading, last = param.components
        for base in bases:
            # The last component first: without its value there is nothing to index, and most composites
            # of a resource have none (an Observation has one kind of value).
            sk = (id(base[0]), last.expression, last.type)
            scratch = cache.get(sk)
            if scratch is None:
                scratch = IndexEntries()
                for node in last.evaluate([base], root):
                    self.add(last.type, "", node, scratch)
                cache[sk] = scratch
            if not (
                scratch.quantities
                or scratch.tokens
                or scratch.strings
                or scratch.dates
                or scratch.numbers
                or scratch.references
                or scratch.uris
            ):
                continue
            keys = [""]
            for comp in leading:
                ck = (id(base[0]), comp.expression, comp.type)
                values = cache.get(ck)
                if values is None:
                    values = self.composite_keys(comp.type, comp.evaluate([base], root))
                    cache[ck] = values
                keys = [f"{k}${v}" if k else v for k in keys for v in values]
                if not keys:
                    break
            if not keys:
                continue
            prefix = param.code + "$"
            for key in keys:
                code = prefix + key
                if scratch.quantities:
                    entries.quantities.update((code, s, u, lo, hi) for _c, s, u, lo, hi in scratch.quantities)
                if scratch.tokens:
                    entries.tokens.update((code, s, v) for c, s, v in scratch.tokens if not c)
                if scratch.strings:
                    entries.strings.update((code, n, x) for c, n, x in scratch.strings if not c)
                if scratch.dates:
                    entries.dates.update((code, lo, hi) for _c, lo, hi in scratch.dates)
                if scratch.numbers:
                    entries.numbers.update((code, v) for _c, v in scratch.numbers)
                if scratch.references:
                    entries.references.update((code, t, i, u) for c, t, i, u in scratch.references if not c)
                if scratch.uris:
                    entries.uris.update((code, u) for _c, u in scratch.uris)

    def composite_keys(self, kind: str, nodes: Nodes) -> list[str]:
        """Canonical strings of a leading composite component (token ``system|code`` and ``code``)."""
        scratch = IndexEntries()
        for node in nodes:
            self.add(kind, "", node, scratch)
        keys: list[str] = []
        for _c, system, val in scratch.tokens:
            keys.append(val)
            if system:
                keys.append(f"{system}|{val}")
        for c, norm, _exact in scratch.strings:
            if not c:
                keys.append(norm)
        for _c, rtype, rid, url in scratch.references:
            keys.append(f"{rtype}/{rid}" if rid else url or "")
        for _c, num in scratch.numbers:
            keys.append(format(Decimal(str(num)).normalize(), "f"))
        for _c, uri in scratch.uris:
            keys.append(uri)
        return sorted(set(keys))
