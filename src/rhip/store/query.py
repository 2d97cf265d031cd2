"""Search filters → SQL over the index tables.

A search is the intersection of its filters' pid sets. The most selective positive filter (by a static
ranking: ids and references before identifiers before codes before ranges) *drives* the query; every
other filter is a correlated ``EXISTS`` probe on the driver's pid through the index tables' pid index,
so a patient's observations are found from the patient reference and then checked, never the reverse.
Index rows exist only for current, non-deleted versions, so the resource table is not joined to filter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    exists,
    false,
    func,
    not_,
    or_,
    select,
)
from sqlalchemy.sql.elements import KeyedColumnElement

from rhip.core.errors import NotSupported
from rhip.fhir.search.query import (
    ChainFilter,
    CompartmentFilter,
    CompositeValue,
    Filter,
    HasFilter,
    IdFilter,
    LastUpdatedFilter,
    ParamFilter,
    QuantityValue,
    RangeValue,
    ReferenceValue,
    SortKey,
    StringValue,
    TokenValue,
    UriValue,
    Value,
)
from rhip.store.hashing import exact_hash, h64, identity, units_hashes
from rhip.store.tables import (
    idx_date,
    idx_number,
    idx_quantity,
    idx_reference,
    idx_string,
    idx_token,
    idx_uri,
    resource,
)

MAX_CHAR = "\U0010ffff"
TABLE_OF_TYPE: dict[str, Table] = {
    "string": idx_string,
    "token": idx_token,
    "date": idx_date,
    "number": idx_number,
    "quantity": idx_quantity,
    "reference": idx_reference,
    "uri": idx_uri,
}
# Token parameters whose values split the data in a few large groups: poor drivers.
LOW_SELECTIVITY_TOKENS = frozenset(
    {"status", "gender", "active", "category", "intent", "class", "type", "priority", "clinical-status",
     "verification-status", "deceased", "use", "language", "criticality", "mode", "kind"}
)  # fmt: skip


def token_condition(t: Any, rtype: str, codes: Sequence[str], values: Sequence[TokenValue]) -> ColumnElement[bool]:
    """Rows of ``idx_token`` alias ``t`` matching any of the token values under any of ``codes``.

    Every form seeks the (hash_identity, code) index: a code alone by equality, ``system|code`` by code
    plus the system-and-code hash, ``system|`` by the identity's range filtered on the system hash.
    """
    parts: list[ColumnElement[bool]] = []
    for code in codes:
        ident = identity(rtype, code)
        plain = sorted({v.code[:200] for v in values if v.code is not None and v.system is None})
        qualified = [v for v in values if v.code is not None and v.system is not None]
        systems = sorted({v.system or "" for v in values if v.code is None})
        if plain:
            parts.append(and_(t.c.hash_identity == ident, t.c.code.in_(plain) if len(plain) > 1 else t.c.code == plain[0]))
        if qualified:
            hashes = [h64(rtype, code, v.system or "", v.code or "") for v in qualified]
            codes_ = sorted({(v.code or "")[:200] for v in qualified})
            parts.append(and_(t.c.hash_identity == ident, t.c.code.in_(codes_) if len(codes_) > 1 else t.c.code == codes_[0],
                              t.c.hash_sys_value.in_(hashes) if len(hashes) > 1 else t.c.hash_sys_value == hashes[0]))  # fmt: skip
        if systems:
            hashes = [h64(rtype, code, s) for s in systems]
            parts.append(and_(t.c.hash_identity == ident, t.c.hash_sys.in_(hashes)))
    return parts[0] if len(parts) == 1 else or_(*parts)


def range_condition(low: Any, high: Any, v: RangeValue | QuantityValue, exact_value: bool = False) -> ColumnElement[bool]:
    """Target ranges ``[low, high]`` matching a prefixed search range (FHIR search semantics)."""
    p = v.prefix
    if p == "eq":
        return and_(low >= v.low, high <= v.high) if not exact_value else and_(low >= v.low, high < v.high)
    if p == "ne":
        return or_(low < v.low, high > v.high) if not exact_value else or_(low < v.low, high >= v.high)
    if exact_value:
        # Numbers and quantities compare against the value itself, not its precision range.
        ops = {
            "gt": high > v.value, "lt": low < v.value, "ge": high >= v.value, "le": low <= v.value,
            "sa": low > v.value, "eb": high < v.value,
        }  # fmt: skip
        if p in ops:
            return ops[p]
    else:
        ops = {
            "gt": high > v.high, "lt": low < v.low, "ge": high >= v.low, "le": low <= v.high,
            "sa": low > v.high, "eb": high < v.low,
        }  # fmt: skip
        if p in ops:
            return ops[p]
    if p == "ap":
        return and_(low <= v.high, high >= v.low)
    raise NotSupported(f"Unsupported prefix {p}")


class SqlSearch:
    """Builds SQL for the filters of a search."""

    # -- per-filter conditions on an index-table alias ------------------------------------------
    def _param_rows(self, f: ParamFilter, values: Sequence[Value | CompositeValue] | None = None) -> tuple[Any, ColumnElement[bool]]:
        """The index table alias and the row condition of a (positive) parameter filter."""
        rtype, param = f.resource_type, f.param
        codes = param.index_codes
        kind = param.type
        values = f.values if values is None else values
        if kind == "composite":
            if not values:
                # :missing on a composite: any row of its first-component identity is not tracked.
                raise NotSupported(f"':missing' is not supported on composite parameter '{code}'")
            first = values[0]
            assert isinstance(first, CompositeValue)
            table = TABLE_OF_TYPE[first.last_type].alias()
            conds = []
            for v in values:
                assert isinstance(v, CompositeValue)
                if v.last_type != first.last_type:
                    raise NotSupported("Composite values of different kinds")
                conds.append(self._typed_condition(table, first.last_type, rtype, [f"{c}${v.key}" for c in codes], None, [v.last]))
            return table, or_(*conds) if len(conds) > 1 else conds[0]
        if kind == "token" and f.modifier == "text":
            table = idx_string.alias()
            return table, self._typed_condition(table, "string", rtype, [c + ":text" for c in codes], None, values)
        if kind == "token" and f.modifier == "of-type":
            table = idx_token.alias()
            keys = [TokenValue("", f"{v.system or ''}|{v.code}") for v in values if isinstance(v, TokenValue)]
            return table, token_condition(table, rtype, [c + ":of-type" for c in codes], keys)
        if kind == "reference" and f.modifier == "identifier":
            table = idx_token.alias()
            return table, token_condition(table, rtype, [c + ":identifier" for c in codes], [v for v in values if isinstance(v, TokenValue)])
        table = TABLE_OF_TYPE[kind].alias()
        if not values:  # :missing
            return table, _identity_in(table, rtype, codes)
        return table, self._typed_condition(table, kind, rtype, codes, f.modifier, values)

    def _typed_condition(self, t: Any, kind: str, rtype: str, codes: Sequence[str], modifier: str | None,
                         values: Sequence[Any]) -> ColumnElement[bool]:  # fmt: skip
        if len(codes) > 1 and kind != "token":
            return or_(*(self._typed_condition(t, kind, rtype, [c], modifier, values) for c in codes))
        code = codes[0]
        ident = identity(rtype, code)
        if kind == "token":
            return token_condition(t, rtype, codes, values)
        if kind == "string":
            if modifier == "exact":
                conds = [and_(t.c.value_norm == v.norm, t.c.hash_exact == exact_hash(rtype, code, v.text[:200])) for v in values]
                return and_(t.c.hash_identity == ident, or_(*conds) if len(conds) > 1 else conds[0])
            if modifier == "contains":
                likes = [t.c.value_norm.like("%" + _like_escape(v.norm) + "%", escape="\\") for v in values]
                return and_(t.c.hash_identity == ident, or_(*likes))
            prefixes = [and_(t.c.value_norm >= v.norm, t.c.value_norm < v.norm + MAX_CHAR) for v in values]
            return and_(t.c.hash_identity == ident, or_(*prefixes) if len(prefixes) > 1 else prefixes[0])
        if kind == "date":
            conds = [range_condition(t.c.low, t.c.high, v) for v in values]
            return and_(t.c.hash_identity == ident, or_(*conds) if len(conds) > 1 else conds[0])
        if kind == "number":
            conds = [range_condition(t.c.value, t.c.value, v, exact_value=True) for v in values]
            return and_(t.c.hash_identity == ident, or_(*conds) if len(conds) > 1 else conds[0])
        if kind == "quantity":
            conds = []
            for v in values:
                assert isinstance(v, QuantityValue)
                # The value range is found through (hash_identity, low); units are checked on the row.
                cond = and_(t.c.hash_identity == ident, range_condition(t.c.low, t.c.high, v, exact_value=True))
                sys_units, units = units_hashes(rtype, code, v.system, v.unit)
                if v.unit is not None and v.system is not None:
                    cond = and_(cond, t.c.hash_sys_units == sys_units)
                elif v.unit is not None:
                    cond = and_(cond, t.c.hash_units == units)
                conds.append(cond)
            return or_(*conds) if len(conds) > 1 else conds[0]
        if kind == "reference":
            conds = []
            for v in values:
                assert isinstance(v, ReferenceValue)
                if v.id is not None:
                    c = t.c.target_id == v.id
                    conds.append(and_(c, t.c.target_type == v.type) if v.type else c)
                elif v.url is not None:
                    conds.append(and_(t.c.target_url.is_not(None), t.c.target_url == v.url[:512]))
            return and_(t.c.hash_identity == ident, or_(*conds) if len(conds) > 1 else conds[0])
        if kind == "uri":
            if modifier == "below":
                conds = [and_(t.c.uri >= v.uri, t.c.uri < v.uri + MAX_CHAR) for v in values]
                return and_(t.c.hash_identity == ident, or_(*conds))
            uris = [v.uri[:512] for v in values]
            if modifier == "above":
                uris = [p[:512] for v in values for p in _uri_prefixes(v.uri)]
            return and_(t.c.hash_identity == ident, t.c.uri.in_(uris) if len(uris) > 1 else t.c.uri == uris[0])
        raise NotSupported(f"Search parameters of type {kind} are not supported")

    # -- pid sets -------------------------------------------------------------------------------
    def pid_select(self, f: Filter) -> Select[Any]:
        """``SELECT pid`` of the resources a positive filter matches (may hold duplicates)."""
        if isinstance(f, ParamFilter):
            if f.missing is not None:
                return self._missing_select(f)
            table, cond = self._param_rows(f)
            return select(table.c.pid).where(cond)
        if isinstance(f, IdFilter):
            return select(resource.c.pid).where(resource.c.res_type == f.resource_type, resource.c.res_id.in_(f.ids),
                                                resource.c.deleted == false())  # fmt: skip
        if isinstance(f, LastUpdatedFilter):
            conds = [range_condition(resource.c.updated_us, resource.c.updated_us, v) for v in f.values]
            return select(resource.c.pid).where(resource.c.res_type == f.resource_type, resource.c.deleted == false(), or_(*conds))
        if isinstance(f, CompartmentFilter):
            link = idx_reference.alias()
            idents = [identity(f.resource_type, c) for p in f.params for c in p.index_codes]
            return select(link.c.pid).where(link.c.hash_identity.in_(idents), link.c.target_id == f.target_id,
                                            link.c.target_type == f.target_type)  # fmt: skip
        if isinstance(f, ChainFilter):
            link = idx_reference.alias()
            target = resource.alias()
            branches = [
                and_(link.c.target_type == ttype, target.c.pid.in_(self.pid_select(inner)))
                for ttype, inner in f.targets
            ]
            return (
                select(link.c.pid)
                .join(target, and_(target.c.res_type == link.c.target_type, target.c.res_id == link.c.target_id))
                .where(_identity_in(link, f.resource_type, f.param.index_codes), or_(*branches))
            )
        if isinstance(f, HasFilter):
            link = idx_reference.alias()
            target = resource.alias()
            return (
                select(target.c.pid)
                .join(link, and_(target.c.res_id == link.c.target_id, link.c.target_type == f.resource_type))
                .where(
                    target.c.res_type == f.resource_type,
                    _identity_in(link, f.source_type, f.param.index_codes),
                    link.c.pid.in_(self.pid_select(f.inner)),
                )
            )
        raise NotSupported(f"Unsupported filter {type(f).__name__}")

    def _missing_select(self, f: ParamFilter) -> Select[Any]:
        # Resources of the type that have (missing=false) or lack (missing=true) any value for the parameter.
        if f.param.type == "composite":
            raise NotSupported(f"':missing' is not supported on composite parameter '{f.param.code}'")
        table = TABLE_OF_TYPE[f.param.type].alias()
        has = exists().where(table.c.pid == resource.c.pid, _identity_in(table, f.resource_type, f.param.index_codes))
        return select(resource.c.pid).where(resource.c.res_type == f.resource_type, resource.c.deleted == false(),
                                            not_(has) if f.missing else has)  # fmt: skip

    def condition(self, f: Filter, pid: KeyedColumnElement[Any]) -> ColumnElement[bool]:
        """A condition on an outer ``pid`` column that holds when the resource matches ``f``."""
        if isinstance(f, ParamFilter) and f.missing is None:
            positive = ParamFilter(f.resource_type, f.param, None if f.modifier == "not" else f.modifier, f.values)
            table, cond = self._param_rows(positive)
            probe = exists().where(table.c.pid == pid, cond)
            return not_(probe) if f.modifier == "not" else probe
        if isinstance(f, ParamFilter):  # :missing
            if f.param.type == "composite":
                raise NotSupported(f"':missing' is not supported on composite parameter '{f.param.code}'")
            table = TABLE_OF_TYPE[f.param.type].alias()
            has = exists().where(table.c.pid == pid, _identity_in(table, f.resource_type, f.param.index_codes))
            return not_(has) if f.missing else has
        if isinstance(f, CompartmentFilter | ChainFilter):
            sub = self.pid_select(f)
            return sub.where(sub.selected_columns[0] == pid).exists()
        return pid.in_(self.pid_select(f))

    @staticmethod
    def rank(f: Filter) -> int:
        """How good a filter is at driving the query (lower is better); negative filters cannot drive."""
        if isinstance(f, IdFilter):
            return 0
        if isinstance(f, CompartmentFilter):
            return 1
        if isinstance(f, ChainFilter):
            return 5
        if isinstance(f, HasFilter):
            return 6
        if isinstance(f, LastUpdatedFilter):
            return 8
        if f.negated or f.missing is not None:
            return 100
        kind = f.param.type
        if kind == "reference":
            return 1 if f.modifier != "identifier" else 2
        if kind == "token":
            if f.modifier == "text":
                return 5
            if f.param.code in LOW_SELECTIVITY_TOKENS:
                return 9
            precise = all(isinstance(v, TokenValue) and v.system and v.code for v in f.values)
            return 2 if precise else 3
        if kind == "string":
            return 2 if f.modifier == "exact" else (7 if f.modifier == "contains" else 4)
        if kind == "uri":
            return 3
        if kind == "composite":
            return 3
        return 6

    @staticmethod
    def unique_rows(f: Filter) -> bool:
        """Whether the filter's pid select yields each pid at most once (no DISTINCT needed)."""
        if isinstance(f, IdFilter | LastUpdatedFilter):
            return True
        if isinstance(f, ParamFilter) and f.missing is None and len(f.values) == 1 and not f.negated and len(f.param.index_codes) == 1:
            v = f.values[0]
            if f.param.type == "token" and isinstance(v, TokenValue) and v.system is not None and v.code and not f.modifier:
                return True
            if f.param.type == "reference" and isinstance(v, ReferenceValue) and v.type and v.id and not f.modifier:
                return True
        return False

    def sort_column(self, key: SortKey, pid: KeyedColumnElement[Any]) -> ColumnElement[Any]:
        """A scalar expression to order by for one ``_sort`` key."""
        if key.code == "_id":
            return select(resource.c.res_id).where(resource.c.pid == pid).scalar_subquery()
        if key.code == "_lastUpdated":
            return select(resource.c.updated_us).where(resource.c.pid == pid).scalar_subquery()
        param = key.param
        assert param is not None
        table = TABLE_OF_TYPE[param.type]
        column = {
            "date": table.c.high if key.descending else table.c.low,
            "string": table.c.value_norm if "value_norm" in table.c else None,
            "token": table.c.code if "code" in table.c else None,
            "number": table.c.value if "value" in table.c else None,
            "quantity": table.c.low if "low" in table.c else None,
            "reference": table.c.target_id if "target_id" in table.c else None,
            "uri": table.c.uri if "uri" in table.c else None,
        }[param.type]
        assert column is not None
        agg = func.max(column) if key.descending else func.min(column)
        return select(agg).where(table.c.pid == pid, _identity_in(table, param.resource_type, param.index_codes)).scalar_subquery()


def _identity_in(t: Any, rtype: str, codes: Sequence[str]) -> ColumnElement[bool]:
    idents = [identity(rtype, c) for c in codes]
    return t.c.hash_identity == idents[0] if len(idents) == 1 else t.c.hash_identity.in_(idents)


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _uri_prefixes(uri: str) -> list[str]:
    parts = uri.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 2, -1)] or [uri]

