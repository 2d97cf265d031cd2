"""The policy as a search restriction: which rows a caller's search may return (applied in SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from rhip.core.errors import Forbidden
from rhip.fhir.search.query import (
    AccessFilter,
    ChainFilter,
    CompartmentFilter,
    Filter,
    HasFilter,
    IdFilter,
    ParamFilter,
    ReferenceValue,
    SearchQuery,
)
from rhip.security.consent import denying, now_instant
from rhip.security.decision import EXPLANATIONS, Decision, allow
from rhip.security.facts import CONFIDENTIAL_CODES, RESIDENT_DATA_OUTSIDE
from rhip.security.lookup import TtlCache
from rhip.security.policy import INSTITUTIONAL, UNRESTRICTED, AccessPolicy, Caller
from rhip.security.principal import Role

# Parameters of the patient directory: what identifies a resident (to find them), nothing clinical.
DIRECTORY_PARAMS = frozenset(
    {
        "identifier", "name", "family", "given", "phonetic", "birthdate", "gender", "phone", "telecom",
        "email", "address", "address-city", "address-state", "address-postalcode", "address-country",
        "address-use", "active", "_id", "_lastUpdated", "deceased", "language",
    }
)  # fmt: skip
PATIENT_PARAMS = frozenset({"patient", "subject"})


@dataclass(frozen=True)
class ScopedSearch:
    """A search's restriction and the residents it names (each already allowed)."""

    access: AccessFilter | None
    patients: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()


class SearchScoper:
    """Builds the access filter of a search from the policy."""

    def __init__(self, policy: AccessPolicy) -> None:
        self.policy = policy
        # The same caller asks the same kind of search again and again (a resident's record, page after
        # page): its restriction is kept two seconds, and forgotten at once when a consent, a care relation
        # or an institution changes (the policy's generation).
        self._recent: TtlCache[tuple[object, ...], ScopedSearch] = TtlCache(2.0, 20_000)

    def scope(self, caller: Caller, query: SearchQuery) -> ScopedSearch:
        """The restriction of one search; Forbidden when the caller may not run it at all."""
        key = (
            self.policy.generation,
            caller.principal,
            caller.glass,
            query.resource_type,
            query.summary,
            bool(query.includes or query.revincludes),
            tuple(query.filters),
        )
        try:
            hit = self._recent.peek(key)
        except TypeError:  # a filter that cannot be hashed: decide afresh
            return self._scope(caller, query)
        if hit is not None:
            return hit
        scoped = self._scope(caller, query)
        self._recent.put(key, scoped)
        return scoped

    def _scope(self, caller: Caller, query: SearchQuery) -> ScopedSearch:
        p = caller.principal
        rtype = query.resource_type
        if not p.may(rtype, "s") and not (query.summary == "count" and p.may(rtype, "r")):
            _refuse("scope")
        if caller.role in UNRESTRICTED:
            return ScopedSearch(None)
        policy = self.policy
        compartment_type = policy.facts.in_compartment(rtype)
        if rtype in RESIDENT_DATA_OUTSIDE:
            security, source = policy.registry.get(rtype, "_security"), policy.registry.get(rtype, "_source")
            if caller.role not in INSTITUTIONAL or not caller.sources or security is None or source is None:
                _refuse("outside")
            # An institution finds what it sent itself (its message receipts, its documents' content).
            assert security is not None and source is not None
            return ScopedSearch(
                AccessFilter(security, source, open_outside=False, own_sources=caller.sources)
            )
        if not compartment_type:
            return ScopedSearch(None)  # directories: Organization, Practitioner, code systems …
        _check_filters(query.filters, policy)
        if caller.role is Role.STATISTICIAN:
            if query.summary != "count" or query.includes or query.revincludes:
                _refuse("role")
            if named_patients(query) or not all(_aggregate_filter(f) for f in query.filters):
                _refuse("identifying")
            return ScopedSearch(None)  # aggregates only: a count that names nobody
        security = policy.registry.get(rtype, "_security")
        source = policy.registry.get(rtype, "_source")
        assert security is not None and source is not None
        base = AccessFilter(security_param=security, source_param=source, open_outside=False)
        if caller.role is Role.RESIDENT:
            mine = policy.resident_patients(p)
            named_here = named_patients(query)
            if named_here - mine:
                _refuse("own-record")  # a search for someone else's record is refused, not emptied
            scope = AccessFilter(security, source, open_outside=False, compartments=tuple(sorted(mine)))
            return ScopedSearch(scope, tuple(sorted(named_here)))
        if (
            rtype == "Patient"
            and caller.role in INSTITUTIONAL
            and not query.includes
            and not query.revincludes
            and all(_directory_filter(f) for f in query.filters)
            and any(_identifies(f) for f in query.filters)
        ):
            return ScopedSearch(AccessFilter(security, source, everyone=True))
        named = sorted(named_patients(query))
        hidden = () if caller.glass else CONFIDENTIAL_CODES
        if named:
            effective: list[Decision] = []
            compartments: set[str] = set()
            for patient in named:
                d = policy.patient_access(caller, patient)
                if d.allowed:
                    compartments |= policy.care.linked(patient)
                elif policy.holds(caller, patient):
                    # A record the institution sent itself: its own data of it stays visible (own_sources).
                    d = allow("own-record", patient)
                else:
                    d.require()
                effective.append(d)
            decisions = tuple(effective)
            # Every resident named may be seen: the search's own patient filter already keeps it to them,
            # so only the labels remain to check (one probe a row, not a compartment test as well).
            whole = all(d.reason != "own-record" for d in decisions)
            return ScopedSearch(
                AccessFilter(
                    security,
                    source,
                    everyone=whole,
                    open_outside=False,
                    compartments=tuple(sorted(compartments)),
                    hidden_codes=hidden,
                    patient_hidden=() if caller.glass else self._label_denials(caller, compartments),
                    own_sources=caller.sources,
                ),
                tuple(named),
                decisions,
            )
        if caller.role is Role.PUBLIC_HEALTH:
            district = p.district
            orgs = policy.directory.district_organizations(district) if district else ()
            return ScopedSearch(
                AccessFilter(
                    security,
                    source,
                    open_outside=False,
                    organizations=orgs,
                    relations=policy.care.district_relations(),
                    hidden_codes=CONFIDENTIAL_CODES,
                    excluded=self._withdrawn(caller),
                    patient_hidden=self._label_denials(caller, None),
                )
            )
        # A population search (no resident named): the institution's own patients, through the care
        # relationships of its own records; other institutions' records of them are reached per resident.
        del base
        return ScopedSearch(
            AccessFilter(
                security,
                source,
                open_outside=False,
                organizations=caller.organizations,
                relations=policy.care.sql_relations(),
                since_us=policy.since_us(),
                until_us=policy.until_us(),
                excluded=self._withdrawn(caller),
                hidden_codes=CONFIDENTIAL_CODES,
                patient_hidden=self._label_denials(caller, None),
                own_sources=caller.sources,
            )
        )

    def _withdrawn(self, caller: Caller) -> tuple[str, ...]:
        """Records whose resident withdrew them from this caller entirely (expanded to linked records)."""
        if not self.policy.consents.rules():
            return ()
        orgs = frozenset(caller.organizations)
        now = now_instant()
        out: set[str] = set()
        for patient, rules in self.policy.consents.rules().items():
            if denying(rules, orgs, frozenset(), now, whole=True):
                out |= self.policy.care.linked(patient)
        return tuple(sorted(out))

    def _label_denials(self, caller: Caller, within: set[str] | None) -> tuple[tuple[str, str], ...]:
        """(record, label) pairs a resident's consent holds back from this caller."""
        if not self.policy.consents.rules():
            return ()
        orgs = frozenset(caller.organizations)
        now = now_instant()
        out: set[tuple[str, str]] = set()
        for patient, rules in self.policy.consents.rules().items():
            labels = {
                label
                for r in rules
                if r.effect == "deny" and r.labels
                for label in r.labels
                if denying(rules, orgs, frozenset({label}), now, whole=False)
            }
            if not labels:
                continue
            for record in self.policy.care.linked(patient):
                if within is None or record in within:
                    out |= {(record, label) for label in labels}
        return tuple(sorted(out))


def _refuse(reason: str) -> None:
    raise Forbidden(f"Access denied: {EXPLANATIONS[reason]}")


def _check_filters(filters: list[Filter], policy: AccessPolicy) -> None:
    for f in _walk(filters):
        if isinstance(f, HasFilter):
            _refuse("has")
        if isinstance(f, ChainFilter):
            for target, _inner in f.targets:
                if target != "Patient" and (
                    policy.facts.in_compartment(target) or target in RESIDENT_DATA_OUTSIDE
                ):
                    _refuse("has")


def _walk(filters: list[Filter]) -> Iterator[Filter]:
    for f in filters:
        yield f
        if isinstance(f, ChainFilter):
            yield from _walk([inner for _t, inner in f.targets])
        elif isinstance(f, HasFilter):
            yield from _walk([f.inner])


# What may single out a resident: a statistician's count filters on none of these.
IDENTIFYING_PARAMS = frozenset(
    {
        "identifier", "name", "family", "given", "phonetic", "phone", "telecom", "email", "address",
        "address-city", "address-postalcode", "_id", "patient", "subject", "link", "general-practitioner",
        "_content", "_text", "birthdate",
    }
)  # fmt: skip


def _aggregate_filter(f: Filter) -> bool:
    if isinstance(f, ParamFilter):
        return f.param.code not in IDENTIFYING_PARAMS
    # _id lists, chains and compartments can each single out a resident.
    return not isinstance(f, IdFilter | ChainFilter | HasFilter | CompartmentFilter)


# A directory search must name whom it looks for: a list of everyone (gender=female) is a population search.
FINDING_PARAMS = frozenset(
    {"identifier", "name", "family", "given", "phonetic", "phone", "telecom", "email", "_id"}
)


def _identifies(f: Filter) -> bool:
    return isinstance(f, IdFilter) or (isinstance(f, ParamFilter) and f.param.code in FINDING_PARAMS)


def _directory_filter(f: Filter) -> bool:
    if isinstance(f, IdFilter):
        return True
    if isinstance(f, ParamFilter):
        return f.param.code in DIRECTORY_PARAMS
    if isinstance(f, ChainFilter):
        return False
    return False


def named_patients(query: SearchQuery) -> set[str]:
    """The residents a search is limited to (``patient=``/``subject=`` Patient references, a Patient
    compartment, or ``_id`` on Patient); empty when it names none or names them in a way that does not
    limit it (an OR with other targets)."""
    out: set[str] = set()
    for f in query.filters:
        if isinstance(f, CompartmentFilter) and f.target_type == "Patient":
            return {f.target_id}
        if query.resource_type == "Patient" and isinstance(f, IdFilter):
            return set(f.ids)
        if (
            isinstance(f, ParamFilter)
            and f.param.code in PATIENT_PARAMS
            and not f.modifier
            and f.missing is None
        ):
            ids: set[str] = set()
            for v in f.values:
                if not isinstance(v, ReferenceValue) or not v.id or v.type not in ("Patient", None) or v.url:
                    ids = set()
                    break
                if v.type is None and f.param.restrict_target != "Patient":
                    ids = set()
                    break
                ids.add(v.id)
            if ids:
                return ids
    return out
