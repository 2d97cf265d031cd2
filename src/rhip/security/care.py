"""Care relationships: an encounter, referral, appointment or episode of care ties a resident to an
institution for a configurable window (``care_window_days``), across every record of the same person."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from rhip.fhir.search.params import SearchParamRegistry
from rhip.fhir.search.query import CareRelation
from rhip.security.lookup import StoreLookup, TtlCache

AHEAD = timedelta(days=90)


class PatientLinks(Protocol):
    """The records of one person (the resident index answers; bootstrap adapts it)."""

    def linked(self, patient_id: str) -> frozenset[str]:
        """Every Patient id of the person ``patient_id`` belongs to, itself included."""


@dataclass(frozen=True)
class RelationKind:
    """Resources of a type that relate their patient to an institution: who (reference) and when (date)."""

    resource_type: str
    patient: str  # the parameter naming the Patient
    organization: str | None  # a reference parameter naming the institution's Organization
    date: str  # the parameter dated within the window


CARE_KINDS = (
    RelationKind("Encounter", "patient", "service-provider", "date"),
    RelationKind("ServiceRequest", "patient", "performer", "authored"),  # a referral to the institution
    RelationKind("EpisodeOfCare", "patient", "organization", "date"),
    # Appointment participants are people, places and services, never an Organization: an appointment
    # ties the patient to the institution that booked it (its meta.source).
    RelationKind("Appointment", "patient", None, "date"),
)


class CareRelations:
    """Answers "is this resident in the care of this institution now?" and builds the same test as SQL."""

    def __init__(
        self,
        lookup: StoreLookup,
        registry: SearchParamRegistry,
        links: PatientLinks | None,
        window_days: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        ttl_s: float = 60.0,
    ) -> None:
        self.lookup = lookup
        self.registry = registry
        self.links = links
        self.window = timedelta(days=window_days)
        self.now = now
        # A relationship, once found, holds for a while; a refusal is kept briefly (and forgotten when an
        # encounter, referral or appointment is written) so a new visit opens the record at once.
        self._yes: TtlCache[tuple[tuple[str, ...], tuple[str, ...], str], bool] = TtlCache(ttl_s, 50_000)
        self._no: TtlCache[tuple[tuple[str, ...], tuple[str, ...], str], bool] = TtlCache(5.0, 50_000)

    def since(self) -> datetime:
        """The start of the care window."""
        return self.now() - self.window

    def until(self) -> datetime:
        """How far ahead a relation may be dated (an appointment booked ahead): a visit dated years ahead
        does not open a record for years."""
        return self.now() + AHEAD

    def linked(self, patient_id: str) -> frozenset[str]:
        """Every record of the person of ``patient_id``."""
        if self.links is None:
            return frozenset({patient_id})
        return self.links.linked(patient_id) | {patient_id}

    def related(self, organizations: tuple[str, ...], sources: tuple[str, ...], patient_id: str) -> bool:
        """Whether any record of the person has a care relationship with the institution in the window."""
        if not organizations and not sources:
            return False
        key = (organizations, sources, patient_id)
        if self._yes.peek(key) or self._no.peek(key):
            return bool(self._yes.peek(key))
        found = self._related(organizations, sources, patient_id)
        (self._yes if found else self._no).put(key, True)
        return found

    def _related(self, organizations: tuple[str, ...], sources: tuple[str, ...], patient_id: str) -> bool:
        patients = ",".join(f"Patient/{p}" for p in sorted(self.linked(patient_id)))
        since = f"ge{self.since().date().isoformat()}"
        until = f"le{self.until().date().isoformat()}"
        for kind in CARE_KINDS:
            base = [(kind.patient, patients), (kind.date, since), (kind.date, until)]
            if kind.organization and organizations:
                refs = ",".join(f"Organization/{o}" for o in organizations)
                if self.lookup.count(kind.resource_type, [*base, (kind.organization, refs)]):
                    return True
            if sources and self.lookup.count(kind.resource_type, [*base, ("_source", ",".join(sources))]):
                return True
        return False

    def sql_relations(self, *, dated: bool = True) -> tuple[CareRelation, ...]:
        """The same relations for a search's access filter (reference and ``_source`` forms)."""
        out = []
        for kind in CARE_KINDS:
            date = self.registry.get(kind.resource_type, kind.date) if dated else None
            if kind.organization:
                ref = self.registry.get(kind.resource_type, kind.organization)
                if ref is not None:
                    out.append(CareRelation(ref, date))
            source = self.registry.get(kind.resource_type, "_source")
            if source is not None:
                out.append(CareRelation(source, date))
        return tuple(out)

    def district_relations(self) -> tuple[CareRelation, ...]:
        """Relations that put a resident in a district: a record held by, or care at, one of its institutions."""
        held = self.registry.get("Patient", "organization")
        return ((CareRelation(held),) if held is not None else ()) + tuple(
            r for r in self.sql_relations(dated=False) if r.reference.type == "reference"
        )

    def forget_refusals(self) -> None:
        """A visit, referral or appointment was written: ask again rather than trust a recent refusal."""
        self._no.clear()

    def clear(self) -> None:
        """Forget cached answers."""
        self._yes.clear()
        self._no.clear()
