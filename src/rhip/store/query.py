"""Search filters → SQL text over the index tables.

A search is the intersection of its filters' pid sets. The most selective positive filter (by a static
ranking: ids and references before identifiers before codes before ranges) *drives* the query; every
other filter is a correlated ``EXISTS`` probe on the driver's pid through the index tables' primary keys
(which start with pid), so a patient's observations are found from the patient reference and then
checked, never the reverse. Index rows exist only for current, non-deleted versions, so the resource
table is not joined to filter.

The statements are written as SQL text with named parameters rather than built as SQLAlchemy
expressions: a search is a few hundred microseconds of database work, and building and compiling the
expression objects cost twice that. The SQL is the portable subset both SQLite and PostgreSQL accept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from rhip.core.errors import NotSupported
from rhip.fhir.search.query import (
    AccessFilter,
    CareRelation,
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
    TokenValue,
    Value,
)
from rhip.store.hashing import exact_hash, h64, identity, units_hashes

MAX_CHAR = "\U0010ffff"
TABLE_OF_TYPE: dict[str, str] = {
    "string": "idx_string",
    "token": "idx_token",
    "date": "idx_date",
    "number": "idx_number",
    "quantity": "idx_quantity",
    "reference": "idx_reference",
    "uri": "idx_uri",
}
SORT_COLUMN = {
    "string": "value_norm",
    "token": "code",
    "number": "value",
    "quantity": "low",
    "reference": "target_id",
    "uri": "uri",
}
# Token parameters whose values split the data in a few large groups: poor drivers.
LOW_SELECTIVITY_TOKENS = frozenset(
    {
        "status",
        "gender",
        "active",
        "category",
        "intent",
        "class",
        "type",
        "priority",
        "clinical-status",
        "verification-status",
        "deceased",
        "use",
        "language",
        "criticality",
        "mode",
        "kind",
    }
)


class Sql:
    """Named parameters and table aliases of one statement, in the paramstyle of its database."""

    def __init__(self, dialect: str, prefix: str = "p") -> None:
        self.dialect = dialect
        self.prefix = prefix  # of placeholder names and aliases: fragments built apart keep their own
        self.params: dict[str, Any] = {}
        self._aliases = 0

    def bind(self, value: Any) -> str:
        """A placeholder for ``value``."""
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}" if self.dialect == "sqlite" else f"%({name})s"

    def binds(self, values: Sequence[Any]) -> str:
        """``(placeholder, …)`` for an IN list."""
        return "(" + ", ".join(self.bind(v) for v in values) + ")"

    def equal_or_in(self, column: str, values: Sequence[Any]) -> str:
        """``column = x`` or ``column IN (…)``."""
        return (
            f"{column} = {self.bind(values[0])}" if len(values) == 1 else f"{column} IN {self.binds(values)}"
        )

    def alias(self, table: str) -> str:
        """A fresh alias for ``table`` in this statement."""
        self._aliases += 1
        lead = "" if self.prefix == "p" else self.prefix
        return f"{lead}{table[:3]}{table[4:7]}{self._aliases}"


# The SQL of recent access filters: (filter, type, pid expression, dialect) -> (text, its parameters).
ACCESS_SQL_KEPT = 512
_ACCESS_SQL: OrderedDict[tuple[AccessFilter, str, str, str], tuple[str, dict[str, Any]]] = OrderedDict()
_ACCESS_LOCK = threading.Lock()


def _or(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def _identity_in(sql: Sql, col: str, rtype: str, codes: Sequence[str]) -> str:
    return sql.equal_or_in(col, [identity(rtype, c) for c in codes])


def range_condition(
    sql: Sql, low: str, high: str, v: RangeValue | QuantityValue, exact_value: bool = False
) -> str:
    """Target ranges ``[low, high]`` matching a prefixed search range (FHIR search semantics)."""
    p = v.prefix
    b = sql.bind
    if p == "eq":
        return f"({low} >= {b(v.low)} AND {high} {'<' if exact_value else '<='} {b(v.high)})"
    if p == "ne":
        return f"({low} < {b(v.low)} OR {high} {'>=' if exact_value else '>'} {b(v.high)})"
    if p == "ap":
        return f"({low} <= {b(v.high)} AND {high} >= {b(v.low)})"
    if exact_value:
        # Numbers and quantities compare against the value itself, not its precision range.
        ops = {
            "gt": (high, ">", v.value),
            "lt": (low, "<", v.value),
            "ge": (high, ">=", v.value),
            "le": (low, "<=", v.value),
            "sa": (low, ">", v.value),
            "eb": (high, "<", v.value),
        }
    else:
        ops = {
            "gt": (high, ">", v.high),
            "lt": (low, "<", v.low),
            "ge": (high, ">=", v.low),
            "le": (low, "<=", v.high),
            "sa": (low, ">", v.high),
            "eb": (high, "<", v.low),
        }
    if p not in ops:
        raise NotSupported(f"Unsupported prefix {p}")
    col, op, value = ops[p]
    return f"{col} {op} {b(value)}"


def token_condition(sql: Sql, t: str, rtype: str, codes: Sequence[str], values: Sequence[TokenValue]) -> str:
    """Rows of ``idx_token`` alias ``t`` matching any of the token values under any of ``codes``.

    Every form seeks the (hash_identity, code) index: a code alone by equality, ``system|code`` by code
    plus the system-and-code hash (carried by the index with the primary key), ``system|`` by the
    identity's range filtered on the system hash.
    """
    parts: list[str] = []
    plain = sorted({v.code[:200] for v in values if v.code is not None and v.system is None})
    qualified = [v for v in values if v.code is not None and v.system is not None]
    systems = sorted({v.system or "" for v in values if v.code is None})
    for code in codes:
        ident = sql.bind(identity(rtype, code))
        if plain:
            parts.append(f"({t}.hash_identity = {ident} AND {sql.equal_or_in(t + '.code', plain)})")
        if qualified:
            hashes = [h64(rtype, code, v.system or "", v.code or "") for v in qualified]
            value_codes = sorted({(v.code or "")[:200] for v in qualified})
            parts.append(
                f"({t}.hash_identity = {ident} AND {sql.equal_or_in(t + '.code', value_codes)} "
                f"AND {sql.equal_or_in(t + '.hash_sys_value', hashes)})"
            )
        if systems:
            hashes = [h64(rtype, code, s) for s in systems]
            parts.append(f"({t}.hash_identity = {ident} AND {sql.equal_or_in(t + '.hash_sys', hashes)})")
    return _or(parts)


class SqlSearch:
    """Builds SQL for the filters of one search (make one per statement: it owns the parameters)."""

    def __init__(self, dialect: str, prefix: str = "p") -> None:
        self.sql = Sql(dialect, prefix)

    # -- per-filter row conditions on an index-table alias ----------------------------------------
    def _param_rows(self, f: ParamFilter) -> tuple[str, str, str]:
        """``(table, alias, condition)`` of the index rows a positive parameter filter matches."""
        sql = self.sql
        rtype, param = f.resource_type, f.param
        codes = param.index_codes
        kind = param.type
        values = f.values
        if kind == "composite":
            if not values:
                raise NotSupported(f"':missing' is not supported on composite parameter '{param.code}'")
            first = values[0]
            assert isinstance(first, CompositeValue)
            table = TABLE_OF_TYPE[first.last_type]
            t = sql.alias(table)
            conds = []
            for v in values:
                assert isinstance(v, CompositeValue)
                if v.last_type != first.last_type:
                    raise NotSupported("Composite values of different kinds")
                conds.append(
                    self._typed(t, first.last_type, rtype, [f"{c}${v.key}" for c in codes], None, [v.last])
                )
            return table, t, _or(conds)
        if kind == "token" and f.modifier == "text":
            t = sql.alias("idx_string")
            return (
                "idx_string",
                t,
                self._typed(t, "string", rtype, [c + ":text" for c in codes], None, values),
            )
        if kind == "token" and f.modifier == "of-type":
            t = sql.alias("idx_token")
            keys = [TokenValue("", f"{v.system or ''}|{v.code}") for v in values if isinstance(v, TokenValue)]
            return "idx_token", t, token_condition(sql, t, rtype, [c + ":of-type" for c in codes], keys)
        if kind == "reference" and f.modifier == "identifier":
            t = sql.alias("idx_token")
            tokens = [v for v in values if isinstance(v, TokenValue)]
            return "idx_token", t, token_condition(sql, t, rtype, [c + ":identifier" for c in codes], tokens)
        table = TABLE_OF_TYPE[kind]
        t = sql.alias(table)
        restrict = param.restrict_target
        if not values:  # :missing
            cond = _identity_in(sql, f"{t}.hash_identity", rtype, codes)
            return table, t, f"({cond} AND {t}.target_type = {sql.bind(restrict)})" if restrict else cond
        return table, t, self._typed(t, kind, rtype, codes, f.modifier, values, restrict)

    def _typed(
        self,
        t: str,
        kind: str,
        rtype: str,
        codes: Sequence[str],
        modifier: str | None,
        values: Sequence[Any],
        restrict: str | None = None,
    ) -> str:
        sql = self.sql
        if kind == "token":
            return token_condition(sql, t, rtype, codes, values)
        if len(codes) > 1:
            return _or([self._typed(t, kind, rtype, [c], modifier, values, restrict) for c in codes])
        code = codes[0]
        ident = f"{t}.hash_identity = {sql.bind(identity(rtype, code))}"
        if kind == "string":
            if modifier == "exact":
                conds = [
                    f"({t}.value_norm = {sql.bind(v.norm)} AND {t}.hash_exact = {sql.bind(exact_hash(rtype, code, v.text[:200]))})"
                    for v in values
                ]
            elif modifier == "contains":
                conds = [
                    f"{t}.value_norm LIKE {sql.bind('%' + _like_escape(v.norm) + '%')} ESCAPE '\\'"
                    for v in values
                ]
            else:
                conds = [
                    f"({t}.value_norm >= {sql.bind(v.norm)} AND {t}.value_norm < {sql.bind(v.norm + MAX_CHAR)})"
                    for v in values
                ]
            return f"({ident} AND {_or(conds)})"
        if kind == "date":
            return f"({ident} AND {_or([range_condition(sql, f'{t}.low', f'{t}.high', v) for v in values])})"
        if kind == "number":
            return f"({ident} AND {_or([range_condition(sql, f'{t}.value', f'{t}.value', v, True) for v in values])})"
        if kind == "quantity":
            conds = []
            for v in values:
                assert isinstance(v, QuantityValue)
                # The value range is found through (hash_identity, pid, low, high); units are checked on the row.
                cond = range_condition(sql, f"{t}.low", f"{t}.high", v, True)
                sys_units, units = units_hashes(rtype, code, v.system, v.unit)
                if v.unit is not None and v.system is not None:
                    cond = f"{cond} AND {t}.hash_sys_units = {sql.bind(sys_units)}"
                elif v.unit is not None:
                    cond = f"{cond} AND {t}.hash_units = {sql.bind(units)}"
                conds.append(f"({cond})")
            return f"({ident} AND {_or(conds)})"
        if kind == "reference":
            conds = []
            # Ids of one target type go in one IN list: an OR of (id AND type) pairs keeps SQLite from
            # seeking the (hash_identity, target_id) index, and it scans the parameter's every row.
            by_type: dict[str | None, list[str]] = {}
            for v in values:
                assert isinstance(v, ReferenceValue)
                if v.id is not None:
                    by_type.setdefault(v.type, []).append(v.id)
                elif v.url is not None:
                    conds.append(f"({t}.target_url IS NOT NULL AND {t}.target_url = {sql.bind(v.url[:512])})")
            for target, ids in by_type.items():
                c = sql.equal_or_in(f"{t}.target_id", sorted(set(ids)))
                conds.insert(0, f"({c} AND {t}.target_type = {sql.bind(target)})" if target else c)
            restriction = f" AND {t}.target_type = {sql.bind(restrict)}" if restrict else ""
            return f"({ident} AND {_or(conds)}{restriction})"
        if kind == "uri":
            if modifier == "below":
                # The value itself, or the value followed by more path segments: http://a/b matches
                # http://a/b and http://a/b/c but not http://a/bc.
                conds = []
                for v in values:
                    below = v.uri if v.uri.endswith("/") else v.uri + "/"
                    prefix = f"({t}.uri >= {sql.bind(below)} AND {t}.uri < {sql.bind(below + MAX_CHAR)})"
                    conds.append(
                        prefix if below == v.uri else f"({t}.uri = {sql.bind(v.uri[:512])} OR {prefix})"
                    )
                return f"({ident} AND {_or(conds)})"
            uris = [v.uri[:512] for v in values]
            if modifier == "above":
                uris = [p[:512] for v in values for p in _uri_prefixes(v.uri)]
            return f"({ident} AND {sql.equal_or_in(t + '.uri', uris)})"
        raise NotSupported(f"Search parameters of type {kind} are not supported")

    # -- pid sets -------------------------------------------------------------------------------
    def pid_select(self, f: Filter) -> str:
        """``SELECT … AS pid`` of the resources a positive filter matches (may hold duplicates)."""
        sql = self.sql
        if isinstance(f, ParamFilter):
            if f.missing is not None:
                return self._missing_select(f)
            if f.modifier == "not":
                # Inside a chain or _has a :not filter is the resources of its type without the value.
                r = sql.alias("resource")
                return (
                    f"SELECT {r}.pid AS pid FROM resource {r} WHERE {r}.res_type = {sql.bind(f.resource_type)} "
                    f"AND {r}.deleted = FALSE AND {self.condition(f, r + '.pid')}"
                )
            table, t, cond = self._param_rows(f)
            return f"SELECT {t}.pid AS pid FROM {table} {t} WHERE {cond}"
        if isinstance(f, IdFilter):
            r = sql.alias("resource")
            return (
                f"SELECT {r}.pid AS pid FROM resource {r} WHERE {r}.res_type = {sql.bind(f.resource_type)} "
                f"AND {sql.equal_or_in(r + '.res_id', list(f.ids))} AND {r}.deleted = FALSE"
            )
        if isinstance(f, LastUpdatedFilter):
            r = sql.alias("resource")
            conds = _or([range_condition(sql, f"{r}.updated_us", f"{r}.updated_us", v) for v in f.values])
            return (
                f"SELECT {r}.pid AS pid FROM resource {r} WHERE {r}.res_type = {sql.bind(f.resource_type)} "
                f"AND {r}.deleted = FALSE AND {conds}"
            )
        if isinstance(f, CompartmentFilter):
            link = sql.alias("idx_reference")
            codes = [c for p in f.params for c in p.index_codes]
            idents = _identity_in(sql, link + ".hash_identity", f.resource_type, codes)
            return (
                f"SELECT {link}.pid AS pid FROM idx_reference {link} WHERE {idents} "
                f"AND {link}.target_id = {sql.bind(f.target_id)} AND {link}.target_type = {sql.bind(f.target_type)}"
            )
        if isinstance(f, ChainFilter):
            # From the targets that match the inner filter to the references that name them, through the
            # (hash_identity, target_id) index: a chain never scans every reference of its parameter.
            link = sql.alias("idx_reference")
            branches = []
            for ttype, inner in f.targets:
                target = sql.alias("resource")
                bound = sql.bind(ttype)
                branches.append(
                    f"({link}.target_type = {bound} AND {link}.target_id IN (SELECT {target}.res_id FROM resource {target} "
                    f"WHERE {target}.res_type = {bound} AND {target}.pid IN ({self.pid_select(inner)})))"
                )
            return (
                f"SELECT {link}.pid AS pid FROM idx_reference {link} "
                f"WHERE {_identity_in(sql, link + '.hash_identity', f.resource_type, f.param.index_codes)} AND {_or(branches)}"
            )
        if isinstance(f, HasFilter):
            link, target = sql.alias("idx_reference"), sql.alias("resource")
            if f.param.restrict_target not in (None, f.resource_type):
                # Observation:patient admits only Patients: a _has on any other type matches nothing.
                return f"SELECT {target}.pid AS pid FROM resource {target} WHERE 1 = 0"
            bound = sql.bind(f.resource_type)
            return (
                f"SELECT {target}.pid AS pid FROM resource {target} WHERE {target}.res_type = {bound} AND {target}.res_id IN "
                f"(SELECT {link}.target_id FROM idx_reference {link} WHERE {link}.target_type = {bound} "
                f"AND {_identity_in(sql, link + '.hash_identity', f.source_type, f.param.index_codes)} "
                f"AND {link}.pid IN ({self.pid_select(f.inner)}))"
            )
        raise NotSupported(f"Unsupported filter {type(f).__name__}")

    def access_condition(self, a: AccessFilter, rtype: str, pid: str) -> str:
        """A condition on an outer ``pid`` that holds when the security layer's filter lets the caller see it.

        The same caller's searches carry the same filter again and again: its SQL is built once, with
        placeholders and aliases of its own (prefix ``a``), and kept (:data:`_ACCESS_SQL`).
        """
        key = (a, rtype, pid, self.sql.dialect)
        try:
            with _ACCESS_LOCK:
                built = _ACCESS_SQL.get(key)
                if built is not None:
                    _ACCESS_SQL.move_to_end(key)
        except TypeError:  # a filter holding something unhashable: built here, not kept
            return self._access_condition(a, rtype, pid)
        if built is None:
            apart = SqlSearch(self.sql.dialect, prefix="a")
            built = (apart._access_condition(a, rtype, pid), apart.sql.params)
            with _ACCESS_LOCK:
                _ACCESS_SQL[key] = built
                if len(_ACCESS_SQL) > ACCESS_SQL_KEPT:
                    _ACCESS_SQL.popitem(last=False)
        text, params = built
        self.sql.params.update(params)
        return text

    def _access_condition(self, a: AccessFilter, rtype: str, pid: str) -> str:
        sql = self.sql
        r = sql.alias("resource")
        parts: list[str] = []
        if not a.everyone:
            allowed: list[str] = []
            if a.open_outside:
                allowed.append(f"{r}.compartment IS NULL")
            if a.compartments:
                allowed.append(sql.equal_or_in(f"{r}.compartment", sorted(a.compartments)))
            for rel in a.relations:
                if a.organizations if rel.reference.type == "reference" else a.own_sources:
                    allowed.append(f"{r}.compartment IN ({self._related(a, rel)})")
            if a.own_sources:
                allowed.append(self._own(a, rtype, r))
            parts.append(_or(allowed) if allowed else "1 = 0")
            if a.excluded:
                parts.append(
                    f"({r}.compartment IS NULL OR {r}.compartment NOT IN {sql.binds(sorted(a.excluded))})"
                )
        if a.hidden_codes or a.patient_hidden:
            t = sql.alias("idx_token")
            labels: list[str] = []
            if a.hidden_codes:
                labels.append(sql.equal_or_in(f"{t}.code", sorted(a.hidden_codes)))
            by_code: dict[str, list[str]] = {}
            for patient, code in a.patient_hidden:
                by_code.setdefault(code, []).append(patient)
            for code, patients in sorted(by_code.items()):
                # One term a label: the statement stays small however many residents hold it back.
                held = sql.equal_or_in(f"{r}.compartment", sorted(set(patients)))
                labels.append(f"({t}.code = {sql.bind(code)} AND {held})")
            ident = _identity_in(sql, f"{t}.hash_identity", rtype, a.security_param.index_codes)
            hide = (
                f"EXISTS (SELECT 1 FROM idx_token {t} WHERE {t}.pid = {r}.pid AND {ident} AND {_or(labels)})"
            )
            if a.own_sources:
                parts.append(f"(NOT {hide} OR {self._own(a, rtype, r)})")
            else:
                parts.append(f"NOT {hide}")
        if not parts:
            return "1 = 1"
        return f"EXISTS (SELECT 1 FROM resource {r} WHERE {r}.pid = {pid} AND {' AND '.join(parts)})"

    def _own(self, a: AccessFilter, rtype: str, r: str) -> str:
        """Whether the resource of alias ``r`` came from the caller's institution (its ``meta.source``)."""
        sql = self.sql
        u = sql.alias("idx_uri")
        ident = _identity_in(sql, f"{u}.hash_identity", rtype, a.source_param.index_codes)
        return (
            f"EXISTS (SELECT 1 FROM idx_uri {u} WHERE {u}.pid = {r}.pid AND {ident} "
            f"AND {sql.equal_or_in(u + '.uri', sorted(a.own_sources))})"
        )

    def _related(self, a: AccessFilter, rel: CareRelation) -> str:
        """The compartments that resources of one relation tie to the caller."""
        sql = self.sql
        source = rel.reference.resource_type
        if rel.reference.type == "uri":
            ref = sql.alias("idx_uri")
            cond = (
                f"{_identity_in(sql, ref + '.hash_identity', source, rel.reference.index_codes)} "
                f"AND {sql.equal_or_in(ref + '.uri', sorted(a.own_sources))} AND {ref}.compartment IS NOT NULL"
            )
            table = "idx_uri"
        else:
            ref = sql.alias("idx_reference")
            cond = (
                f"{_identity_in(sql, ref + '.hash_identity', source, rel.reference.index_codes)} "
                f"AND {sql.equal_or_in(ref + '.target_id', sorted(a.organizations))} "
                f"AND {ref}.target_type = {sql.bind('Organization')} AND {ref}.compartment IS NOT NULL"
            )
            table = "idx_reference"
        if rel.date is not None and a.since_us is not None:
            d = sql.alias("idx_date")
            ident = _identity_in(sql, d + ".hash_identity", source, rel.date.index_codes)
            cond += (
                f" AND EXISTS (SELECT 1 FROM idx_date {d} WHERE {d}.pid = {ref}.pid AND {ident} "
                f"AND {d}.high >= {sql.bind(a.since_us)}"
                + (f" AND {d}.low <= {sql.bind(a.until_us)})" if a.until_us is not None else ")")
            )
        return f"SELECT {ref}.compartment FROM {table} {ref} WHERE {cond}"

    def _missing_select(self, f: ParamFilter) -> str:
        # Resources of the type that have (missing=false) or lack (missing=true) any value for the parameter.
        sql = self.sql
        r = sql.alias("resource")
        has = self._has_any(f, f"{r}.pid")
        return (
            f"SELECT {r}.pid AS pid FROM resource {r} WHERE {r}.res_type = {sql.bind(f.resource_type)} "
            f"AND {r}.deleted = FALSE AND {'NOT ' if f.missing else ''}{has}"
        )

    def _has_any(self, f: ParamFilter, pid: str) -> str:
        if f.param.type == "composite":
            raise NotSupported(f"':missing' is not supported on composite parameter '{f.param.code}'")
        table = TABLE_OF_TYPE[f.param.type]
        t = self.sql.alias(table)
        ident = _identity_in(self.sql, f"{t}.hash_identity", f.resource_type, f.param.index_codes)
        if f.param.restrict_target:
            ident += f" AND {t}.target_type = {self.sql.bind(f.param.restrict_target)}"
        return f"EXISTS (SELECT 1 FROM {table} {t} WHERE {t}.pid = {pid} AND {ident})"

    def condition(self, f: Filter, pid: str) -> str:
        """A condition on an outer ``pid`` expression that holds when the resource matches ``f``."""
        if isinstance(f, ParamFilter) and f.missing is None:
            positive = ParamFilter(
                f.resource_type, f.param, None if f.modifier == "not" else f.modifier, f.values
            )
            table, t, cond = self._param_rows(positive)
            probe = f"EXISTS (SELECT 1 FROM {table} {t} WHERE {t}.pid = {pid} AND {cond})"
            return f"NOT {probe}" if f.modifier == "not" else probe
        if isinstance(f, ParamFilter):  # :missing
            has = self._has_any(f, pid)
            return f"NOT {has}" if f.missing else has
        if isinstance(f, CompartmentFilter | ChainFilter):
            return f"EXISTS (SELECT 1 FROM ({self.pid_select(f)}) c WHERE c.pid = {pid})"
        return f"{pid} IN ({self.pid_select(f)})"

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
        if kind in ("uri", "composite"):
            return 3
        return 6

    @staticmethod
    def unique_rows(f: Filter) -> bool:
        """Whether the filter's pid select yields each pid at most once (no DISTINCT needed)."""
        if isinstance(f, IdFilter | LastUpdatedFilter):
            return True
        if (
            isinstance(f, ParamFilter)
            and f.missing is None
            and len(f.values) == 1
            and not f.negated
            and len(f.param.index_codes) == 1
        ):
            v = f.values[0]
            if (
                f.param.type == "token"
                and isinstance(v, TokenValue)
                and v.system is not None
                and v.code
                and not f.modifier
            ):
                return True
            if (
                f.param.type == "reference"
                and isinstance(v, ReferenceValue)
                and v.type
                and v.id
                and not f.modifier
            ):
                return True
        return False

    def sort_expression(self, key: SortKey, pid: str) -> str:
        """A scalar expression to order by for one ``_sort`` key (resources without a value sort last)."""
        sql = self.sql
        if key.code in ("_id", "_lastUpdated"):
            r = sql.alias("resource")
            column = "res_id" if key.code == "_id" else "updated_us"
            return f"(SELECT {r}.{column} FROM resource {r} WHERE {r}.pid = {pid})"
        param = key.param
        assert param is not None
        table = TABLE_OF_TYPE[param.type]
        t = sql.alias(table)
        column = ("high" if key.descending else "low") if param.type == "date" else SORT_COLUMN[param.type]
        agg = "max" if key.descending else "min"
        ident = _identity_in(sql, f"{t}.hash_identity", param.resource_type, param.index_codes)
        return f"(SELECT {agg}({t}.{column}) FROM {table} {t} WHERE {t}.pid = {pid} AND {ident})"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _uri_prefixes(uri: str) -> list[str]:
    parts = uri.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 2, -1)] or [uri]


__all__ = ["SqlSearch", "Value"]
