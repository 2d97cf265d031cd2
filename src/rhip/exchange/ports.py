"""What the exchange needs from its siblings, declared here and wired by bootstrap (DESIGN.md §3).

The exchange never imports the EMPI or the document registry: a v2 ``A40`` or a v3 ``PRPA_IN201304UV02``
asks a :class:`PatientMerger`, the v3 document services ask a :class:`DocumentIntake`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class PatientMerger(Protocol):
    """Records in the master patient index that two source records are one person."""

    def merge(self, surviving_patient_id: str, obsolete_patient_id: str, *, actor: str) -> None:
        """Put the obsolete record's person into the surviving record's person (never deletes data)."""


@dataclass(frozen=True)
class DocumentSummary:
    """One registered document as the v3 document query answers it."""

    document_reference_id: str
    document_id: str  # ClinicalDocument/id as root^extension, or the masterIdentifier value
    type_code: str  # C0001, HSDB04.01 …
    type_display: str
    patient_id: str  # the source Patient the document belongs to
    author_organization: str  # the institution code
    date: str  # FHIR dateTime of the document
    status: str  # current | superseded | entered-in-error
    confidentiality: str
    content_type: str = "text/xml"
    size: int = 0
    sha1_base64: str = ""


@dataclass(frozen=True)
class DocumentReceipt:
    """What registering a document produced."""

    document_reference_id: str
    binary_id: str
    patient_id: str
    extracted: list[str] = field(default_factory=list)  # Type/id of the resources extracted from it
    replaced: str | None = None  # the DocumentReference it superseded


@dataclass(frozen=True)
class DocumentQuery:
    """A document query (RCMR_IN000029UV01): a patient by any identifier, and optional filters."""

    patient_identifiers: tuple[tuple[str, str], ...] = ()  # (system, value)
    type_codes: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    author_organization: str | None = None
    include_superseded: bool = False
    limit: int = 100


class DocumentIntake(Protocol):
    """The document registry and repository as the v3 document services use it."""

    def submit(self, cda: bytes, *, sender: str, channel: str) -> DocumentReceipt:
        """Check, store, register and extract one CDA document; raises an RhipError when it is refused."""

    def query(self, query: DocumentQuery) -> list[DocumentSummary]:
        """Registered documents matching ``query``, newest first."""

    def retrieve(self, document_id: str) -> tuple[bytes, DocumentSummary]:
        """The original bytes of a document (by document id or DocumentReference id) and its summary."""
