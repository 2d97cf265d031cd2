"""The CDA header of WS/T 500 and WS/T 483 shared documents (cn-standards.md §3.3) and the document shell."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rhip.cda import systems as s
from rhip.cda.fhirread import (
    Resource,
    coding,
    extension,
    identifier,
    identifier_with_prefix,
    oid,
    person_name,
    ref_id,
    text,
    ts,
)
from rhip.cda.write.context import DocumentContext
from rhip.cda.write.markup import cd, esc, ii, interval, q, time

DOCUMENT_SYSTEM = "2.16.156.10011.2.4"
DOCUMENT_SERIAL = "2.16.156.10011.1.1"  # 文档流水号
HEALTH_RECORD = "2.16.156.10011.1.2"
ID_CARD = "2.16.156.10011.1.3"
STAFF = "2.16.156.10011.1.4"
ORGANIZATION = "2.16.156.10011.1.5"
AUTHOR = "2.16.156.10011.1.7"
OUTPATIENT_NO = "2.16.156.10011.1.11"
INPATIENT_NO = "2.16.156.10011.1.12"
CASE_NO = "2.16.156.10011.1.13"  # 病案号: the hospital's own patient number
HEALTH_CARD = "2.16.156.10011.1.19"
DEPARTMENT = "2.16.156.10011.1.26"

_SEX = {
    "male": ("1", "男性"),
    "female": ("2", "女性"),
    "other": ("9", "未说明的性别"),
    "unknown": ("0", "未知的性别"),
}
_ETHNICITY = "urn:rhip:ext:ethnicity"
# Where a village-level part (村, 社区 …) ends in an address line; the rest is the house number.
_VILLAGE = re.compile(r"^(.+?(?:村|社区|居委会|小区))(.+)$")


@dataclass(frozen=True, slots=True)
class DocumentType:
    """A shared-document type: its code in 2.16.156.10011.2.4, templateId and standard title."""

    code: str
    template_id: str
    title: str
    standard: str  # "WS/T 500.n" or "WS/T 483.n"


# Patient identifiers by the kind a document type wants in patientRole.
_PATIENT_IDS = {
    "health_record": (HEALTH_RECORD, s.HEALTH_RECORD),
    "health_card": (HEALTH_CARD, s.HEALTH_CARD),
    "outpatient": (OUTPATIENT_NO, s.OUTPATIENT_NO),
    "inpatient": (INPATIENT_NO, s.INPATIENT_NO),
}


def _patient_ids(ctx: DocumentContext, kinds: Iterable[str | tuple[str, str | None]]) -> str:
    """The patientRole ids: the wanted identifiers the patient has (one unknown id when none).

    A kind is a name from ``_PATIENT_IDS``, ``case`` (病案号), ``encounter_inpatient`` (住院号 of the
    stay) or a ready (root, value) pair such as a report number.
    """
    out = []
    for kind in kinds:
        if isinstance(kind, tuple):
            root, value = kind
        elif kind == "case":
            value = identifier_with_prefix(ctx.patient, "urn:rhip:mrn:")
            root = CASE_NO
        elif kind == "encounter_inpatient":
            value = identifier(ctx.encounter, s.INPATIENT_NO) or identifier(ctx.encounter, s.OUTPATIENT_NO)
            root = INPATIENT_NO
        else:
            root, system = _PATIENT_IDS[kind]
            value = identifier(ctx.patient, system)
        if value:
            out.append(ii(root, value))
    return "".join(out) or '<id nullFlavor="UNK"/>'


def _address(resource: Resource, use: str = "H") -> str:
    """An AD with the 省/市/县/乡/村/门牌 parts (DE02.01.009.01–.06).

    The WS/T samples write 乡镇 in a ``township`` element the core schema does not have; ``precinct``
    (a subdivision of a municipality) carries it here instead.
    """
    addresses = resource.get("address") or ()
    if not addresses:
        return ""
    addr = addresses[0]
    state, city, county = addr.get("state", ""), addr.get("city", ""), addr.get("district", "")
    line = "".join(addr.get("line", ()))
    # 乡镇/街道 is in the full text between the county and the street line.
    full = addr.get("text", "")
    head = state + city + county
    township = (
        full[len(head) : len(full) - len(line)] if full.startswith(head) and full.endswith(line) else ""
    )
    match = _VILLAGE.match(line)
    village, house = (match.group(1), match.group(2)) if match else ("", line)
    parts = [
        ("state", state),
        ("city", city),
        ("county", county),
        ("precinct", township),
        ("streetName", village),
        ("houseNumber", house),
        ("postalCode", addr.get("postalCode", "")),
    ]
    inner = "".join(f"<{tag}>{esc(value)}</{tag}>" for tag, value in parts if value)
    return f'<addr use="{use}">{inner}</addr>' if inner else ""


def _telecom(resource: Resource) -> str:
    """Phone numbers as tel: URLs."""
    return "".join(
        f'<telecom value="tel:{q(t["value"])}"/>'
        for t in resource.get("telecom", ())
        if t.get("system", "phone") == "phone" and t.get("value")
    )


def _patient(ctx: DocumentContext) -> str:
    """The patient: ID-card number, name, sex, birth, marital status and ethnicity."""
    p = ctx.patient
    id_card = identifier(p, s.ID_CARD)
    sex_code, sex_name = _SEX.get(p.get("gender", "unknown"), _SEX["unknown"])
    out = ['<patient classCode="PSN" determinerCode="INSTANCE">']
    if id_card:
        out.append(ii(ID_CARD, id_card))
    out.append(f"<name>{esc(person_name(p))}</name>")
    out.append(
        cd(
            "administrativeGenderCode",
            sex_code,
            "2.16.156.10011.2.3.3.4",
            "生理性别代码表(GB/T 2261.1)",
            sex_name,
        )
    )
    if p.get("birthDate"):
        out.append(f'<birthTime value="{ts(p["birthDate"])}"/>')
    marital = coding(p.get("maritalStatus"), s.MARITAL)
    if marital:
        out.append(
            cd(
                "maritalStatusCode",
                marital["code"],
                "2.16.156.10011.2.3.3.5",
                "婚姻状况代码表(GB/T 2261.2)",
                marital.get("display"),
            )
        )
    ethnic_ext = extension(p, _ETHNICITY)
    ethnic = coding(ethnic_ext.get("valueCodeableConcept") if ethnic_ext else None, s.ETHNICITY)
    if ethnic:
        out.append(
            cd(
                "ethnicGroupCode",
                ethnic["code"],
                "2.16.156.10011.2.3.3.3",
                "民族类别代码表(GB 3304)",
                ethnic.get("display"),
            )
        )
    out.append("</patient>")
    return "".join(out)


def _org_code(org: Resource | None) -> str | None:
    """The institution code (its 2.16.156.10011.1.5 identifier)."""
    return identifier(org, s.ORGANIZATION_OID)


def organization(org: Resource, tag: str = "representedOrganization") -> str:
    """An Organization with its institution code and name."""
    return f"<{tag}>{ii(ORGANIZATION, _org_code(org))}<name>{esc(org.get('name', ''))}</name></{tag}>"


def _org_telecom(org: Resource) -> str:
    """The first phone number of an organization (CustodianOrganization allows only one)."""
    phones = [t for t in org.get("telecom", ()) if t.get("value")]
    return f'<telecom value="tel:{q(phones[0]["value"])}"/>' if phones else ""


def _staff_no(practitioner: Resource) -> str | None:
    """The practitioner's staff number (工号)."""
    return identifier(practitioner, s.STAFF_NO)


def assigned_person(practitioner: Resource) -> str:
    """The person of an assigned role: just the name, as the samples write it."""
    return f"<assignedPerson><name>{esc(person_name(practitioner))}</name></assignedPerson>"


def _author(ctx: DocumentContext, when: str) -> str:
    """The author: the practitioner at the custodian organization."""
    return (
        f'<author typeCode="AUT" contextControlCode="OP">{time("time", when)}'
        f'<assignedAuthor classCode="ASSIGNED">{ii(AUTHOR, _staff_no(ctx.author))}'
        f"{assigned_person(ctx.author)}{organization(ctx.custodian)}</assignedAuthor></author>"
    )


def _custodian(ctx: DocumentContext) -> str:
    """The custodian: the organization that keeps the document."""
    org = ctx.custodian
    return (
        '<custodian typeCode="CST"><assignedCustodian classCode="ASSIGNED">'
        '<representedCustodianOrganization classCode="ORG" determinerCode="INSTANCE">'
        f"{ii(ORGANIZATION, _org_code(org))}<name>{esc(org.get('name', ''))}</name>"
        f"{_org_telecom(org)}{_address(org, 'WP')}"
        "</representedCustodianOrganization></assignedCustodian></custodian>"
    )


def _recipient(org: Resource) -> str:
    """The organization a referral goes to."""
    return (
        '<informationRecipient typeCode="PRCP"><intendedRecipient classCode="ASSIGNED">'
        f"{organization(org, 'receivedOrganization')}</intendedRecipient></informationRecipient>"
    )


def _legal(ctx: DocumentContext, role: str, when: str) -> str:
    """The legal authenticator (the signing physician) in the role the document names."""
    return (
        f'<legalAuthenticator typeCode="LA" contextControlCode="OP">{time("time", when)}<signatureCode code="S"/>'
        f'<assignedEntity classCode="ASSIGNED">{ii(STAFF, _staff_no(ctx.author))}'
        f'<code displayName="{q(role)}"/>{assigned_person(ctx.author)}</assignedEntity></legalAuthenticator>'
    )


def _contacts(patient: Resource) -> str:
    """A header participant (NOT, associatedEntity ECON) for each of the patient's contacts (联系人)."""
    out = []
    for contact in patient.get("contact", ()):
        name = contact.get("name") or {}
        shown = name.get("text") or name.get("family", "") + "".join(name.get("given", ()))
        relation = coding((contact.get("relationship") or [{}])[0])
        relation_text = text((contact.get("relationship") or [{}])[0])
        code = (
            cd("code", relation.get("code"), oid(relation.get("system")), None, relation_text or None)
            if relation
            else ""
        )
        place = {"address": [contact["address"]]} if contact.get("address") else {}
        out.append(
            '<participant typeCode="NOT"><associatedEntity classCode="ECON">'
            f"{code}{_address(place)}{_telecom(contact)}"
            f"<associatedPerson><name>{esc(shown)}</name></associatedPerson></associatedEntity></participant>"
        )
    return "".join(out)


def _encounter(ctx: DocumentContext, code: str) -> str:
    """componentOf/encompassingEncounter: visit number, period, disposition, attending and department."""
    enc = ctx.encounter
    if enc is None:
        return ""
    klass = enc.get("class", {}).get("code")
    number = identifier(enc, s.INPATIENT_NO) or identifier(enc, s.OUTPATIENT_NO)
    root = INPATIENT_NO if klass == "IMP" else OUTPATIENT_NO
    period = enc.get("period", {})
    effective = (
        interval(ts(period.get("start")), ts(period.get("end"))) or '<effectiveTime nullFlavor="UNK"/>'
    )
    disposition = coding(enc.get("hospitalization", {}).get("dischargeDisposition"))
    dispo = (
        cd(
            "dischargeDispositionCode",
            disposition.get("code"),
            oid(disposition.get("system")),
            "离院方式代码表",
            disposition.get("display"),
        )
        if disposition
        else ""
    )
    # Only the author's staff number is known; other participants come with their name alone.
    participants = "".join(
        f'<encounterParticipant typeCode="ATND"><assignedEntity classCode="ASSIGNED">'
        f"{ii(STAFF, _staff_no(ctx.author) if ref_id(who) == ctx.author.get('id') else None)}"
        f"<assignedPerson><name>{esc(who['display'])}</name></assignedPerson>"
        "</assignedEntity></encounterParticipant>"
        for who in (p.get("individual") or {} for p in enc.get("participant", ()))
        if who.get("display")
    )
    location = ""
    for loc in enc.get("location", ()):
        dept = loc.get("location", {})
        if dept.get("display"):
            location = (
                '<location typeCode="LOC"><healthCareFacility classCode="SDLOC"><serviceProviderOrganization>'
                f"{ii(DEPARTMENT, ref_id(dept))}<name>{esc(dept['display'])}</name>"
                f'<asOrganizationPartOf classCode="PART">{organization(ctx.custodian, "wholeOrganization")}'
                "</asOrganizationPartOf></serviceProviderOrganization></healthCareFacility></location>"
            )
            break
    return (
        f'<componentOf typeCode="COMP"><encompassingEncounter classCode="ENC" moodCode="EVN">'
        f"{ii(root, number)}{code}{effective}{dispo}{participants}{location}</encompassingEncounter></componentOf>"
    )


def document(
    doc: DocumentType,
    ctx: DocumentContext,
    body: Iterable[str],
    *,
    patient_ids: Iterable[str | tuple[str, str | None]],
    author_time: str = "",
    legal_role: str | None = None,
    encounter_code: str = "",
    with_encounter: bool = True,
    recipient: Resource | None = None,
    contacts: bool = False,
) -> bytes:
    """The whole ClinicalDocument as UTF-8 bytes with an XML declaration."""
    now = ts(ctx.effective_time)
    when = author_time or now
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<realmCode code="CN"/><typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>',
        f'<templateId root="{doc.template_id}"/>',
        f'<id root="{DOCUMENT_SERIAL}" extension="{q(ctx.document_id)}"/>',
        cd("code", doc.code, DOCUMENT_SYSTEM, "卫生信息共享文档编码体系", doc.title),
        f"<title>{esc(doc.title)}</title>",
        time("effectiveTime", now),
        '<confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25" codeSystemName="Confidentiality"'
        ' displayName="正常访问保密级别"/><languageCode code="zh-CN"/>',
        f'<setId root="{DOCUMENT_SERIAL}" extension="{q(ctx.set_id or ctx.document_id)}"/>',
        f'<versionNumber value="{ctx.version}"/>',
        f'<recordTarget typeCode="RCT" contextControlCode="OP"><patientRole classCode="PAT">'
        f"{_patient_ids(ctx, patient_ids)}{_address(ctx.patient)}{_telecom(ctx.patient)}{_patient(ctx)}"
        "</patientRole></recordTarget>",
        _author(ctx, when),
        _custodian(ctx),
    ]
    if recipient is not None:
        parts.append(_recipient(recipient))
    if legal_role:
        parts.append(_legal(ctx, legal_role, when))
    if contacts:
        parts.append(_contacts(ctx.patient))
    if with_encounter:
        parts.append(_encounter(ctx, encounter_code))
    sections = [b for b in body if b]
    if not sections:  # structuredBody needs one section: say there is nothing to report
        sections = [
            f"<component><section><title>{esc(doc.title)}</title><text>无</text></section></component>"
        ]
    parts.append("<component><structuredBody>")
    parts.extend(sections)
    parts.append("</structuredBody></component></ClinicalDocument>")
    return "".join(parts).encode()
