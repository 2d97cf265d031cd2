"""Helpers of the HL7 v3 tests: a fixed clock, counted ids, a fake document registry, sending and reading."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree

from rhip.core.errors import InvalidRequest, ResourceNotFound
from rhip.exchange.hl7v3.service import V3Answer, V3Service
from rhip.exchange.ports import DocumentQuery, DocumentReceipt, DocumentSummary
from rhip.xmlsafe import parse_xml

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
HL7 = "{urn:hl7-org:v3}"
NOW = datetime(2025, 3, 1, 0, 0, 0, tzinfo=UTC)


class FixedClock:
    """Always the same instant, so that answers are reproducible."""

    def now(self) -> datetime:
        """The fixed instant."""
        return NOW


def counter_uuids() -> Callable[[], str]:
    """UUIDs 00000000-0000-4000-8000-000000000001, …002, … (message ids and full URLs)."""
    numbers = itertools.count(1)
    return lambda: f"00000000-0000-4000-8000-{next(numbers):012d}"


@dataclass
class FakeIntake:
    """A DocumentIntake that keeps documents in memory and reads a few header fields itself."""

    documents: dict[str, tuple[bytes, DocumentSummary]] = field(default_factory=dict)
    submitted: list[tuple[str, str]] = field(default_factory=list)
    patient_id: str = "unknown"  # the source Patient every document is said to belong to
    last_query: DocumentQuery | None = None

    def submit(self, cda: bytes, *, sender: str, channel: str) -> DocumentReceipt:
        """Keep a document; refuse anything that is not a ClinicalDocument."""
        root = parse_xml(cda)
        if etree.QName(root).localname != "ClinicalDocument":
            raise InvalidRequest("not a CDA document", code="RHIP-CDA-0001", expression=["ClinicalDocument"])
        doc_id = root.find(f"{HL7}id")
        code = root.find(f"{HL7}code")
        assert doc_id is not None and code is not None
        number = len(self.documents) + 1
        summary = DocumentSummary(
            document_reference_id=f"docref-{number}",
            document_id=f"{doc_id.get('root')}^{doc_id.get('extension')}",
            type_code=code.get("code", ""),
            type_display=code.get("displayName", ""),
            patient_id=self.patient_id,
            author_organization=sender,
            date="2025-02-01T09:30:00+08:00",
            status="current",
            confidentiality="N",
            size=len(cda),
        )
        self.documents[summary.document_id] = (cda, summary)
        self.submitted.append((sender, channel))
        return DocumentReceipt(summary.document_reference_id, f"binary-{number}", self.patient_id)

    def query(self, query: DocumentQuery) -> list[DocumentSummary]:
        """Every kept document of the asked types (the patient is not checked)."""
        self.last_query = query
        return [
            s for _, s in self.documents.values() if not query.type_codes or s.type_code in query.type_codes
        ]

    def retrieve(self, document_id: str) -> tuple[bytes, DocumentSummary]:
        """A kept document by its id."""
        if document_id not in self.documents:
            raise ResourceNotFound(f"no document {document_id}")
        return self.documents[document_id]


def content_type_of(body: bytes) -> str:
    """The content type a sender would use for ``body``."""
    if b"http://www.w3.org/2003/05/soap-envelope" in body[:2000]:
        return "application/soap+xml; charset=utf-8"
    if b"http://schemas.xmlsoap.org/soap/envelope/" in body[:2000]:
        return "text/xml; charset=utf-8"
    return "application/xml"


def send(service: V3Service, body: bytes, content_type: str | None = None) -> V3Answer:
    """Send ``body`` as a sender would."""
    return service.handle(body, content_type or content_type_of(body))


def ack_of(answer: V3Answer) -> tuple[str, str]:
    """(acknowledgement typeCode, detail code) of an answer, whatever its envelope."""
    root = parse_xml(answer.body)
    for ack in root.iter(f"{HL7}acknowledgement"):
        code = ack.find(f"{HL7}acknowledgementDetail/{HL7}code")
        return ack.get("typeCode", ""), code.get("code", "") if code is not None else ""
    result = root.find(f".//{HL7}HIPMessageServerResult")
    if result is not None and result.text:
        return ack_of(V3Answer(answer.status, result.text.encode(), "", ""))
    raise AssertionError(f"no acknowledgement in {answer.body[:300]!r}")


def detail_text(answer: V3Answer) -> str:
    """The acknowledgementDetail text of an answer."""
    root = parse_xml(answer.body)
    text = next(root.iter(f"{HL7}acknowledgementDetail")).find(f"{HL7}text")
    assert text is not None
    return text.get("value", "")


Resource = dict[str, Any]
