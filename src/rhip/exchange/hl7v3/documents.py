"""电子病历/健康档案文档注册、检索、调阅: RCMR_IN000002UV02, RCMR_IN000029UV01 → RCMR_IN000030UV01,
RCMR_IN000031UV01 → RCMR_IN000032UV01, through the :class:`~rhip.exchange.ports.DocumentIntake` port.

Register (LangZhongGit ``H0601Rt.xml``): ``controlActProcess/subject/clinicalDocument`` carries the CDA document
base64-encoded in ``storageCode/originalText`` (its ``value`` attribute, as the samples write it, or its text),
or the ``ClinicalDocument`` element itself anywhere inside. The registry checks, stores, registers and extracts
it; its refusal (``RHIP-CDA-…``/``RHIP-DOC-…``) comes back as the AE's code.

Query (``H0602Rt.xml``): ``queryByParameter`` with ``patient.id/value`` (any identifier; a local id under
2.16.156.10011.2.5.1.4 is the querying institution's), ``clinicalDocument.code/value`` (document type codes),
``clinicalDocument.effectiveTime/value`` (``low``/``high``), ``custodian.id/value`` (the institution), and
``clinicalDocument.statusCode/value`` ``all`` to include superseded documents. Retrieve (``H0603Rt.xml``):
``clinicalDocument.id/value``; the answer carries the original bytes base64-encoded in
``storageCode/originalText/@value``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from lxml import etree

from rhip.core.errors import ResourceNotFound, RhipError
from rhip.exchange.hl7v3.ack import add_query_ack, query_id_of
from rhip.exchange.hl7v3.context import Accepted, Answered, Context, Inbound
from rhip.exchange.hl7v3.datatypes import DOMAIN_ROOT, MRN_PREFIX, birth_date, fhir_to_ts, identifier_system
from rhip.exchange.hl7v3.errors import (
    BadValue,
    MissingElement,
    NoQueryParameters,
    NotConfigured,
    RecordNotFound,
    V3Error,
)
from rhip.exchange.hl7v3.person_map import local_id_items
from rhip.exchange.hl7v3.person_query import limit_of, query_element
from rhip.exchange.hl7v3.xmlread import Element, attr, child, find, find_all, ids, local, path_of
from rhip.exchange.hl7v3.xmlwrite import add, add_ids, add_org_ids, detached, identifier_items
from rhip.exchange.ports import DocumentIntake, DocumentQuery, DocumentSummary

QUERY_ANSWER = "RCMR_IN000030UV01"
RETRIEVE_ANSWER = "RCMR_IN000032UV01"
DOCUMENT_ID_ROOT = "2.16.156.10011.1.1"  # 文档流水号 (CDA ClinicalDocument/id)
DOCUMENT_TYPE_ROOT = "2.16.156.10011.2.4"
CONFIDENTIALITY_ROOT = "2.16.840.1.113883.5.25"
CHANNEL = "hl7v3"  # the channel the registry names the door by (meta.source v3, rejects hl7v3)


def _intake(ctx: Context) -> DocumentIntake:
    if ctx.documents is None:
        raise NotConfigured("the document registry is not available on this platform")
    return ctx.documents


def _from_registry(error: RhipError, where: str) -> V3Error:
    """A registry refusal as an AE keeping the registry's own code."""
    location = error.expression[0] if error.expression else where
    return V3Error(error.message, location=location, code=error.code)


def document_bytes(document: Element) -> bytes:
    """The CDA document a register carries: base64 in storageCode/originalText, or an embedded element."""
    original = find(document, "storageCode/originalText")
    text = attr(original, "value") or ("".join(original.itertext()).strip() if original is not None else "")
    if text:
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise BadValue(f"{path_of(original)} is not base64", location=path_of(original)) from None
    embedded = next(
        (e for e in document.iter() if isinstance(e.tag, str) and local(e) == "ClinicalDocument"), None
    )
    if embedded is not None:
        return bytes(etree.tostring(embedded, xml_declaration=True, encoding="UTF-8"))
    where = f"{path_of(document)}/storageCode/originalText"
    raise MissingElement(
        f"{where} (the base64 CDA document) or an embedded ClinicalDocument is required", location=where
    )


def register_document(ctx: Context, inbound: Inbound) -> Accepted:
    """Hand one CDA document to the registry."""
    document = find(inbound.act, "subject/clinicalDocument")
    if document is None:
        where = f"{path_of(inbound.act)}/subject/clinicalDocument"
        raise MissingElement(f"{where} is required", location=where)
    cda = document_bytes(document)
    intake = _intake(ctx)
    sender = ctx.institution(
        inbound,
        find(document, "recordTarget/patient/providerOrganization/id"),
        find(document, "custodian/assignedCustodian/representedOrganization/id"),
        required=False,
    )
    try:
        receipt = intake.submit(cda, sender=sender or inbound.header.sender, channel=CHANNEL)
    except RhipError as error:
        raise _from_registry(error, f"{path_of(document)}/storageCode/originalText") from None
    return Accepted(f"registered as DocumentReference/{receipt.document_reference_id}")


def _query(ctx: Context, inbound: Inbound, query: Element) -> DocumentQuery:
    identifiers: list[tuple[str, str]] = []
    for value in find_all(query, "patient.id/value"):
        found = ids(value)
        domain = next((i.extension for i in found if i.root == DOMAIN_ROOT), "")
        institution = domain or ctx.institution(inbound, required=False)
        for ii in found:
            system = identifier_system(ii, institution) if ii.root != DOMAIN_ROOT else None
            if system and ii.extension:
                identifiers.append((system, ii.extension))
    if not identifiers:
        where = f"{path_of(query)}/patient.id"
        raise NoQueryParameters(f"{where}: a document query needs the patient's identifier", location=where)
    types = tuple(attr(v, "code") for v in find_all(query, "clinicalDocument.code/value") if attr(v, "code"))
    period = find(query, "clinicalDocument.effectiveTime/value")
    custodian = [i.extension for v in find_all(query, "custodian.id/value") for i in ids(v) if i.extension]
    status = attr(find(query, "clinicalDocument.statusCode/value"), "code")
    return DocumentQuery(
        patient_identifiers=tuple(identifiers),
        type_codes=types,
        date_from=birth_date(child(period, "low"), ctx.zone) if period is not None else None,
        date_to=birth_date(child(period, "high"), ctx.zone) if period is not None else None,
        author_organization=custodian[0] if custodian else None,
        include_superseded=status in ("all", "superseded"),
        limit=limit_of(query),
    )


def _document_ids(document_id: str) -> dict[str, str]:
    root, sep, extension = document_id.partition("^")
    return (
        {"root": root, "extension": extension}
        if sep
        else {"root": DOCUMENT_ID_ROOT, "extension": document_id}
    )


def add_document(
    parent: Element, summary: DocumentSummary, patient: dict[str, Any] | None, content: bytes | None = None
) -> Element:
    """A ``clinicalDocument`` of a query or retrieve answer."""
    document = add(
        add(parent, "subject", typeCode="SUBJ"), "clinicalDocument", classCode="DOCCLIN", moodCode="EVN"
    )
    add_ids(document, [_document_ids(summary.document_id)])
    code = add(document, "code", code=summary.type_code, codeSystem=DOCUMENT_TYPE_ROOT)
    if summary.type_display:
        add(code, "displayName", value=summary.type_display)
    add(document, "statusCode", code=summary.status)
    if summary.date:
        add(document, "effectiveTime", value=fhir_to_ts(summary.date))
    if summary.confidentiality:
        add(document, "confidentialityCode", code=summary.confidentiality, codeSystem=CONFIDENTIALITY_ROOT)
    if content is not None:
        storage = add(document, "storageCode")
        add(
            storage,
            "originalText",
            mediaType=summary.content_type,
            representation="B64",
            value=base64.b64encode(content).decode(),
        )
    target = add(add(document, "recordTarget", typeCode="RCT"), "patient", classCode="PAT")
    identifiers = [i for i in (patient or {}).get("identifier", ()) if i.get("system") and i.get("value")]
    local = [i for i in identifiers if str(i["system"]).startswith(MRN_PREFIX)]
    others = identifier_items([i for i in identifiers if i not in local])
    add_ids(target, [*(item for mrn in local for item in local_id_items(mrn)), *(item for item, _ in others)])
    custodian = add(add(document, "custodian", typeCode="CST"), "assignedCustodian", classCode="ASSIGNED")
    org = add(custodian, "representedOrganization", classCode="ORG", determinerCode="INSTANCE")
    add_org_ids(org, summary.author_organization)
    return document


def query_documents(ctx: Context, inbound: Inbound) -> Answered:
    """Answer a document query with the registered documents' summaries."""
    query = query_element(inbound.act)
    request = _query(ctx, inbound, query)
    try:
        found = _intake(ctx).query(request)
    except RhipError as error:
        if isinstance(error, V3Error):
            raise
        raise _from_registry(error, path_of(query)) from None
    act = detached("controlActProcess", classCode="INFO", moodCode="EVN")
    patients: dict[str, dict[str, Any] | None] = {}
    for summary in found[: request.limit]:
        if summary.patient_id not in patients:
            patients[summary.patient_id] = ctx.fhir.read("Patient", summary.patient_id)
        add_document(act, summary, patients[summary.patient_id])
    add_query_ack(act, query_id_of(query), min(len(found), request.limit), len(found))
    return Answered(QUERY_ANSWER, act)


def retrieve_document(ctx: Context, inbound: Inbound) -> Answered:
    """Answer a retrieve with the document's original bytes."""
    query = query_element(inbound.act)
    wanted = find(query, "clinicalDocument.id/value")
    candidates = []
    for ii in ids(wanted):
        if ii.root and ii.extension:
            candidates.append(f"{ii.root}^{ii.extension}")
        candidates.append(ii.extension or ii.root)
    if not candidates:
        where = f"{path_of(query)}/clinicalDocument.id/value"
        raise NoQueryParameters(f"{where} (the document id) is required", location=where)
    intake = _intake(ctx)
    for candidate in dict.fromkeys(candidates):
        try:
            content, summary = intake.retrieve(candidate)
        except ResourceNotFound:
            continue
        except RhipError as error:
            raise _from_registry(error, path_of(wanted)) from None
        act = detached("controlActProcess", classCode="INFO", moodCode="EVN")
        add_document(act, summary, ctx.fhir.read("Patient", summary.patient_id), content)
        add_query_ack(act, query_id_of(query), 1, 1)
        return Answered(RETRIEVE_ANSWER, act)
    where = path_of(wanted)
    raise RecordNotFound(f"{where}: no registered document with this id", location=where)
