"""What the document registry answers, the errors it raises, and the rejects sink it reports refusals to.

The summary, receipt and query types mirror those of ``rhip.exchange.ports`` field for field: the exchange
and the documents are sibling capabilities and may not import each other (DESIGN.md §3); bootstrap hands
the :class:`~rhip.documents.service.DocumentService` to the exchange as its ``DocumentIntake``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from rhip.core.errors import Conflict, InvalidRequest, ResourceNotFound


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


class RejectSink(Protocol):
    """Where refused documents are kept with their raw bytes (bootstrap wires the exchange's RejectStore)."""

    def record(
        self, *, channel: str, sender: str, raw: bytes, reason_code: str, reason: str, content_type: str = ""
    ) -> int:
        """Keep one refused document; its reject id."""


class DocumentRejected(InvalidRequest):
    """A document the registry refuses: its header says too little to register it."""

    code = "RHIP-DOC-0001"


class DocumentConflict(Conflict):
    """A document id already registered with other bytes (XDS: non-identical hash)."""

    code = "RHIP-DOC-0002"


class ReplacementRefused(Conflict):
    """A replacement names a document that is not the current version of its set."""

    code = "RHIP-DOC-0003"


class DocumentNotFound(ResourceNotFound):
    """No registered document has that id."""

    code = "RHIP-DOC-0004"


class ProvideBundleInvalid(InvalidRequest):
    """An MHD ProvideDocumentBundle that breaks the transaction's rules (attachment, hash, size …)."""

    code = "RHIP-DOC-0005"


class AmbiguousDocumentId(InvalidRequest):
    """A document id given without its root names documents of several roots: give ``root^extension``."""

    code = "RHIP-DOC-0006"
