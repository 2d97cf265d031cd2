"""Parse FHIR search query parameters into a :class:`SearchQuery`.

Handles modifiers, prefixes, escaping (``\\,`` ``\\|`` ``\\$``), chains (one and two levels), ``_has``
(nested), composites, compartments and the result parameters. Unknown parameters raise
:class:`UnknownSearchParameter` under ``Prefer: handling=strict`` and are recorded in
``SearchQuery.ignored`` otherwise; a known parameter used wrongly is always a 400.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, tzinfo

from rhip.core.errors import InvalidRequest, NotSupported, UnknownSearchParameter
from rhip.fhir.search.extract import parse_reference
from rhip.fhir.search.params import RESULT_PARAMS, SearchParam, SearchParamRegistry, patient_compartment
from rhip.fhir.search.query import (
    ChainFilter,
    CompartmentFilter,
    CompositeValue,
    Filter,
    HasFilter,
    IdFilter,
    IncludeSpec,
    LastUpdatedFilter,
    ParamFilter,
    QuantityValue,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from rhip.fhir.search.values import (
    DateFormatError,
    date_range,
    implicit_range,
    normalize_string,
    parse_decimal,
)

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")
_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)(?=[\d\-.])")
MODIFIERS: dict[str, frozenset[str]] = {
    "string": frozenset({"exact", "contains", "missing"}),
    "token": frozenset({"text", "not", "missing", "of-type", "above", "below", "in", "not-in"}),
    "date": frozenset({"missing"}),
    "number": frozenset({"missing"}),
    "quantity": frozenset({"missing"}),
    "reference": frozenset({"missing", "identifier"}),
    "uri": frozenset({"missing", "below", "above"}),
    "composite": frozenset({"missing"}),
    "special": frozenset(),
}
UNSUPPORTED_MODIFIERS = frozenset({"above", "below", "in", "not-in"})  # on tokens: need terminology
SUMMARY_VALUES = frozenset({"true", "false", "count", "data", "text"})
TOTAL_VALUES = frozenset({"none", "estimate", "accurate"})


def split_unescaped(text: str, sep: str) -> list[str]:
    """Split at ``sep`` characters not preceded by a backslash, keeping escapes for a later unescape."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """Remove search-value escapes: ``\\,`` ``\\|`` ``\\$`` ``\\\\``."""
    return re.sub(r"\\([,|$\\])", r"\1", text)


class SearchParser:
    """Parses query parameters for one registry, zone (for dates) and server base URL."""

    def __init__(
        self,
        registry: SearchParamRegistry,
        zone: tzinfo,
        base_urls: tuple[str, ...] = (),
        default_count: int = 20,
        max_count: int = 1000,
    ) -> None:
        self.registry = registry
        self.zone = zone
        self.base_urls = tuple(b.rstrip("/") for b in base_urls)
        self.default_count = default_count
        self.max_count = max_count

    def parse(
        self,
        resource_type: str,
        params: Sequence[tuple[str, str]],
        *,
        strict: bool = False,
        compartment: tuple[str, str] | None = None,
        now: datetime | None = None,
    ) -> SearchQuery:
        """Parse ``(name, value)`` pairs (repeats allowed) for a search on ``resource_type``."""
        if not self.registry.table.is_resource_type(resource_type):
            raise InvalidRequest(f"Unknown resource type '{resource_type}'")
        query = SearchQuery(resource_type=resource_type, count=self.default_count)
        if compartment is not None:
            query.filters.append(self._compartment(resource_type, *compartment))
        self._now = now or datetime.now(self.zone)
        for name, value in params:
            if _CONTROL.search(value) or _CONTROL.search(name):
                raise InvalidRequest(
                    f"Search parameter '{name[:40]}' holds a control character", expression=[name[:40]]
                )
            if name.split(":", 1)[0] in RESULT_PARAMS:
                self._result_param(query, name, value, strict)
                continue
            try:
                flt = self._filter(resource_type, name, value, depth=0)
            except UnknownSearchParameter as exc:
                if strict:
                    raise
                query.ignored.append((name, exc.message))
                continue
            query.filters.append(flt)
            query.canonical.append((name, value))
        return query

    # -- result parameters ------------------------------------------------------------------------
    def _result_param(self, query: SearchQuery, name: str, value: str, strict: bool) -> None:
        if name == "_count":
            try:
                count = int(value)
            except ValueError as exc:
                raise InvalidRequest(
                    f"_count must be a whole number, not '{value}'", expression=["_count"]
                ) from exc
            if count < 0:
                raise InvalidRequest("_count must not be negative", expression=["_count"])
            query.count = min(count, self.max_count)
            if count == 0 and query.summary is None:
                query.summary = "count"  # _count=0 asks for the total only
        elif name == "_sort":
            for key in value.split(","):
                key = key.strip()
                if not key:
                    continue
                desc = key.startswith("-")
                code = key.lstrip("-")
                param = self.registry.get(query.resource_type, code)
                if param is None or param.type in ("composite", "special"):
                    raise InvalidRequest(
                        f"Cannot sort {query.resource_type} by '{code}'", expression=["_sort"]
                    )
                query.sort.append(SortKey(code, None if param.column else param, desc))
        elif name in ("_include", "_revinclude"):
            spec = self._include(value, name, iterate=False)
            (query.includes if name == "_include" else query.revincludes).append(spec)
        elif name in ("_include:iterate", "_include:recurse", "_revinclude:iterate", "_revinclude:recurse"):
            spec = self._include(value, name, iterate=True)
            (query.includes if name.startswith("_include") else query.revincludes).append(spec)
            query.canonical.append((name, value))
            return
        elif name == "_summary":
            if value not in SUMMARY_VALUES:
                raise InvalidRequest(
                    f"_summary must be one of {sorted(SUMMARY_VALUES)}", expression=["_summary"]
                )
            query.summary = value
        elif name == "_total":
            if value not in TOTAL_VALUES:
                raise InvalidRequest(f"_total must be one of {sorted(TOTAL_VALUES)}", expression=["_total"])
            query.total = value
        elif name == "_elements":
            query.elements = tuple(e.strip() for e in value.split(",") if e.strip())
        elif name in ("_page", "_getpages"):
            query.page = value
            return
        elif name in ("_format", "_pretty"):
            return
        else:
            if strict:
                raise UnknownSearchParameter(f"Parameter '{name}' is not supported for this search")
            query.ignored.append((name, "not supported for this search"))
            return
        query.canonical.append((name, value))

    def _include(self, value: str, name: str, iterate: bool) -> IncludeSpec:
        parts = value.split(":")
        if len(parts) not in (2, 3):
            raise InvalidRequest(
                f"{name} must be Type:parameter[:TargetType], not '{value}'", expression=[name]
            )
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        if not self.registry.table.is_resource_type(source):
            raise InvalidRequest(f"{name}: unknown resource type '{source}'", expression=[name])
        if code == "*":
            params = tuple(self.registry.reference_params(source))
        else:
            param = self.registry.get(source, code)
            if param is None or param.type != "reference":
                raise InvalidRequest(
                    f"{name}: '{code}' is not a reference parameter of {source}", expression=[name]
                )
            params = (param,)
        if target is not None and not self.registry.table.is_resource_type(target):
            raise InvalidRequest(f"{name}: unknown target type '{target}'", expression=[name])
        return IncludeSpec(source, params, target, iterate, value)

    # -- filters ----------------------------------------------------------------------------------
    def _compartment(self, resource_type: str, comp_type: str, comp_id: str) -> CompartmentFilter:
        if comp_type != "Patient":
            raise NotSupported(f"Compartment {comp_type} is not supported; only Patient compartments are")
        codes = patient_compartment().get(resource_type)
        if not codes:
            raise InvalidRequest(f"{resource_type} is not part of the Patient compartment")
        params = tuple(p for c in codes if (p := self.registry.get(resource_type, c)) is not None)
        return CompartmentFilter(resource_type, params, comp_type, comp_id)

    def _filter(self, resource_type: str, name: str, value: str, depth: int) -> Filter:
        if name.startswith("_has:"):
            return self._has(resource_type, name, value, depth)
        head, dot, rest = name.partition(".")
        code, _, modifier = head.partition(":")
        param = self.registry.get(resource_type, code)
        if param is None:
            raise UnknownSearchParameter(
                f"Unknown search parameter '{code}' for {resource_type}", expression=[name]
            )
        if dot:
            return self._chain(resource_type, param, modifier or None, rest, value, depth)
        if code == "_id":
            if modifier:
                raise InvalidRequest(f"Modifier ':{modifier}' is not supported on _id", expression=[name])
            return IdFilter(resource_type, tuple(unescape(v) for v in split_unescaped(value, ",") if v))
        if code == "_lastUpdated":
            if modifier:
                raise InvalidRequest(
                    f"Modifier ':{modifier}' is not supported on _lastUpdated", expression=[name]
                )
            return LastUpdatedFilter(
                resource_type, tuple(self._range(v, "date", name) for v in split_unescaped(value, ","))
            )
        return self._param_filter(resource_type, param, modifier or None, value, name)

    def _param_filter(
        self, resource_type: str, param: SearchParam, modifier: str | None, value: str, name: str
    ) -> ParamFilter:
        ptype = param.type
        if modifier is not None:
            allowed = MODIFIERS.get(ptype, frozenset())
            type_modifier = ptype == "reference" and self.registry.table.is_resource_type(modifier)
            if modifier not in allowed and not type_modifier:
                raise InvalidRequest(
                    f"Modifier ':{modifier}' is not valid for {ptype} parameter '{param.code}'",
                    expression=[name],
                )
            if ptype == "token" and modifier in UNSUPPORTED_MODIFIERS:
                raise NotSupported(
                    f"Modifier ':{modifier}' needs terminology services, which this server does not offer yet",
                    expression=[name],
                )
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidRequest(f"':missing' takes true or false, not '{value}'", expression=[name])
            return ParamFilter(resource_type, param, modifier, (), missing=value == "true")
        raw_values = list(split_unescaped(value, ","))
        if any(v == "" for v in raw_values):
            raise InvalidRequest(f"Empty value for search parameter '{name}'", expression=[name])
        values = tuple(self._value(param, modifier, raw, name) for raw in raw_values)
        return ParamFilter(resource_type, param, modifier, values)

    def _value(self, param: SearchParam, modifier: str | None, raw: str, name: str) -> Value | CompositeValue:
        ptype = param.type
        if ptype == "composite":
            return self._composite(param, raw, name)
        if ptype == "token" and modifier == "text":
            text = unescape(raw)
            return StringValue(text, normalize_string(text))
        if ptype == "reference" and modifier == "identifier":
            return self._token(raw)
        return self._typed(ptype, raw, name, param, modifier)

    def _typed(
        self, ptype: str, raw: str, name: str, param: SearchParam | None = None, modifier: str | None = None
    ) -> Value:
        if ptype == "string":
            text = unescape(raw)
            return StringValue(text, normalize_string(text))
        if ptype == "token":
            return self._token(raw)
        if ptype in ("date", "number"):
            return self._range(raw, ptype, name)
        if ptype == "quantity":
            return self._quantity(raw, name)
        if ptype == "reference":
            return self._reference(raw, param, modifier, name)
        if ptype == "uri":
            return UriValue(unescape(raw))
        raise NotSupported(f"Search parameters of type {ptype} are not supported", expression=[name])

    def _token(self, raw: str) -> TokenValue:
        parts = split_unescaped(raw, "|")
        if len(parts) == 1:
            return TokenValue(None, unescape(parts[0]))
        system = unescape(parts[0])
        code = unescape("|".join(parts[1:]))
        return TokenValue(system, code or None)

    def _range(self, raw: str, ptype: str, name: str) -> RangeValue:
        m = _PREFIX.match(raw)
        prefix = m.group(1) if m else "eq"
        body = unescape(raw[2:] if m else raw)
        if ptype == "date":
            try:
                low, high = date_range(body, self.zone)
            except DateFormatError as exc:
                raise InvalidRequest(f"'{body}' is not a valid date for '{name}'", expression=[name]) from exc
            if prefix == "ap":
                now_us = (self._now.timestamp()) * 1_000_000
                margin = max(86_400_000_000.0, abs(now_us - low) * 0.1)
                return RangeValue(prefix, low - margin, high + margin, float(low))
            return RangeValue(prefix, float(low), float(high), float(low))
        try:
            number = parse_decimal(body)
        except ValueError as exc:
            raise InvalidRequest(f"'{body}' is not a valid number for '{name}'", expression=[name]) from exc
        low_f, high_f = implicit_range(number)
        if prefix == "ap":
            margin = abs(float(number)) * 0.1
            low_f, high_f = float(number) - margin, float(number) + margin
        return RangeValue(prefix, low_f, high_f, float(number))

    def _quantity(self, raw: str, name: str) -> QuantityValue:
        parts = split_unescaped(raw, "|")
        number = self._range(parts[0], "number", name)
        system = unescape(parts[1]) if len(parts) > 1 and parts[1] else None
        unit = unescape("|".join(parts[2:])) if len(parts) > 2 and parts[2] else None
        return QuantityValue(number.prefix, number.low, number.high, number.value, system, unit)

    def _reference(
        self, raw: str, param: SearchParam | None, modifier: str | None, name: str
    ) -> ReferenceValue:
        text = unescape(raw)
        rtype, rid, url = parse_reference(text, self.base_urls)
        if rtype is None and rid is None:
            if url and "/" not in url and ":" not in url:
                # A bare id: the type comes from the modifier or the parameter's single target.
                rtype = modifier
                if rtype is None and param is not None and len(param.targets) == 1:
                    rtype = param.targets[0]
                return ReferenceValue(rtype, url, None)
            if url:
                return ReferenceValue(None, None, url)
            raise InvalidRequest(f"'{text}' is not a valid reference for '{name}'", expression=[name])
        if modifier and rtype and modifier != rtype and modifier not in ("identifier",):
            raise InvalidRequest(
                f"Reference '{text}' does not match the type modifier ':{modifier}'", expression=[name]
            )
        # An absolute URL of another server is matched by URL, never as a local Type/id.
        return ReferenceValue(rtype, None if url else rid, url)

    def _composite(self, param: SearchParam, raw: str, name: str) -> CompositeValue:
        parts = split_unescaped(raw, "$")
        if len(parts) != len(param.components):
            raise InvalidRequest(
                f"Composite parameter '{param.code}' takes {len(param.components)} values joined by '$'",
                expression=[name],
            )
        keys: list[str] = []
        for comp, part in zip(param.components[:-1], parts[:-1], strict=True):
            if comp.type == "token":
                token = self._token(part)
                if token.code is None:
                    raise InvalidRequest(
                        f"Composite '{param.code}' needs a code in its first component", expression=[name]
                    )
                keys.append(f"{token.system}|{token.code}" if token.system else token.code)
            elif comp.type == "string":
                keys.append(normalize_string(unescape(part)))
            elif comp.type in ("reference", "uri"):
                keys.append(unescape(part))
            else:
                raise NotSupported(
                    f"Composite '{param.code}': only equality is supported on leading {comp.type} components",
                    expression=[name],
                )
        last = param.components[-1]
        return CompositeValue("$".join(keys), self._typed(last.type, parts[-1], name), last.type)

    def _chain(
        self,
        resource_type: str,
        param: SearchParam,
        type_modifier: str | None,
        rest: str,
        value: str,
        depth: int,
    ) -> ChainFilter:
        if param.type != "reference":
            raise InvalidRequest(f"Cannot chain through '{param.code}': it is not a reference parameter")
        if depth >= 2:
            raise NotSupported("Chains deeper than two levels are not supported")
        targets: tuple[str, ...]
        if type_modifier:
            if not self.registry.table.is_resource_type(type_modifier):
                raise InvalidRequest(f"Unknown resource type '{type_modifier}' in chain")
            targets = (type_modifier,)
        else:
            targets = param.targets
        inner_code = rest.split(".", 1)[0].split(":", 1)[0]
        usable = tuple(
            t for t in targets if self.registry.get(t, inner_code) is not None or inner_code == "_has"
        )
        if not usable:
            raise UnknownSearchParameter(f"No target of '{param.code}' has a search parameter '{inner_code}'")
        return ChainFilter(
            resource_type, param, tuple((t, self._filter(t, rest, value, depth + 1)) for t in usable)
        )

    def _has(self, resource_type: str, name: str, value: str, depth: int) -> HasFilter:
        parts = name.split(":", 3)
        if len(parts) < 4:
            raise InvalidRequest(f"'{name}' must be _has:Type:reference:parameter")
        _, source, ref_code, rest = parts
        if not self.registry.table.is_resource_type(source):
            raise InvalidRequest(f"_has: unknown resource type '{source}'")
        ref_param = self.registry.get(source, ref_code)
        if ref_param is None or ref_param.type != "reference":
            raise InvalidRequest(f"_has: '{ref_code}' is not a reference parameter of {source}")
        if depth >= 2:
            raise NotSupported("_has nested deeper than two levels is not supported")
        inner = self._filter(source, rest, value, depth + 1)
        return HasFilter(resource_type, source, ref_param, inner)
