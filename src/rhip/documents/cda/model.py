"""What reading a CDA document gives: the document with its parsed tree and the checked header."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rhip.documents.cda.identity import document_key
from rhip.documents.cda.xmlpath import Element


@dataclass(frozen=True, slots=True)
class InstanceId:
    """An HL7 II: root OID (or UUID) and optional extension."""

    root: str
    extension: str = ""

    def __str__(self) -> str:
        """``root^extension`` (just the root when there is no extension), as the v3 services write ids."""
        return f"{self.root}^{self.extension}" if self.extension else self.root


@dataclass(frozen=True, slots=True)
class Coded:
    """A code with its FHIR system and display."""

    system: str
    code: str
    display: str = ""


@dataclass(frozen=True, slots=True)
class PatientInfo:
    """recordTarget/patientRole: identifiers (FHIR system, value) and demographics."""

    identifiers: tuple[tuple[str, str], ...]
    name: str = ""
    gender: str = ""  # FHIR administrative gender
    gender_code: Coded | None = None  # GB/T 2261.1 as written
    birth_date: str | None = None
    telecom: tuple[str, ...] = ()
    address: dict[str, Any] | None = None  # FHIR Address
    marital_status: Coded | None = None
    ethnicity: Coded | None = None


@dataclass(frozen=True, slots=True)
class PersonRef:
    """A person an entry or the header names: staff number (工号) and name."""

    id: str = ""
    name: str = ""
    role: str = ""  # e.g. 审核医师, from assignedEntity/code/@displayName


@dataclass(frozen=True, slots=True)
class OrganizationRef:
    """An institution: its code (2.16.156.10011.1.5 identifier) and name."""

    code: str = ""
    name: str = ""
    telecom: str = ""
    address: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuthorInfo:
    """The document's author: when, who, for which institution."""

    time: str | None
    person: PersonRef
    organization: OrganizationRef


@dataclass(frozen=True, slots=True)
class EncounterInfo:
    """componentOf/encompassingEncounter: the visit the document belongs to."""

    visit_number: str = ""
    visit_system: str = ""  # urn:oid:2.16.156.10011.1.11 (门诊号) or …1.12 (住院号)
    type: str = ""  # FHIR Encounter.class code: AMB, EMER, IMP
    start: str | None = None
    end: str | None = None
    department: OrganizationRef | None = None  # the 科室 (code is its 2.16.156.10011.1.26 id)
    attenders: tuple[PersonRef, ...] = ()
    discharge_disposition: Coded | None = None
    admission_route: Coded | None = None  # encompassingEncounter/code (入院途径)


@dataclass(frozen=True, slots=True)
class CdaHeader:
    """The checked header of a shared document (cn-standards.md §3.3)."""

    document_id: InstanceId
    set_id: InstanceId | None
    version_number: int | None
    code: str
    code_display: str
    title: str
    effective_time: str  # FHIR dateTime
    confidentiality: str  # HL7 Confidentiality: N, R, V, L, M, U
    template_ids: tuple[str, ...]
    patient: PatientInfo
    author: AuthorInfo
    custodian: OrganizationRef
    language: str = ""
    legal_authenticator: PersonRef | None = None
    recipient: OrganizationRef | None = None  # informationRecipient (e.g. where a referral goes)
    encounter: EncounterInfo | None = None
    replaces: InstanceId | None = None  # relatedDocument[@typeCode=RPLC]/parentDocument/id
    record_ids: tuple[tuple[str, str], ...] = ()  # report / request / specimen numbers of patientRole
    standard: str = ""  # "WS/T 500.53"

    @property
    def document_key(self) -> str:
        """The document id as it appears in entry identifiers: ``root:extension`` (see identity)."""
        return document_key(self.document_id)


@dataclass(slots=True)
class CdaDocument:
    """A read document: the original bytes (never changed), the parsed tree and the header."""

    raw: bytes
    root: Element
    header: CdaHeader
    body: Element | None = field(default=None)  # structuredBody, when the document has one
