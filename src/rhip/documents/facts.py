"""What the registry needs to know about a document, whatever door it came through.

:class:`DocumentFacts` is filled from a CDA header (:func:`facts_of`); the registry builds its FHIR
resources from it alone, so a change in how headers are read stays in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rhip.documents.cda.doctypes import DOCUMENT_TYPES
from rhip.documents.cda.model import CdaDocument, Coded, InstanceId

# Person-level identifier systems of a resident, most specific first (DESIGN.md §4). Encounter-level ones
# (门诊号 1.11, 住院号 1.12, report numbers) in a patientRole do not identify the person.
PERSON_SYSTEMS = (
    "urn:oid:2.16.156.10011.1.3",  # 居民身份证
    "urn:oid:2.16.156.10011.1.19",  # 居民健康卡
    "urn:oid:2.16.156.10011.1.2",  # 城乡居民健康档案编号
    "urn:oid:2.16.156.10011.1.15",  # 医保卡
)
CASE_NUMBER = "urn:oid:2.16.156.10011.1.13"  # 病案号: the institution's own patient number (its MRN)
MRN_PREFIX = "urn:rhip:mrn:"


@dataclass(frozen=True)
class Institution:
    """An institution named in a document: its code (2.16.156.10011.1.5) and name."""

    code: str
    name: str = ""


@dataclass(frozen=True)
class Author:
    """The person who wrote a document: staff number (2.16.156.10011.1.4 / 1.7) and name."""

    staff_no: str | None
    name: str = ""


@dataclass(frozen=True)
class Visit:
    """The encounter a document belongs to (encompassingEncounter)."""

    number: str
    system: str = ""  # the OID system of the number: 门诊号 1.11, 住院号 1.12 … ('' when unknown)
    kind: str = "AMB"  # FHIR Encounter.class (v3 ActCode): AMB, EMER, IMP
    start: str | None = None  # FHIR dateTime
    end: str | None = None


@dataclass(frozen=True)
class DocumentFacts:
    """A document's identity, kind, people, institutions and visit, as FHIR values."""

    document_id: tuple[str, str]  # (root OID, extension or '')
    code: str  # document code in 2.16.156.10011.2.4: C0002, HSDB04.01 …
    code_display: str
    title: str
    effective_time: str  # FHIR dateTime with offset
    confidentiality: str  # N | R | V (v3 Confidentiality) …
    author_org: Institution
    custodian: Institution
    set_id: tuple[str, str] | None = None
    version: int = 1
    replaces: tuple[str, str] | None = None  # relatedDocument RPLC parentDocument id
    template_id: str | None = None
    standard: str = ""  # WS/T 500.2, WS/T 483.12 …
    patient_identifiers: tuple[tuple[str, str], ...] = ()  # (FHIR system, value)
    patient_name: str = ""
    gender: str | None = None  # FHIR administrative gender
    birth_date: str | None = None
    telecom: tuple[str, ...] = ()  # phone numbers
    marital_status: dict[str, str] | None = None  # a FHIR Coding (GB/T 2261.2)
    ethnicity: dict[str, str] | None = None  # a FHIR Coding (GB 3304)
    address: dict[str, Any] = field(default_factory=dict)  # a FHIR Address
    author: Author | None = None
    author_time: str | None = None
    visit: Visit | None = None
    department: str = ""  # the 科室 the visit was in (practiceSetting text)

    @property
    def document_key(self) -> str:
        """The document id as ``root^extension`` (the v3 document services' form)."""
        root, ext = self.document_id
        return f"{root}^{ext}" if ext else root


def _ii(value: InstanceId | None) -> tuple[str, str] | None:
    return (value.root, value.extension) if value is not None else None


def _coding(value: Coded | None) -> dict[str, str] | None:
    if value is None or not value.code:
        return None
    return {
        "system": value.system,
        "code": value.code,
        **({"display": value.display} if value.display else {}),
    }


def facts_of(doc: CdaDocument) -> DocumentFacts:
    """The registry's view of a read CDA document (its header, already checked by the reader)."""
    h = doc.header
    known = DOCUMENT_TYPES.get(h.code)
    template = known.template_id if known is not None else None
    encounter = h.encounter
    visit = None
    if encounter is not None and encounter.visit_number:
        visit = Visit(
            encounter.visit_number,
            encounter.visit_system,
            encounter.type or "AMB",
            encounter.start,
            encounter.end,
        )
    person = h.author.person
    return DocumentFacts(
        document_id=(h.document_id.root, h.document_id.extension),
        code=h.code,
        code_display=h.code_display,
        title=h.title,
        effective_time=h.effective_time,
        confidentiality=h.confidentiality,
        author_org=Institution(h.author.organization.code or h.custodian.code, h.author.organization.name),
        custodian=Institution(h.custodian.code, h.custodian.name),
        set_id=_ii(h.set_id),
        version=h.version_number or 1,
        replaces=_ii(h.replaces),
        template_id=template or (h.template_ids[0] if h.template_ids else None),
        standard=h.standard,
        patient_identifiers=h.patient.identifiers,
        patient_name=h.patient.name,
        gender=h.patient.gender or None,
        birth_date=h.patient.birth_date,
        telecom=h.patient.telecom,
        marital_status=_coding(h.patient.marital_status),
        ethnicity=_coding(h.patient.ethnicity),
        address=dict(h.patient.address or {}),
        author=Author(person.id or None, person.name) if person.id or person.name else None,
        author_time=h.author.time,
        visit=visit,
        department=encounter.department.name if encounter and encounter.department else "",
    )
