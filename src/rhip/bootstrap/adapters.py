"""Adapters that let L3 capabilities use each other through the Protocols they declare (DESIGN.md §3)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rhip.core.errors import InvalidRequest, ResourceGone, ResourceNotFound
from rhip.documents import model as documents
from rhip.documents.service import DocumentService
from rhip.empi import manual, queries
from rhip.empi.queries import master_of
from rhip.empi.service import EmpiService
from rhip.exchange import ports
from rhip.exchange.hl7v3.persons import LinkedPerson
from rhip.fhir.repository import ResourcePreparer
from rhip.security.lookup import TtlCache


class EmpiPatientMerger:
    """The exchange's ``PatientMerger`` over the resident index: a v2 A40 or v3 merge joins two persons.

    The sender says two of its local records are one resident; the obsolete record's person is merged into
    the surviving record's person, so every record of either (from any institution) ends up together.
    Records the index has not seen yet (matching offline) are matched first.
    """

    def __init__(self, empi: EmpiService) -> None:
        self.empi = empi

    def _master(self, patient_id: str) -> str:
        try:
            return str(master_of(self.empi, patient_id)["id"])
        except ResourceNotFound:
            self.empi.process(patient_id)
            return str(master_of(self.empi, patient_id)["id"])

    def merge(self, surviving_patient_id: str, obsolete_patient_id: str, *, actor: str) -> None:
        """Merge the obsolete record's master into the surviving record's master."""
        into, source = self._master(surviving_patient_id), self._master(obsolete_patient_id)
        if into != source:
            manual.merge(self.empi, source, into, actor)


class EmpiPersonLinks:
    """The v3 person query's ``PersonLinks`` over the resident index: a Patient's person and its records."""

    def __init__(self, empi: EmpiService) -> None:
        self.empi = empi

    def person_of(self, patient_id: str) -> LinkedPerson | None:
        """The master person of a source Patient with every identifier its records carry; None if unlinked."""
        try:
            links = queries.links(self.empi, patient_id, None)
        except ResourceNotFound:
            return None
        if not links:
            return None
        master = str(links[0]["master"])
        members = [str(m["patient"]) for m in queries.links(self.empi, None, master)]
        identifiers: list[tuple[str, str]] = []
        for member in members:
            try:
                resource = self.empi.patients.read("Patient", member).resource()
            except (ResourceNotFound, ResourceGone):
                continue
            for ident in resource.get("identifier", []):
                pair = (str(ident.get("system", "")), str(ident.get("value", "")))
                if pair not in identifiers:
                    identifiers.append(pair)
        return LinkedPerson(master, tuple(identifiers), tuple(members))


class RegistryIntake:
    """The exchange's ``DocumentIntake`` over the document registry (the two mirror each other's types)."""

    def __init__(self, registry: DocumentService) -> None:
        self.registry = registry

    def submit(self, cda: bytes, *, sender: str, channel: str) -> ports.DocumentReceipt:
        """Register one CDA document."""
        receipt = self.registry.submit(cda, sender=sender, channel=channel)
        return ports.DocumentReceipt(**asdict(receipt))

    def query(self, query: ports.DocumentQuery) -> list[ports.DocumentSummary]:
        """Registered documents matching the query."""
        found = self.registry.query(documents.DocumentQuery(**asdict(query)))
        return [ports.DocumentSummary(**asdict(s)) for s in found]

    def retrieve(self, document_id: str) -> tuple[bytes, ports.DocumentSummary]:
        """A document's original bytes and its summary."""
        content, summary = self.registry.retrieve(document_id)
        return content, ports.DocumentSummary(**asdict(summary))


class EmpiPatientLinks:
    """The security layer's ``PatientLinks`` over the resident index: the records of one person (links in
    state ``match``; a possible match opens nothing), cached briefly."""

    def __init__(self, empi: EmpiService, ttl_s: float = 30.0) -> None:
        self.empi = empi
        self._cache: TtlCache[str, frozenset[str]] = TtlCache(ttl_s, 100_000)

    def linked(self, patient_id: str) -> frozenset[str]:
        """Every Patient id of the person ``patient_id`` is a record of (or the master id names)."""
        return self._cache.get(patient_id, lambda: self._linked(patient_id))

    def _linked(self, patient_id: str) -> frozenset[str]:
        master = patient_id
        try:
            own = queries.links(self.empi, patient_id, None)
        except (ResourceNotFound, InvalidRequest):
            own = []
        if own:
            if own[0]["state"] != "match":
                return frozenset({patient_id})
            master = str(own[0]["master"])
        try:
            members = queries.links(self.empi, None, master)
        except (ResourceNotFound, InvalidRequest):
            return frozenset({patient_id})
        return frozenset({patient_id, *(str(m["patient"]) for m in members if m["state"] == "match")})


class PreparerChain:
    """The store's one ``ResourcePreparer`` made of the capabilities' own, run in order (each gets what the
    one before returned): the registries' rules and references, then the terminology's standard codes."""

    def __init__(self, *parts: ResourcePreparer) -> None:
        self.parts = parts

    def prepare(self, resource: dict[str, Any]) -> dict[str, Any]:
        """The resource after every part."""
        for part in self.parts:
            resource = part.prepare(resource)
        return resource
