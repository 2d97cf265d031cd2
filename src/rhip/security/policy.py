"""The access policy: roles and SMART scopes, care relationships, consent, confidentiality, break-the-glass.

One place answers every question the doors ask (docs/security.md has the rules as a table):
- ``patient_access``: may the caller see this resident's record at all;
- ``read``: may the caller see this resource (its resident, its labels, its source);
- ``search_filter``: the same rules as an :class:`AccessFilter` the store applies in SQL, so counts,
  paging and totals never include what the caller may not see;
- ``write``: may the caller create, change or delete this resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rhip.core.errors import RhipError
from rhip.fhir.search.params import SearchParamRegistry
from rhip.security.care import CareRelations
from rhip.security.consent import ConsentBook, ConsentRule, denying, is_privacy_consent, now_instant
from rhip.security.decision import Decision, allow, deny
from rhip.security.directory import Directory
from rhip.security.facts import (
    CONFIDENTIAL_CODES,
    RESIDENT_DATA_OUTSIDE,
    FactFinder,
    ResourceFacts,
    own_sources,
    source_institution,
)
from rhip.security.lookup import TtlCache
from rhip.security.principal import Principal, Role

UNRESTRICTED = frozenset({Role.ADMIN, Role.PLATFORM})
READ_ONLY = frozenset({Role.STATISTICIAN, Role.PUBLIC_HEALTH})
# Institution-bound roles: their institution's data is theirs; other institutions' needs a relationship.
INSTITUTIONAL = frozenset({Role.CLINICIAN, Role.SYSTEM})
PERMISSION = {"create": "c", "update": "u", "delete": "d"}


@dataclass(frozen=True)
class Caller:
    """What the policy derives from a principal once per question: its Organizations and sources."""

    principal: Principal
    organizations: tuple[str, ...]
    sources: tuple[str, ...]
    glass: str | None  # the break-the-glass reason, for clinicians

    @property
    def role(self) -> Role:
        """The principal's role."""
        return self.principal.role


class AccessPolicy:
    """Decides who may see and change what."""

    def __init__(
        self,
        registry: SearchParamRegistry,
        facts: FactFinder,
        directory: Directory,
        care: CareRelations,
        consents: ConsentBook,
    ) -> None:
        self.registry = registry
        self.facts = facts
        self.directory = directory
        self.care = care
        self.consents = consents
        self.generation = 0  # moves on whenever an answer cached from the policy may have changed
        # A token's caller is asked for on every request: its Organizations come from the directory.
        self._callers: TtlCache[tuple[Principal, str | None], Caller] = TtlCache(30.0, 10_000)

    def changed(self) -> None:
        """A consent, a care relation or an institution changed: decisions cached from the policy are stale."""
        self.generation += 1

    # -- who is asking ---------------------------------------------------------------------------
    def caller(self, principal: Principal, glass: str | None = None) -> Caller:
        """The caller's institution as Organizations and sources; the glass only for clinicians."""
        return self._callers.get((principal, glass), lambda: self._caller(principal, glass))

    def _caller(self, principal: Principal, glass: str | None) -> Caller:
        if principal.role in INSTITUTIONAL:
            orgs_of = [self.directory.organizations(i) for i in principal.all_institutions]
            found = {o for group in orgs_of for o in group}
            if principal.organization:
                found.add(principal.organization)
            orgs = tuple(sorted(found))
            sources = tuple(s for i in principal.all_institutions for s in own_sources(i))
        else:
            orgs, sources = (), ()
        return Caller(principal, orgs, sources, glass if principal.role is Role.CLINICIAN and glass else None)

    def resident_patients(self, principal: Principal) -> frozenset[str]:
        """Every record a resident may see: their own and their children's, across institutions."""
        out: set[str] = set()
        for patient in principal.patients:
            out |= self.care.linked(patient)
        return frozenset(out)

    # -- the resident's record as a whole ----------------------------------------------------------
    def patient_access(self, caller: Caller, patient: str) -> Decision:
        """Whether the caller may see the record of the resident ``patient`` belongs to (labels aside)."""
        role = caller.role
        if role in UNRESTRICTED:
            return allow("admin", patient)
        if role is Role.RESIDENT:
            ok = patient in self.resident_patients(caller.principal)
            return allow("own-record", patient) if ok else deny("own-record", patient)
        if role is Role.STATISTICIAN:
            return deny("role", patient)
        rules = self._rules(patient)
        orgs = frozenset(caller.organizations)
        now = now_instant()
        withdrawn = bool(denying(rules, orgs, frozenset(), now, whole=True))
        if role is Role.PUBLIC_HEALTH:
            district = caller.principal.district
            if withdrawn:
                return deny("consent", patient)
            if district and self._in_district(district, patient):
                return allow("district", patient)
            return deny("district", patient)
        if not withdrawn and self.care.related(caller.organizations, caller.sources, patient):
            return allow("care", patient)
        if not withdrawn and any(
            r.effect == "permit" and r.organizations and r.applies(orgs, frozenset(), now) for r in rules
        ):
            return allow("consent", patient)
        if caller.glass:
            return allow("break-glass", patient, glass=True)
        return deny("consent" if withdrawn else "no-relationship", patient)

    def holds(self, caller: Caller, patient: str) -> bool:
        """Whether the caller's institution sent this Patient record itself (it may always see what it sent
        about the resident, even without a current care relationship)."""
        if not caller.sources:
            return False
        try:
            record = self.care.lookup.repository.read("Patient", patient).resource()
        except RhipError:
            return False
        return self.facts.facts("Patient", record).source in caller.sources

    def _in_district(self, district: str, patient: str) -> bool:
        orgs = self.directory.district_organizations(district)
        if not orgs:
            return False
        ids = ",".join(sorted(self.care.linked(patient)))
        refs = ",".join(f"Organization/{o}" for o in orgs)
        if self.care.lookup.count("Patient", [("_id", ids), ("organization", refs)]):
            return True
        patients = ",".join(f"Patient/{p}" for p in sorted(self.care.linked(patient)))
        return bool(self.care.lookup.count("Encounter", [("patient", patients), ("service-provider", refs)]))

    def _rules(self, patient: str) -> list[ConsentRule]:
        book = self.consents.rules()
        if not book:
            return []
        return self.consents.for_patients(self.care.linked(patient))

    # -- one resource ------------------------------------------------------------------------------
    def read(self, caller: Caller, resource_type: str, resource: Mapping[str, Any]) -> Decision:
        """Whether the caller may see this resource."""
        p = caller.principal
        if not p.may(resource_type, "r"):
            return deny("scope")
        facts = self.facts.facts(resource_type, resource)
        return self.read_facts(caller, facts)

    def read_facts(self, caller: Caller, facts: ResourceFacts) -> Decision:
        """:meth:`read` for facts already known."""
        role = caller.role
        if role in UNRESTRICTED:
            return allow("admin", facts.patient)
        if facts.patient is None:
            if facts.resource_type in RESIDENT_DATA_OUTSIDE or self.facts.in_compartment(facts.resource_type):
                if caller.sources and facts.source in caller.sources:
                    return allow("own-source")
                return deny("outside")
            return allow("directory")
        if role is Role.STATISTICIAN:
            return deny("role", facts.patient)
        if role is Role.RESIDENT:
            return self.patient_access(caller, facts.patient)
        if role in INSTITUTIONAL:
            if facts.source is not None and facts.source in caller.sources:
                return allow("own-source", facts.patient)
            if facts.resource_type == "Patient":
                # The patient directory: demographics identify a resident to any clinician (to find them,
                # then to ask for their record); the clinical record needs a relationship.
                return allow("directory", facts.patient)
        decision = self.patient_access(caller, facts.patient)
        if not decision.allowed or decision.glass:
            return decision
        if facts.labels & set(CONFIDENTIAL_CODES):
            return (
                allow("break-glass", facts.patient, glass=True)
                if caller.glass
                else deny("confidential", facts.patient)
            )
        if facts.labels and self._label_denied(caller, facts.patient, facts.labels):
            return (
                allow("break-glass", facts.patient, glass=True)
                if caller.glass
                else deny("consent", facts.patient)
            )
        return decision

    def _label_denied(self, caller: Caller, patient: str, labels: frozenset[str]) -> bool:
        orgs = frozenset(caller.organizations)
        return bool(denying(self._rules(patient), orgs, labels, now_instant(), whole=False))

    # -- writes ------------------------------------------------------------------------------------
    def write(
        self,
        caller: Caller,
        action: str,
        resource_type: str,
        new: Mapping[str, Any] | None,
        old: Mapping[str, Any] | None,
    ) -> Decision:
        """Whether the caller may ``action`` (create | update | delete) this resource."""
        p = caller.principal
        if resource_type == "AuditEvent":
            return deny("append-only")
        if not p.may(resource_type, PERMISSION[action]):
            return deny("scope")
        if caller.role in UNRESTRICTED:
            return allow("admin")
        if caller.role in READ_ONLY:
            return deny("role")
        target = new if new is not None else old
        assert target is not None
        facts = self.facts.facts(resource_type, target)
        if caller.role is Role.RESIDENT:
            # Residents record their own consent (公众门户: consent settings) and nothing else.
            if resource_type != "Consent" or facts.patient is None:
                return deny("role", facts.patient)
            before = self.facts.facts(resource_type, old) if old is not None else None
            mine = self.resident_patients(p)
            if facts.patient in mine and (before is None or before.patient in mine):
                return allow("own-record", facts.patient)
            return deny("own-record", facts.patient)
        if resource_type == "Consent" and any(
            is_privacy_consent(dict(c)) for c in (new, old) if c is not None
        ):
            # Who may see a resident's record is the resident's to say (or an administrator's, on their
            # written request): an institution writing one could open any record to itself.
            return deny("consent-owner", facts.patient)
        new_source = self.facts.facts(resource_type, new).source if new is not None else None
        if new_source is not None and new_source not in caller.sources:
            return deny("foreign-source", facts.patient)
        if old is not None:
            old_source = self.facts.facts(resource_type, old).source
            if old_source not in caller.sources:
                return deny("not-own-data", facts.patient)
            # Acting for several institutions (an HL7 v2 batch), each changes only what it sent itself.
            if new_source is not None and source_institution(old_source) != source_institution(new_source):
                return deny("not-own-data", facts.patient)
        return allow("own-source", facts.patient)

    def stamp_source(self, caller: Caller, resource: dict[str, Any]) -> dict[str, Any]:
        """An institution's resource without ``meta.source`` gets its FHIR-door source (what it sent)."""
        if caller.role not in INSTITUTIONAL or not caller.principal.institution:
            return resource  # several institutions (a v2 batch): their mappings set meta.source
        meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
        assert isinstance(meta, dict)
        if meta.get("source"):
            return resource
        return {
            **resource,
            "meta": {**meta, "source": f"urn:rhip:source:fhir:{caller.principal.institution}"},
        }

    def since_us(self) -> int:
        """The start of the care window in epoch microseconds."""
        start: datetime = self.care.since()
        return int(start.timestamp() * 1_000_000)

    def until_us(self) -> int:
        """How far ahead a care relation may be dated, in epoch microseconds."""
        return int(self.care.until().timestamp() * 1_000_000)
