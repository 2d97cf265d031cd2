"""MDM^T02 (original document notification and content) → DocumentReference (v2-to-FHIR TXA/OBX[DocumentReference]).

TXA-12 (unique document number) is the masterIdentifier (``urn:rhip:document:<institution>``), by which a
repeated message finds the document again (conditional create). TXA-2 is the type: a WS/T 483/500 document
code (HSDB…, C00nn) under ``urn:oid:2.16.156.10011.2.4``, else HL7 table 0270 (DS discharge summary …).
TXA-17 completion status gives docStatus (AU/LA final, others preliminary), TXA-19 availability the status
(OB superseded, CA entered-in-error, else current), TXA-18 confidentiality the securityLabel (v3
Confidentiality: V, R, else N). TXA-6 (origination), else TXA-4 (activity), is the date; TXA-9 (else
TXA-5) the author with the sending institution, TXA-10 the authenticator; TXA-14/15 the order numbers in
context.related. The content: the text of the TX/FT/ST OBX as one ``text/plain`` attachment, each ED (Base64,
hex or text) or RP OBX as an attachment of its own, with size and SHA-1 hash.
"""

from __future__ import annotations

import re

from rhip.exchange.hl7v2.datatypes import (
    V2_TABLE,
    coding,
    cwe_concept,
    part,
    ts_instant,
    uri_name,
    xcn_reference,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    Mapped,
    Mapper,
    MappingContext,
    MappingError,
    identifier_criteria,
    location,
    missing,
    reading,
    reference,
    required,
    required_segment,
    start,
)
from rhip.exchange.hl7v2.mapping.groups import PatientGroup, map_subject
from rhip.exchange.hl7v2.mapping.obx import attachment, bytes_attachment, is_attachment
from rhip.exchange.hl7v2.mapping.orders import ORDER_PREFIX, PLACER_PREFIX
from rhip.exchange.hl7v2.message import Message, Segment, unescape

DOCUMENT_PREFIX = "urn:rhip:document:"
DOCUMENT_CODES = "urn:oid:2.16.156.10011.2.4"  # WS/T 483 HSD…, WS/T 500 C00nn
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
_DOCUMENT_CODE = re.compile(r"^(C\d{4}|HSD[A-Z]\d{2}\.\d{2})$")
_DOC_STATUS = {"AU": "final", "LA": "final", "DI": "preliminary", "DO": "preliminary", "IN": "preliminary"}
_DOC_STATUS |= {"IP": "preliminary", "PA": "preliminary"}
_STATUS = {"OB": "superseded", "CA": "entered-in-error"}
_CONFIDENTIALITY = {"V": ("V", "very restricted"), "R": ("R", "restricted"), "U": ("N", "normal")}
_TEXT_TYPES = frozenset(("TX", "FT", "ST", "CF", "CE", "CWE"))


def document_type(txa: Segment, institution: str) -> Json:
    """TXA-2: a national document code, else an HL7 table 0270 document type; MappingError 101 when empty."""
    raw = txa.repetitions(2)[0] if txa.repetitions(2) else ""
    code = part(raw, txa.delimiters, 1)
    if not code:
        raise missing(txa, 2, "document type")
    if _DOCUMENT_CODE.match(code) and not part(raw, txa.delimiters, 3):
        return {"coding": [coding(code, part(raw, txa.delimiters, 2), DOCUMENT_CODES)]}
    with reading(txa, 2):
        concept = cwe_concept(raw, txa.delimiters, institution, V2_TABLE + "0270")
    assert concept is not None
    return concept


def content(message: Message, txa: Segment) -> list[Json]:
    """The attachments of the document: its text lines as one, each ED or RP as its own."""
    lines: list[str] = []
    files: list[Json] = []
    for obx in message.all("OBX"):
        if obx.sequence < txa.sequence:
            continue
        if is_attachment(obx):
            found = attachment(obx)
            if found is not None:
                files.append(found)
        elif obx.get(2).strip().upper() in _TEXT_TYPES or not obx.get(2).strip():
            lines += [unescape(r, obx.delimiters) for r in obx.repetitions(5)]
    text = "\n".join(lines).strip("\n")
    out = [bytes_attachment(text.encode("utf-8"), "text/plain; charset=utf-8")] if text.strip() else []
    return out + files


def _references(txa: Segment, field: int, institution: str) -> list[Json]:
    return [
        r for r in (xcn_reference(raw, txa.delimiters, institution) for raw in txa.repetitions(field)) if r
    ]


def _related(txa: Segment, institution: str) -> list[Json]:
    related = []
    for field, prefix in ((14, PLACER_PREFIX), (15, ORDER_PREFIX)):
        value = txa.get(field).strip()
        if value:
            ident = {"system": prefix + uri_name(institution), "value": value}
            related.append({"type": "ServiceRequest", "identifier": ident})
    return related


def document_reference(builder: BundleBuilder, message: Message, txa: Segment, patient_url: str) -> Json:
    """The DocumentReference of an MDM message (without context.encounter)."""
    institution, zone = builder.ctx.institution, builder.ctx.zone
    number = required(txa, 12, "unique document number")
    master = {"system": DOCUMENT_PREFIX + uri_name(institution), "value": number}
    attachments = content(message, txa)
    if not attachments:
        raise MappingError(
            "MDM^T02 carries no document content (no OBX with text, ED or RP after TXA)",
            segment="OBX",
            field=5,
            hl7_code="101",
        )
    doc: Json = {"resourceType": "DocumentReference", "masterIdentifier": master}
    doc["status"] = _STATUS.get(txa.get(19).strip().upper(), "current")
    doc_status = _DOC_STATUS.get(txa.get(17).strip().upper())
    if doc_status:
        doc["docStatus"] = doc_status
    doc["type"] = document_type(txa, institution)
    doc["subject"] = reference(patient_url)
    for n in (6, 4):
        with reading(txa, n):
            when = ts_instant(txa.get(n), zone)
        if when:
            doc["date"] = when
            break
    authors = _references(txa, 9, institution) or _references(txa, 5, institution)
    doc["author"] = [*authors, reference(builder.organization())]
    authenticators = _references(txa, 10, institution)
    if authenticators:
        doc["authenticator"] = authenticators[0]
    doc["custodian"] = reference(builder.organization())
    confidentiality = _CONFIDENTIALITY.get(txa.get(18).strip().upper())
    if confidentiality:
        doc["securityLabel"] = [{"coding": [coding(*confidentiality, CONFIDENTIALITY)]}]
    title = txa.get(16).strip()
    doc["content"] = [{"attachment": {**a, "title": title} if title else a} for a in attachments]
    return doc


def map_mdm_t02(message: Message, ctx: MappingContext) -> Mapped:
    """MDM^T02: the Patient, its visit and the DocumentReference holding the document."""
    builder = start(message, ctx)
    pid = required_segment(message, "PID")
    txa = required_segment(message, "TXA")
    subject = map_subject(builder, PatientGroup(pid, message.first("PV1")))
    doc = document_reference(builder, message, txa, subject.patient.full_url)
    context: Json = {}
    if subject.encounter is not None:
        context["encounter"] = [reference(subject.encounter.full_url)]
    with reading(txa, 4):
        activity = ts_instant(txa.get(4), ctx.zone)
    if activity:
        context["period"] = {"start": activity}
    related = _related(txa, ctx.institution)
    if related:
        context["related"] = related
    if context:
        doc["context"] = context
    where = location(message, txa)
    builder.create(doc, identifier_criteria(doc["masterIdentifier"]), where, focus=True)
    return builder.mapped([subject.patient.key])


MAPPERS: dict[str, Mapper] = {"MDM^T02": map_mdm_t02}
