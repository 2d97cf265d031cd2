"""``GET /fhir/AuditEvent?…`` answered from the audit log, newest first, a page at a time.

Supported: ``patient``, ``agent`` (a subject such as ``user:alice``; ``agent:identifier=[system|]value``
also takes ``urn:rhip:client`` and institution-code systems), ``altid``, ``agent-role``, ``entity``
(``Type/id``), ``date`` and ``_lastUpdated`` (the recorded time), ``action``, ``outcome``, ``subtype``,
``type``, ``_id``, ``_count``, ``_total``, ``_summary=count`` and ``_sort`` by date. Anything else is
refused rather than ignored: an audit search that silently matched more than was asked would mislead.
Pages are keyed by seq, so entries appended meanwhile never shift a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from rhip.core.clock import fhir_instant
from rhip.core.errors import InvalidRequest
from rhip.core.ids import is_valid_fhir_id
from rhip.db.engine import Database
from rhip.fhir.repository import SearchPage, StoredResource
from rhip.fhir.search.query import (
    IdFilter,
    LastUpdatedFilter,
    ParamFilter,
    RangeValue,
    ReferenceValue,
    SearchQuery,
    TokenValue,
)
from rhip.fhir.search.values import us_to_datetime
from rhip.security.audit.balp import CLIENT_SYSTEM, INSTITUTION_SYSTEM, SUBJECT_SYSTEM
from rhip.security.audit.repository import AuditFilter, AuditRecord, TimeTest, count, find

TOKEN_COLUMNS = {
    "action": "action",
    "outcome": "outcome",
    "subtype": "subtype",
    "type": "event_type",
    "altid": "subject",
    "agent-role": "role",
}
AGENT_SYSTEMS = {SUBJECT_SYSTEM: "subject", CLIENT_SYSTEM: "client", INSTITUTION_SYSTEM: "institution"}
SORTS = frozenset({"date", "_lastUpdated"})


@dataclass(frozen=True)
class AuditRestriction:
    """What part of the log a caller may search; every field given must hold (None: no limit).

    ``patients``: only entries naming one of these Patients (an empty tuple: nothing at all);
    ``subject``: only entries of this subject; ``institution``: only entries of callers of this
    institution. ``public``: the events are shown to a resident: without network addresses, token ids,
    queries or the resources and Patients other than ``patients`` that an entry names.
    """

    patients: tuple[str, ...] | None = None
    subject: str | None = None
    institution: str | None = None
    public: bool = False


def _reference_values(f: ParamFilter) -> list[ReferenceValue]:
    values = [v for v in f.values if isinstance(v, ReferenceValue)]
    if len(values) != len(f.values):
        raise InvalidRequest(f"'{f.param.code}' takes references here", expression=[f.param.code])
    return values


def _token_values(f: ParamFilter) -> tuple[str, ...]:
    codes = tuple(v.code for v in f.values if isinstance(v, TokenValue) and v.code)
    if len(codes) != len(f.values):
        raise InvalidRequest(f"'{f.param.code}' takes codes here", expression=[f.param.code])
    return codes


def _agent(f: ParamFilter, flt: AuditFilter) -> None:
    column, values = "", []
    for v in f.values:
        kind, value = None, ""
        if isinstance(v, TokenValue) and v.code:
            kind, value = AGENT_SYSTEMS.get(v.system or SUBJECT_SYSTEM), v.code
        elif isinstance(v, ReferenceValue) and v.url and not v.type:
            kind, value = "subject", v.url
        if kind is None or (column and kind != column):
            raise InvalidRequest(
                "agent takes subjects such as user:<name> or client:<id> (agent:identifier=system|value)",
                expression=["agent"],
            )
        column = kind
        values.append(value)
    flt.equal.append((column, tuple(values)))


def _filter(query: SearchQuery) -> AuditFilter:
    flt = AuditFilter()
    for f in query.filters:
        if isinstance(f, IdFilter):
            flt.equal.append(("id", f.ids))
            continue
        if isinstance(f, LastUpdatedFilter):
            flt.times.append(tuple(TimeTest(v.prefix, int(v.low), int(v.high)) for v in f.values))
            continue
        if not isinstance(f, ParamFilter):
            raise InvalidRequest("AuditEvent searches take no chains, _has or compartments")
        code = f.param.code
        if f.missing is not None or f.modifier not in (None, "identifier", "Patient"):
            raise InvalidRequest(f"Modifiers are not supported on '{code}' here", expression=[code])
        if code == "patient":
            refs = _reference_values(f)
            if any(r.type not in (None, "Patient") or not r.id for r in refs):
                raise InvalidRequest("patient takes Patient ids", expression=["patient"])
            flt.patients.append(tuple(str(r.id) for r in refs))
        elif code == "agent":
            _agent(f, flt)
        elif code == "entity":
            refs = _reference_values(f)
            if any(not r.type or not r.id or not is_valid_fhir_id(r.id) for r in refs):
                raise InvalidRequest("entity takes Type/id references", expression=["entity"])
            flt.entities.append(tuple(f"{r.type}/{r.id}" for r in refs))
        elif code == "date":
            ranges = [v for v in f.values if isinstance(v, RangeValue)]
            flt.times.append(tuple(TimeTest(v.prefix, int(v.low), int(v.high)) for v in ranges))
        elif code in TOKEN_COLUMNS and f.modifier is None:
            flt.equal.append((TOKEN_COLUMNS[code], _token_values(f)))
        else:
            raise InvalidRequest(f"AuditEvent cannot be searched by '{code}' here", expression=[code])
    return flt


def _restrict(flt: AuditFilter, restrict: AuditRestriction) -> None:
    if restrict.patients is not None:
        if restrict.patients:
            flt.patients.append(restrict.patients)
        else:
            flt.nothing = True
    if restrict.subject is not None:
        flt.equal.append(("subject", (restrict.subject,)))
    if restrict.institution is not None:
        flt.equal.append(("institution", (restrict.institution,)))


def _ascending(query: SearchQuery) -> bool:
    if query.includes or query.revincludes:
        raise InvalidRequest("AuditEvent searches take no _include or _revinclude")
    if not query.sort:
        return False
    if len(query.sort) > 1 or query.sort[0].code not in SORTS:
        raise InvalidRequest("AuditEvents sort by date only", expression=["_sort"])
    return not query.sort[0].descending


def _page_key(token: str | None, ascending: bool) -> int | None:
    if token is None:
        return None
    direction, digits = token[:1], token[1:]
    if direction != ("a" if ascending else "d") or not digits.isdigit():
        raise InvalidRequest("This page of AuditEvents does not exist; start the search again")
    return int(digits)


def public_view(event: bytes, patients: tuple[str, ...]) -> bytes:
    """An AuditEvent as a resident may see it: who, when, why and which of their own records."""
    parsed: dict[str, Any] = orjson.loads(event)
    for agent in parsed.get("agent", []):
        agent.pop("network", None)
        agent.pop("policy", None)
    allowed = {f"Patient/{p}" for p in patients}
    kept: list[dict[str, Any]] = []
    kinds: list[str] = []
    for e in parsed.get("entity", []):
        reference = str((e.get("what") or {}).get("reference") or "")
        if reference in allowed:
            kept.append(e)
        elif reference and e.get("role", {}).get("code") == "4":
            # Which kinds of data were read (Observation, DocumentReference …), never which resources:
            # a search's results may be other residents'.
            kind = reference.partition("/")[0]
            if kind not in kinds:
                kinds.append(kind)
                kept.append({"what": {"type": kind}, "type": e.get("type"), "role": e.get("role")})
    parsed["entity"] = kept
    if not kept:
        del parsed["entity"]
    return orjson.dumps(parsed)


def _stored(record: AuditRecord, restrict: AuditRestriction) -> StoredResource:
    content = record.event or b"{}"
    if restrict.public:
        content = public_view(content, restrict.patients or ())
    recorded = fhir_instant(us_to_datetime(record.recorded_us))
    return StoredResource("AuditEvent", record.id, 1, recorded, False, content)


def search_page(db: Database, query: SearchQuery, restrict: AuditRestriction) -> SearchPage:
    """One page of AuditEvents matching ``query`` within ``restrict``; InvalidRequest for what is not supported."""
    if query.resource_type != "AuditEvent":
        raise InvalidRequest(f"The audit log holds AuditEvents, not {query.resource_type}")
    ascending = _ascending(query)
    flt = _filter(query)
    _restrict(flt, restrict)
    key = _page_key(query.page, ascending)
    total = count(db, flt) if query.total in ("accurate", "estimate") or query.summary == "count" else None
    if query.summary == "count" or query.count <= 0:
        return SearchPage([], total=total)
    before, after = (None, key) if ascending else (key, None)
    records = find(
        db, flt, limit=query.count + 1, before=before, after=after, ascending=ascending, with_event=True
    )
    more = len(records) > query.count
    records = records[: query.count]
    page = SearchPage([_stored(r, restrict) for r in records], total=total)
    if more:
        page.next_page = f"{'a' if ascending else 'd'}{records[-1].seq}"
    return page
