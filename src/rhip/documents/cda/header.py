"""Reading a CDA R2 shared document: hardened parse, then the header checks of WS/T 500 / WS/T 483.

Each check that fails raises :class:`CdaRejected` with its own stable code and the path of the element
(cn-standards.md §3.3 for the conventions checked).
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from lxml import etree

from rhip.documents.cda import errors as e
from rhip.documents.cda.codes import DOCUMENT_CODES
from rhip.documents.cda.doctypes import DOCUMENT_TYPES
from rhip.documents.cda.errors import CdaRejected, CdaTooLarge
from rhip.documents.cda.model import AuthorInfo, CdaDocument, CdaHeader, InstanceId, OrganizationRef
from rhip.documents.cda.parties import organization, patient, person, role_identifiers
from rhip.documents.cda.values import SHANGHAI, fhir_time, instance_id, string, time_of
from rhip.documents.cda.visit import encounter_info
from rhip.documents.cda.xmlpath import V3, Element, attr, child, children
from rhip.xmlsafe import DEFAULT_MAX_BYTES, XmlRejected, XmlTooLarge, parse_xml

CDA_TYPE_ID = "2.16.840.1.113883.1.3"
# POCD_HD000040 is what CDA R2 itself prescribes; the WS/T 500 samples write POCD_MT000040.
CDA_TYPE_EXTENSIONS = frozenset(("POCD_HD000040", "POCD_MT000040"))
CONFIDENTIALITY_SYSTEM = "2.16.840.1.113883.5.25"
CONFIDENTIALITY_CODES = frozenset("ULMNRV")
_OID_OR_UUID = re.compile(
    r"[0-2](\.(0|[1-9][0-9]*))+|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
)
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_VERSION = re.compile(r"[0-9]{1,9}")
_DOC = "/ClinicalDocument"


def read_document(
    data: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES, zone: ZoneInfo = SHANGHAI
) -> CdaDocument:
    """Parse ``data`` safely and check its header; raises CdaRejected (RHIP-CDA-00nn) naming the element."""
    try:
        root = parse_xml(data, max_bytes=max_bytes)
    except XmlTooLarge as exc:
        raise CdaTooLarge(e.TOO_LARGE, exc.message) from None
    except XmlRejected as exc:
        raise CdaRejected(e.MALFORMED, exc.message) from None
    return document_of(data, root, zone)


def document_of(data: bytes, root: Element, zone: ZoneInfo = SHANGHAI) -> CdaDocument:
    """A document whose bytes were already parsed safely (``root``), with its header checked."""
    header = read_header(root, zone)
    return CdaDocument(raw=data, root=root, header=header, body=child(root, "component", "structuredBody"))


def read_header(root: Element, zone: ZoneInfo = SHANGHAI) -> CdaHeader:
    """The checked header of a parsed ClinicalDocument."""
    if root.tag != f"{{{V3}}}ClinicalDocument":
        name = etree.QName(root)
        raise CdaRejected(
            e.NOT_CDA,
            f"the root element must be ClinicalDocument in {V3}, not {name.localname} in {name.namespace or 'no namespace'}",
            "/" + name.localname,
        )
    _check_type_id(root)
    templates = tuple(attr(t, "root") for t in children(root, "templateId") if attr(t, "root"))
    if not templates:
        raise CdaRejected(e.TEMPLATE_ID, "the document has no templateId", f"{_DOC}/templateId")
    document_id = _document_id(root)
    code_el = child(root, "code")
    code = attr(code_el, "code")
    if not code or attr(code_el, "codeSystem") != DOCUMENT_CODES:
        raise CdaRejected(
            e.DOCUMENT_CODE, f"the document code must be given in codeSystem {DOCUMENT_CODES}", f"{_DOC}/code"
        )
    doc_type = DOCUMENT_TYPES.get(code)
    if doc_type is None:
        raise CdaRejected(
            e.UNKNOWN_TYPE, f"unknown document code {code[:40]!r} (not WS/T 500 or WS/T 483)", f"{_DOC}/code"
        )
    if doc_type.template_id not in templates:
        raise CdaRejected(
            e.TEMPLATE_MISMATCH,
            f"a {code} document must carry templateId {doc_type.template_id} ({doc_type.standard})",
            f"{_DOC}/templateId",
        )
    effective = _effective_time(root, zone)
    confidentiality = _confidentiality(root)
    set_id, version = _version(root)
    role = child(root, "recordTarget", "patientRole")
    if role is None:
        raise CdaRejected(
            e.RECORD_TARGET, "the document has no recordTarget/patientRole", f"{_DOC}/recordTarget"
        )
    the_patient = patient(role, zone)
    if not the_patient.identifiers:
        raise CdaRejected(
            e.PATIENT_ID,
            "the patient has no identifier with root and extension",
            f"{_DOC}/recordTarget/patientRole/id",
        )
    author = _author(root, zone)
    custodian = organization(
        child(root, "custodian", "assignedCustodian", "representedCustodianOrganization")
    )
    if custodian is None or not custodian.code:
        raise CdaRejected(
            e.CUSTODIAN,
            "the custodian organization needs an institution id",
            f"{_DOC}/custodian/assignedCustodian/representedCustodianOrganization/id",
        )
    legal = child(root, "legalAuthenticator", "assignedEntity")
    recipient = organization(child(root, "informationRecipient", "intendedRecipient", "receivedOrganization"))
    return CdaHeader(
        document_id=document_id,
        set_id=set_id,
        version_number=version,
        code=code,
        code_display=attr(code_el, "displayName") or doc_type.display,
        title=string(child(root, "title")) or doc_type.display,
        effective_time=effective,
        confidentiality=confidentiality,
        template_ids=templates,
        patient=the_patient,
        author=author,
        custodian=custodian,
        language=attr(child(root, "languageCode"), "code"),
        legal_authenticator=person(legal) if legal is not None else None,
        recipient=recipient if recipient is not None and (recipient.code or recipient.name) else None,
        encounter=encounter_info(child(root, "componentOf", "encompassingEncounter"), zone),
        replaces=_replaced(root),
        record_ids=role_identifiers(role, records=True),
        standard=doc_type.standard,
    )


def _check_type_id(root: Element) -> None:
    type_id = child(root, "typeId")
    if type_id is None:
        raise CdaRejected(e.TYPE_ID, "the document has no typeId", f"{_DOC}/typeId")
    if attr(type_id, "root") != CDA_TYPE_ID or attr(type_id, "extension") not in CDA_TYPE_EXTENSIONS:
        raise CdaRejected(
            e.TYPE_ID, f"typeId must be {CDA_TYPE_ID} with extension POCD_HD000040 (CDA R2)", f"{_DOC}/typeId"
        )


def _identifying(element: Element | None) -> InstanceId | None:
    """The II of a document (id, setId, parent id) when it names one document: a root OID with a usable
    extension (not a placeholder such as "-", "0" or "无"), or a UUID root alone; None otherwise."""
    if element is None:
        return None
    root = attr(element, "root")
    if not _OID_OR_UUID.fullmatch(root):
        return None
    found = instance_id(element)
    extension = found[1] if found else ""
    if extension and not set(extension.strip()) <= {"0"}:
        return InstanceId(root, extension)
    return InstanceId(root, "") if _UUID.fullmatch(root) else None


def _document_id(root: Element) -> InstanceId:
    found = _identifying(child(root, "id"))
    if found is None:
        raise CdaRejected(
            e.DOCUMENT_ID,
            "the document id needs a root OID with an extension, or a UUID root",
            f"{_DOC}/id",
        )
    return found


def _effective_time(root: Element, zone: ZoneInfo) -> str:
    element = child(root, "effectiveTime")
    where = f"{_DOC}/effectiveTime"
    if element is None or not attr(element, "value"):
        raise CdaRejected(e.EFFECTIVE_TIME, "the document has no effectiveTime value", where)
    try:
        value = fhir_time(attr(element, "value"), where, zone)
    except CdaRejected as exc:
        raise CdaRejected(e.EFFECTIVE_TIME, exc.message.rsplit(" (", 1)[0], where) from None
    if value is None or len(value) < 10:
        raise CdaRejected(e.EFFECTIVE_TIME, "effectiveTime must give at least a day", where)
    return value


def _confidentiality(root: Element) -> str:
    element = child(root, "confidentialityCode")
    code = attr(element, "code")
    system = attr(element, "codeSystem")
    if code not in CONFIDENTIALITY_CODES or (system and system != CONFIDENTIALITY_SYSTEM):
        raise CdaRejected(
            e.CONFIDENTIALITY,
            f"confidentialityCode must be one of U L M N R V in {CONFIDENTIALITY_SYSTEM}",
            f"{_DOC}/confidentialityCode",
        )
    return code


def _version(root: Element) -> tuple[InstanceId | None, int | None]:
    set_el, version_el = child(root, "setId"), child(root, "versionNumber")
    set_id = _identifying(set_el)  # a placeholder setId would make unrelated documents one set
    raw = attr(version_el, "value")
    if not raw:
        return set_id, None
    if not _VERSION.fullmatch(raw) or int(raw) < 1:
        raise CdaRejected(
            e.VERSION, f"versionNumber must be a positive integer, not {raw[:20]!r}", f"{_DOC}/versionNumber"
        )
    return set_id, int(raw)


def _author(root: Element, zone: ZoneInfo) -> AuthorInfo:
    author = child(root, "author")
    assigned = child(author, "assignedAuthor")
    if author is None or assigned is None:
        raise CdaRejected(e.AUTHOR, "the document has no author/assignedAuthor", f"{_DOC}/author")
    org = organization(child(assigned, "representedOrganization"))
    return AuthorInfo(time_of(child(author, "time"), zone), person(assigned), org or OrganizationRef())


def _replaced(root: Element) -> InstanceId | None:
    for related in children(root, "relatedDocument"):
        if attr(related, "typeCode") != "RPLC":
            continue
        found = _identifying(child(related, "parentDocument", "id"))
        if found is not None:
            return found
    return None
