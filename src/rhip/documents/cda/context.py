"""The state of one extraction: the document, the references the caller gives, and the resource factory."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rhip.documents.cda.codes import LOINC
from rhip.documents.cda.identity import document_key, entry_identifier
from rhip.documents.cda.model import CdaDocument
from rhip.documents.cda.values import SHANGHAI, coding, time_of
from rhip.documents.cda.xmlpath import Element, attr, child, children, path

# Resources whose patient element is called "patient", not "subject".
_PATIENT_FIELD = {"Immunization": "patient", "AllergyIntolerance": "patient"}
Resource = dict[str, Any]


@dataclass(frozen=True)
class ExtractContext:
    """What the caller (the registry) knows: where the extracted resources point and where they came from.

    ``patient_ref`` and ``encounter_ref`` are fullUrls of the same transaction (``urn:uuid:…``) or
    ``Type/id``; ``source`` becomes ``meta.source`` (``urn:rhip:source:cda:<institution code>``).
    """

    patient_ref: str
    encounter_ref: str | None = None
    organization_ref: str | None = None
    practitioner_ref: str | None = None
    source: str = ""
    zone: ZoneInfo = SHANGHAI


@dataclass
class Section:
    """A body section: its element, LOINC code (may be empty) and title."""

    element: Element
    code: str
    title: str

    def entries(self) -> list[Element]:
        """The section's entries in document order."""
        return children(self.element, "entry")


@dataclass
class Extraction:
    """One document being extracted: builds resources with the common fields and collects them."""

    doc: CdaDocument
    ctx: ExtractContext
    resources: list[Resource] = field(default_factory=list)
    _sections: list[Section] | None = field(default=None, repr=False)

    @property
    def key(self) -> str:
        """The document key used in entry identifiers."""
        return document_key(self.doc.header.document_id)

    def sections(self) -> list[Section]:
        """Every section of structuredBody (nested sections too), in document order (read once)."""
        if self._sections is None:
            self._sections = list(self._read_sections())
        return self._sections

    def _read_sections(self) -> Iterator[Section]:
        body = self.doc.body
        if body is None:
            return
        for element in body.iter("{urn:hl7-org:v3}section"):
            code = child(element, "code")
            system = coding(code) or {}
            loinc = system.get("code", "") if system.get("system") == LOINC else ""
            title_el = child(element, "title")
            title = "".join(title_el.itertext()).strip() if title_el is not None else ""
            yield Section(element, loinc, title or attr(code, "displayName"))

    def entry_path(self, element: Element) -> str:
        """Where an element sits under structuredBody (the entry identifier value)."""
        body = self.doc.body
        return path(element, body) if body is not None else path(element)

    def time(self, element: Element | None) -> str | None:
        """A TS element as a FHIR date/dateTime in the context's zone."""
        return time_of(element, self.ctx.zone)

    def new(self, resource_type: str, source: Element, **fields: Any) -> Resource:
        """A resource with identifier, meta.source, the patient and encounter, then ``fields``."""
        resource: Resource = {"resourceType": resource_type}
        if self.ctx.source:
            resource["meta"] = {"source": self.ctx.source}
        resource["identifier"] = [entry_identifier(self.key, self.entry_path(source))]
        resource.update({k: v for k, v in fields.items() if v not in (None, [], {}, "")})
        resource[_PATIENT_FIELD.get(resource_type, "subject")] = {"reference": self.ctx.patient_ref}
        if self.ctx.encounter_ref:
            name = "context" if resource_type == "MedicationStatement" else "encounter"
            resource[name] = {"reference": self.ctx.encounter_ref}
        return resource

    def add(self, resource: Resource) -> Resource:
        """Keep an extracted resource; returns it."""
        self.resources.append(resource)
        return resource

    def organization(self) -> list[dict[str, str]]:
        """The performer list naming the document's institution, when the caller gave its reference."""
        return [{"reference": self.ctx.organization_ref}] if self.ctx.organization_ref else []

    def practitioner(self) -> dict[str, str] | None:
        """A reference to the author, when the caller gave one."""
        return {"reference": self.ctx.practitioner_ref} if self.ctx.practitioner_ref else None
