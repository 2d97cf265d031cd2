"""The FHIR resources that register one document: DocumentReference, Binary and the people around them.

Pure functions of :class:`~rhip.documents.facts.DocumentFacts`. Organizations, Patients, Encounters and
Practitioners are conditional creates (``ifNoneExist``): a document names them but is not the authority on
them, so an existing record is referred to as it is, never overwritten by an older document's header.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from rhip.documents.cda.values import SHANGHAI
from rhip.documents.facts import CASE_NUMBER, MRN_PREFIX, PERSON_SYSTEMS, DocumentFacts, Institution

ORGANIZATION_SYSTEM = "urn:oid:2.16.156.10011.1.5"
STAFF_SYSTEM = "urn:oid:2.16.156.10011.1.4"
DOCUMENT_CODES = "urn:oid:2.16.156.10011.2.4"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
CLASS_SYSTEM = "urn:rhip:cs:document-class"
SET_ID_PREFIX = "urn:rhip:cda-set:"
VERSION_EXTENSION = "urn:rhip:ext:document-version"
ETHNICITY_EXTENSION = "urn:rhip:ext:ethnicity"
URI_SYSTEM = "urn:ietf:rfc:3986"
CDA_CONTENT_TYPE = "text/xml"

# WS 364 / CDA confidentialityCode (2.16.840.1.113883.5.25 is HL7 v3 Confidentiality itself).
CONFIDENTIALITY_CODES = {
    "U": "unrestricted",
    "L": "low",
    "M": "moderate",
    "N": "normal",
    "R": "restricted",
    "V": "very restricted",
}
# The two families of shared documents (category): WS/T 500 电子病历, WS/T 483 健康档案.
CLASSES = {"WS/T 500": ("emr", "电子病历共享文档"), "WS/T 483": ("ehr", "健康档案共享文档")}


@dataclass(frozen=True)
class Refs:
    """The references a document's resources point at: fullUrls of this transaction or ``Type/id``."""

    patient: str
    organization: str
    custodian: str
    encounter: str | None = None
    practitioner: str | None = None


def sha1_base64(data: bytes) -> str:
    """The attachment hash of FHIR (SHA-1, base64)."""
    return base64.b64encode(hashlib.sha1(data).digest()).decode()  # noqa: S324 -- FHIR mandates SHA-1


def document_identifier(document_id: tuple[str, str]) -> dict[str, str]:
    """A CDA II as a FHIR Identifier: root as the system, extension as the value (a bare root as a URI)."""
    root, ext = document_id
    if ext:
        return {"system": f"urn:oid:{root}", "value": ext}
    return {"system": URI_SYSTEM, "value": f"urn:oid:{root}"}


def set_identifier(set_id: tuple[str, str]) -> dict[str, str]:
    """The setId, in a system of its own: ``identifier`` searches masterIdentifier too, and a first version's
    setId often equals its id."""
    root, ext = set_id
    return {"system": f"{SET_ID_PREFIX}{root}", "value": ext or root}


def token(identifier: dict[str, str]) -> str:
    """``system|value`` of an Identifier, escaped for a search parameter."""
    return f"{escape(identifier['system'])}|{escape(identifier['value'])}"


def criteria(*pairs: tuple[str, str]) -> str:
    """Conditional criteria of (parameter, value) pairs, URL-encoded (values already escaped for search)."""
    return urlencode(pairs, safe=":|", quote_via=quote)


def escape(value: str) -> str:
    """A value escaped for a search parameter (the inverse of the parser's unescape)."""
    for ch in ("\\", ",", "|", "$"):
        value = value.replace(ch, "\\" + ch)
    return value


def as_instant(value: str, zone: ZoneInfo = SHANGHAI) -> str:
    """A FHIR dateTime as an instant (DocumentReference.date): a bare date becomes its midnight in ``zone``
    (the registry's configured time zone)."""
    if "T" in value:
        return value
    parts = value.split("-")
    year, month, day = (
        int(parts[0]),
        int(parts[1]) if len(parts) > 1 else 1,
        int(parts[2]) if len(parts) > 2 else 1,
    )
    return datetime(year, month, day, tzinfo=zone).isoformat(timespec="seconds")


# -- conditional entries --------------------------------------------------------------------------------


def organization_entry(org: Institution, full_url: str, source: str) -> dict[str, Any]:
    """An institution by its code: the registered Organization, or a new one with the document's name for it."""
    resource: dict[str, Any] = {
        "resourceType": "Organization",
        "meta": {"source": source},
        "identifier": [{"system": ORGANIZATION_SYSTEM, "value": org.code}],
        "active": True,
    }
    if org.name:
        resource["name"] = org.name
    return _conditional(
        full_url, resource, criteria(("identifier", f"{ORGANIZATION_SYSTEM}|{escape(org.code)}"))
    )


def patient_criteria(facts: DocumentFacts) -> tuple[str, list[dict[str, str]]] | None:
    """The criteria of the document's source Patient and the identifiers a new one gets; None without any.

    One source Patient per (institution, local id): the institution's own number (病案号) when the
    document has it, else the most specific person-level identifier at that institution.
    """
    code = facts.author_org.code
    mrn_system = f"{MRN_PREFIX}{code}"
    identifiers: list[dict[str, str]] = []
    for system, value in facts.patient_identifiers:
        if system in (CASE_NUMBER, mrn_system):
            identifiers.append({"system": mrn_system, "value": value})
        elif system in PERSON_SYSTEMS:
            identifiers.append({"system": system, "value": value})
    identifiers = list({(i["system"], i["value"]): i for i in identifiers}.values())
    if not identifiers:
        return None
    mrn = next((i for i in identifiers if i["system"] == mrn_system), None)
    if mrn is not None:
        return criteria(("identifier", token(mrn))), identifiers
    best = min(identifiers, key=lambda i: PERSON_SYSTEMS.index(i["system"]))
    at_org = ("organization.identifier", f"{ORGANIZATION_SYSTEM}|{escape(code)}")
    return criteria(("identifier", token(best)), at_org), identifiers


def patient_entry(
    facts: DocumentFacts,
    condition: str,
    identifiers: list[dict[str, str]],
    refs_org: str,
    full_url: str,
    source: str,
) -> dict[str, Any]:
    """The document's Patient as a conditional create, from the header's recordTarget."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"source": source},
        "identifier": identifiers,
        "active": True,
        "managingOrganization": {"reference": refs_org},
    }
    if facts.patient_name:
        resource["name"] = [_human_name(facts.patient_name)]
    if facts.gender:
        resource["gender"] = facts.gender
    if facts.birth_date:
        resource["birthDate"] = facts.birth_date
    if facts.telecom:
        resource["telecom"] = [{"system": "phone", "value": t} for t in facts.telecom]
    if facts.address:
        resource["address"] = [{"use": "home", **facts.address}]
    if facts.marital_status:
        resource["maritalStatus"] = {"coding": [facts.marital_status]}
    if facts.ethnicity:
        resource["extension"] = [
            {"url": ETHNICITY_EXTENSION, "valueCodeableConcept": {"coding": [facts.ethnicity]}}
        ]
    return _conditional(full_url, resource, condition)


def _human_name(text: str) -> dict[str, Any]:
    """A Chinese name: the first character as the family name (as the synthetic region writes them)."""
    name: dict[str, Any] = {"use": "official", "text": text}
    if len(text) >= 2 and " " not in text:
        name["family"], name["given"] = text[0], [text[1:]]
    return name


def conditional(full_url: str, resource: dict[str, Any], condition: str) -> dict[str, Any]:
    """A conditional create entry (``ifNoneExist``)."""
    return _conditional(full_url, resource, condition)


def practitioner_entries(
    facts: DocumentFacts, org_url: str, practitioner_url: str, role_url: str, source: str
) -> list[dict[str, Any]]:
    """The author as a Practitioner of the institution (staff number) and the PractitionerRole tying them.

    A staff number is unique only within its institution, so the Practitioner is looked for among those with
    a role there, as the registry (and the synthetic region) records staff.
    """
    author = facts.author
    if author is None or not author.staff_no:
        return []
    code, staff = escape(facts.author_org.code), escape(author.staff_no)
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "meta": {"source": source},
        "identifier": [
            {"system": STAFF_SYSTEM, "value": author.staff_no, "assigner": {"reference": org_url}}
        ],
        "active": True,
    }
    if author.name:
        practitioner["name"] = [_human_name(author.name)]
    role = {
        "resourceType": "PractitionerRole",
        "meta": {"source": source},
        "active": True,
        "practitioner": {"reference": practitioner_url},
        "organization": {"reference": org_url},
    }
    at_org = f"{ORGANIZATION_SYSTEM}|{code}"
    staff_token = f"{STAFF_SYSTEM}|{staff}"
    return [
        _conditional(
            practitioner_url,
            practitioner,
            criteria(
                ("identifier", staff_token),
                ("_has:PractitionerRole:practitioner:organization.identifier", at_org),
            ),
        ),
        _conditional(
            role_url,
            role,
            criteria(("practitioner.identifier", staff_token), ("organization.identifier", at_org)),
        ),
    ]


def _conditional(full_url: str, resource: dict[str, Any], condition: str) -> dict[str, Any]:
    rtype = resource["resourceType"]
    return {
        "fullUrl": full_url,
        "resource": resource,
        "request": {"method": "POST", "url": rtype, "ifNoneExist": condition},
    }


# -- the document itself ---------------------------------------------------------------------------------


def binary_entry(raw: bytes, binary_id: str, document_url: str, source: str) -> dict[str, Any]:
    """The original bytes, unchanged, under an id chosen here (the attachment url must name it)."""
    resource = {
        "resourceType": "Binary",
        "id": binary_id,
        "meta": {"source": source},
        "contentType": CDA_CONTENT_TYPE,
        "securityContext": {"reference": document_url},
        "data": base64.b64encode(raw).decode(),
    }
    return {
        "fullUrl": f"urn:uuid:{binary_id}",
        "resource": resource,
        "request": {"method": "PUT", "url": f"Binary/{binary_id}"},
    }


def confidentiality_label(code: str) -> dict[str, Any]:
    """A confidentiality code as a securityLabel (unknown codes read as N, the WS/T 500 default)."""
    code = code if code in CONFIDENTIALITY_CODES else "N"
    return {"coding": [{"system": CONFIDENTIALITY, "code": code, "display": CONFIDENTIALITY_CODES[code]}]}


def document_reference(
    facts: DocumentFacts,
    raw: bytes,
    binary_id: str,
    refs: Refs,
    source: str,
    *,
    status: str = "current",
    facility_type: dict[str, Any] | None = None,
    zone: ZoneInfo = SHANGHAI,
) -> dict[str, Any]:
    """The DocumentReference of a CDA document (MHD Comprehensive metadata where the header has it); a
    date-only effectiveTime is dated at its midnight in ``zone``."""
    author: list[dict[str, Any]] = [
        {
            "reference": refs.organization,
            "identifier": {"system": ORGANIZATION_SYSTEM, "value": facts.author_org.code},
            **({"display": facts.author_org.name} if facts.author_org.name else {}),
        }
    ]
    if refs.practitioner:
        author.append(
            {"reference": refs.practitioner, **({"display": facts.author.name} if facts.author else {})}
        )
    attachment: dict[str, Any] = {
        "contentType": CDA_CONTENT_TYPE,
        "language": "zh-CN",
        "url": f"Binary/{binary_id}",
        "size": len(raw),
        "hash": sha1_base64(raw),
        "title": facts.title or facts.code_display,
        "creation": facts.effective_time,
    }
    content: dict[str, Any] = {"attachment": attachment}
    if facts.template_id:
        content["format"] = {
            "system": URI_SYSTEM,
            "code": f"urn:oid:{facts.template_id}",
            **({"display": facts.standard} if facts.standard else {}),
        }
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "meta": {"source": source},
        "extension": [{"url": VERSION_EXTENSION, "valueInteger": facts.version}],
        "masterIdentifier": document_identifier(facts.document_id),
        "status": status,
        "docStatus": "final",
        "type": {
            "coding": [{"system": DOCUMENT_CODES, "code": facts.code, "display": facts.code_display}],
            "text": facts.title or facts.code_display,
        },
        "subject": {"reference": refs.patient},
        "date": as_instant(facts.effective_time, zone),
        "author": author,
        "custodian": {
            "reference": refs.custodian,
            "identifier": {"system": ORGANIZATION_SYSTEM, "value": facts.custodian.code},
        },
        "description": facts.title or facts.code_display,
        "securityLabel": [confidentiality_label(facts.confidentiality)],
        "content": [content],
    }
    if facts.set_id:
        resource["identifier"] = [set_identifier(facts.set_id)]
    family = next((v for k, v in CLASSES.items() if facts.standard.startswith(k)), None)
    if family:
        resource["category"] = [
            {"coding": [{"system": CLASS_SYSTEM, "code": family[0], "display": family[1]}]}
        ]
    context: dict[str, Any] = {"sourcePatientInfo": {"reference": refs.patient}}
    if refs.encounter:
        context["encounter"] = [{"reference": refs.encounter}]
    visit = facts.visit
    period = {k: v for k, v in (("start", visit.start), ("end", visit.end)) if v} if visit else {}
    if period:
        context["period"] = period
    if facility_type:
        context["facilityType"] = facility_type
    if facts.department:
        context["practiceSetting"] = {"text": facts.department}
    resource["context"] = context
    return resource


def replaces(target: str) -> dict[str, Any]:
    """The relatesTo of a replacement."""
    return {"code": "replaces", "target": {"reference": target}}
