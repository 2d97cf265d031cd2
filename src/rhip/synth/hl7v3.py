"""HL7 v3 registration messages in the Chinese platform style (WS/T 448 / WS/T 790, the WS/T 846 samples).

Pure functions from the FHIR shapes of ``tests/synth/examples.py`` to the interaction messages that some
institutions of the synthetic region send: person register, update and merge, organization register and
provider register. The layout follows the public hospital-platform samples (cn-standards.md §1): R2-style
data types (``<id><item root= extension=/></id>``, ``LIST_EN`` names with one ``part``), the platform OIDs
2.16.156.10011.2.5.1.x in the envelope, ``registrationRequest`` (RQO) for register and update but
``registrationEvent`` for merge, and ``<extension><item code= value=/></extension>`` for attributes the
model has no place for. Messages carry no SOAP; :func:`soap12` wraps one the way the platforms'
``HIPMessageServer`` operation receives it. Built from string templates: no lxml at run time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from rhip.cda.fhirread import identifier, person_name, ts
from rhip.synth import systems as s

Resource = Mapping[str, Any]

HL7_NS = "urn:hl7-org:v3"
SOAP12_NS = "http://www.w3.org/2003/05/soap-envelope"
MESSAGE_ID_ROOT = "2.16.156.10011.2.5.1.1"
# The samples name interactions under the platform's own OID, not HL7's 2.16.840.1.113883.1.6.
INTERACTION_ID_ROOT = "2.16.156.10011.2.5.1.2"
DEVICE_ROOT = "2.16.156.10011.2.5.1.3"
PATIENT_ID_ROOT = "2.16.156.10011.2.5.1.4"
DOMAIN_ID_ROOT = "2.16.156.10011.2.5.1.5"
ID_CARD_ROOT = s.ID_CARD.removeprefix("urn:oid:")
STAFF_ROOT = s.STAFF_NO.removeprefix("urn:oid:")
ORGANIZATION_ROOT = s.ORGANIZATION_OID.removeprefix("urn:oid:")
TITLE_SYSTEM = "2.16.156.10011.2.3.3.10"  # GB/T 8561 专业技术职务代码

PATIENT_REGISTER = "PRPA_IN201311UV02"
PATIENT_UPDATE = "PRPA_IN201314UV02"
PATIENT_MERGE = "PRPA_IN201304UV02"
ORGANIZATION_REGISTER = "PRPM_IN401030UV01"
PROVIDER_REGISTER = "PRPM_IN301010UV01"
# The ``action`` of HIPMessageServer names the service, not the interaction.
SERVICE_ACTIONS = {
    PATIENT_REGISTER: "PatientInfoRegister",
    PATIENT_UPDATE: "PatientInfoUpdate",
    PATIENT_MERGE: "PatientInfoMerge",
    ORGANIZATION_REGISTER: "OrganizationInfoRegister",
    PROVIDER_REGISTER: "ProviderInfoRegister",
}

# Tabs and line breaks too: attribute-value normalization would turn them into spaces.
_ATTR = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
_SEX = {
    "male": ("1", "男性"),
    "female": ("2", "女性"),
    "other": ("9", "未说明的性别"),
    "unknown": ("0", "未知的性别"),
}
# GB/T 8561 titles; 231 主任医师 is in the samples, the rest (unverified: check against GB/T 8561).
_TITLES = {
    title: str(code)
    for first, titles in (
        (231, "主任医师 副主任医师 主治医师 医师 医士"),
        (241, "主任药师 副主任药师 主管药师 药师 药士"),
        (251, "主任护师 副主任护师 主管护师 护师 护士"),
        (261, "主任技师 副主任技师 主管技师 技师 技士"),
    )
    for code, title in enumerate(titles.split(), start=first)
}
# Person-level identifiers the samples carry as asOtherIDs (visit numbers belong to encounters).
_OTHER_IDS = (s.HEALTH_CARD, s.HEALTH_RECORD, s.INSURANCE_CARD)
_ID_CATEGORY = (
    '<idCategory code="01" codeSystem="2.16.156.10011.2.3.1.1" codeSystemName="身份证件类别代码表">'
    '<displayName value="居民身份证"/></idCategory>'
)
_ETHNICITY = "urn:rhip:ext:ethnicity"
_CONTACT = '<contactParty classCode="CON"/>'
_INTERACTION = re.compile(rb"\s*<([A-Z]{4}_IN\d{6}UV\d{2})[\s/>]")


def _q(value: object) -> str:
    """Escape text for a double-quoted attribute value."""
    return escape(str(value), _ATTR)


def _org_code(org: Resource) -> str:
    """The institution code (the 2.16.156.10011.1.5 identifier)."""
    code = identifier(org, s.ORGANIZATION_OID)
    if code is None:
        raise ValueError(f"Organization/{org.get('id')} has no {s.ORGANIZATION_OID} identifier")
    return code


def _ids(*pairs: tuple[str, str]) -> str:
    """A DSET<II> ``id`` with one item per (root, extension)."""
    items = "".join(f'<item root="{root}" extension="{_q(ext)}"/>' for root, ext in pairs)
    return f"<id>{items}</id>"


def _name(text: str | None) -> str:
    """A LIST_EN name with the whole name in one part, as the samples write Chinese names."""
    return f'<name xsi:type="LIST_EN"><item><part value="{_q(text)}"/></item></name>' if text else ""


def _telecom(resource: Resource) -> str:
    """DSET_TEL with plain numbers (as in the samples) and mailto: addresses."""
    items = "".join(
        f'<item value="{_q(("mailto:" if t.get("system") == "email" else "") + t["value"])}"/>'
        for t in resource.get("telecom", ())
        if t.get("value")
    )
    return f'<telecom xsi:type="DSET_TEL">{items}</telecom>' if items else ""


def _addr(addresses: Iterable[Resource] | None, xsi_type: str, prefer_use: str) -> str:
    """The preferred address as one item of typed parts (SAL full text, STA … ZIP)."""
    candidates = list(addresses or ())
    if not candidates:
        return ""
    a = next((x for x in candidates if x.get("use") == prefer_use), candidates[0])
    parts = (
        ("SAL", a.get("text")),
        ("STA", a.get("state")),
        ("CTY", a.get("city")),
        ("CNT", a.get("district")),
        ("STR", "".join(a.get("line", ()))),
        ("ZIP", a.get("postalCode")),
    )
    items = "".join(f'<part type="{kind}" value="{_q(value)}"/>' for kind, value in parts if value)
    return f'<addr xsi:type="{xsi_type}"><item>{items}</item></addr>' if items else ""


def _coding(concept: Resource | None, system: str) -> Resource | None:
    """The first coding of ``concept`` in ``system``."""
    for coding in (concept or {}).get("coding", ()):
        if coding.get("system") == system and coding.get("code"):
            return coding  # type: ignore[no-any-return]
    return None


def _coded(tag: str, coding: Resource | None, inner: str = "") -> str:
    """A CD element with its displayName child, ``inner`` wrapping it (``item`` for DSET<CD>)."""
    if coding is None:
        return ""
    oid = str(coding["system"]).removeprefix("urn:oid:")
    display = f'<displayName value="{_q(coding["display"])}"/>' if coding.get("display") else ""
    element = f'<{inner or tag} code="{_q(coding["code"])}" codeSystem="{oid}">{display}</{inner or tag}>'
    return f"<{tag}>{element}</{tag}>" if inner else element


def _gender(resource: Resource) -> str:
    """administrativeGenderCode in GB/T 2261.1."""
    code, display = _SEX.get(resource.get("gender", ""), (None, None))
    coding = {"system": s.SEX, "code": code, "display": display} if code else None
    return _coded("administrativeGenderCode", coding)


def _birth(resource: Resource) -> str:
    """birthTime from a FHIR date (partial dates stay partial)."""
    born = resource.get("birthDate")
    return f'<birthTime value="{_q(born[:10].replace("-", ""))}"/>' if born else ""


def _id_card(resource: Resource) -> str:
    """The resident ID number with its document category, when there is one."""
    number = identifier(resource, s.ID_CARD)
    return _ids((ID_CARD_ROOT, number)) + _ID_CATEGORY if number else ""


def _other_ids(patient: Resource, org_code: str) -> str:
    """asOtherIDs for the health card, health record and insurance numbers, scoped by their issuer."""
    out = []
    for ident in patient.get("identifier", ()):
        if ident.get("system") not in _OTHER_IDS or not ident.get("value"):
            continue
        issuer = (ident.get("assigner") or {}).get("identifier") or {}
        scope = str(issuer["value"]) if issuer.get("system") == s.ORGANIZATION_OID else org_code
        out.append(
            f'<asOtherIDs classCode="PAT">{_ids((ident["system"].removeprefix("urn:oid:"), ident["value"]))}'
            f'<scopingOrganization classCode="ORG" determinerCode="INSTANCE">{_ids((ORGANIZATION_ROOT, scope))}'
            "</scopingOrganization></asOtherIDs>"
        )
    return "".join(out)


def _org_entity(tag: str, org: Resource, extra: str = "") -> str:
    """An Organization entity (providerOrganization, representedOrganization …): id, name, ``extra``."""
    return (
        f'<{tag} classCode="ORG" determinerCode="INSTANCE">{_ids((ORGANIZATION_ROOT, _org_code(org)))}'
        f"{_name(person_name(org))}{extra}</{tag}>"
    )


def _local_patient_id(patient: Resource, org_code: str) -> str:
    """The patient's id in the sender's domain: domain (.2.5.1.5) then MRN (.2.5.1.4), as the samples do."""
    mrn = identifier(patient, s.mrn_system(org_code))
    if mrn is None:
        raise ValueError(f"Patient/{patient.get('id')} has no MRN of institution {org_code}")
    return _ids((DOMAIN_ID_ROOT, org_code), (PATIENT_ID_ROOT, mrn))


def _assigned(tag: str, type_code: str, author: Resource | None, org: Resource, *, represented: bool) -> str:
    """An author/custodian: the staff member when known, else the institution itself."""
    if author is None:
        entity = _ids((ORGANIZATION_ROOT, _org_code(org)))
    else:
        staff = identifier(author, s.STAFF_NO) or str(author.get("id", ""))
        entity = (
            f'{_ids((STAFF_ROOT, staff))}<assignedPerson classCode="PSN" determinerCode="INSTANCE">'
            f"{_name(person_name(author))}</assignedPerson>"
        )
    if represented or author is None:
        entity += _org_entity("representedOrganization", org)
    return f'<{tag} typeCode="{type_code}"><assignedEntity classCode="ASSIGNED">{entity}</assignedEntity></{tag}>'


def _extension(items: Iterable[tuple[str, str | None, str | None]]) -> str:
    """The samples' ``extension`` list of (code, value, displayName) attributes."""
    out = "".join(
        f'<item code="{code}" value="{_q(value)}"'
        + (f' displayName="{_q(display)}"' if display else "")
        + "/>"
        for code, value, display in items
        if value
    )
    return f"<extension>{out}</extension>" if out else ""


def _message(
    interaction: str, payload: str, message_id: str, sent: datetime, sender: str, receiver: str
) -> bytes:
    """The transmission wrapper and control act around ``payload``."""
    return (
        f'<{interaction} xmlns="{HL7_NS}" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ITSVersion="XML_1.0">'
        f'<id root="{MESSAGE_ID_ROOT}" extension="{_q(message_id)}"/><creationTime value="{ts(sent)}"/>'
        f'<interactionId root="{INTERACTION_ID_ROOT}" extension="{interaction}"/>'
        '<processingCode code="P"/><processingModeCode/><acceptAckCode code="AL"/>'
        f'<receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE">{_ids((DEVICE_ROOT, receiver))}'
        f'</device></receiver><sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE">'
        f'{_ids((DEVICE_ROOT, sender))}</device></sender><controlActProcess classCode="CACT" moodCode="EVN">'
        f'<subject typeCode="SUBJ">{payload}</subject></controlActProcess></{interaction}>'
    ).encode()


def _patient_record(
    interaction: str,
    patient: Resource,
    org: Resource,
    message_id: str,
    sent: datetime,
    sender_device: str,
    receiver_device: str,
    author: Resource | None,
) -> bytes:
    """Register and update share one payload: the full patient role under a registration request."""
    org_code = _org_code(org)
    ethnicity = [
        e.get("valueCodeableConcept") for e in patient.get("extension", ()) if e.get("url") == _ETHNICITY
    ]
    payload = (
        '<registrationRequest classCode="REG" moodCode="RQO"><statusCode code="active"/><subject1 typeCode="SBJ">'
        f'<patient classCode="PAT">{_local_patient_id(patient, org_code)}'
        f'<statusCode code="{"active" if patient.get("active", True) else "terminated"}"/>'
        f'<effectiveTime><any value="{ts(sent)}"/></effectiveTime><patientPerson>{_id_card(patient)}'
        f"{_name(person_name(patient))}{_telecom(patient)}{_gender(patient)}{_birth(patient)}"
        f"{_addr(patient.get('address'), 'LIST_AD', 'home')}"
        f"{_coded('maritalStatusCode', _coding(patient.get('maritalStatus'), s.MARITAL))}"
        f"{_coded('ethnicGroupCode', _coding(ethnicity[0] if ethnicity else None, s.ETHNICITY), 'item')}"
        f"{_other_ids(patient, org_code)}</patientPerson>"
        f"{_org_entity('providerOrganization', org, _CONTACT)}</patient></subject1>"
        f"{_assigned('author', 'AUT', author, org, represented=False) if author else ''}</registrationRequest>"
    )
    return _message(interaction, payload, message_id, sent, sender_device, receiver_device)


def patient_register(
    patient: Resource,
    org: Resource,
    *,
    message_id: str,
    sent: datetime,
    sender_device: str,
    receiver_device: str = "RHIP",
    author: Resource | None = None,
) -> bytes:
    """个人信息注册: a PRPA_IN201311UV02 registering ``patient`` as known at institution ``org``."""
    return _patient_record(
        PATIENT_REGISTER, patient, org, message_id, sent, sender_device, receiver_device, author
    )


def patient_update(
    patient: Resource,
    org: Resource,
    *,
    message_id: str,
    sent: datetime,
    sender_device: str,
    receiver_device: str = "RHIP",
    author: Resource | None = None,
) -> bytes:
    """个人信息更新: a PRPA_IN201314UV02 revising ``patient`` as known at institution ``org``."""
    return _patient_record(
        PATIENT_UPDATE, patient, org, message_id, sent, sender_device, receiver_device, author
    )


def patient_merge(
    surviving: Resource,
    obsolete: Resource,
    org: Resource,
    *,
    message_id: str,
    sent: datetime,
    sender_device: str,
    receiver_device: str = "RHIP",
    author: Resource | None = None,
) -> bytes:
    """个人信息合并: a PRPA_IN201304UV02 merging ``obsolete``'s local record into ``surviving``'s."""
    org_code = _org_code(org)
    payload = (
        '<registrationEvent classCode="REG" moodCode="EVN"><statusCode code="active"/><subject1 typeCode="SBJ">'
        f'<patient classCode="PAT">{_local_patient_id(surviving, org_code)}<statusCode code="active"/>'
        f'<effectiveTime><any value="{ts(sent)}"/></effectiveTime>'
        f"<patientPerson>{_id_card(surviving)}{_name(person_name(surviving))}</patientPerson></patient></subject1>"
        f"{_assigned('custodian', 'CST', author, org, represented=False)}"
        '<replacementOf typeCode="RPLC"><priorRegistration classCode="REG" moodCode="EVN">'
        '<statusCode code="obsolete"/><subject1 typeCode="SBJ"><priorRegisteredRole classCode="PAT">'
        f"{_local_patient_id(obsolete, org_code)}</priorRegisteredRole></subject1></priorRegistration>"
        "</replacementOf></registrationEvent>"
    )
    return _message(PATIENT_MERGE, payload, message_id, sent, sender_device, receiver_device)


def organization_register(
    org: Resource,
    parent: Resource | None = None,
    *,
    message_id: str,
    sent: datetime,
    sender_device: str,
    receiver_device: str = "RHIP",
    author: Resource | None = None,
) -> bytes:
    """医疗卫生机构注册: a PRPM_IN401030UV01 registering ``org`` (affiliated to ``parent`` when given)."""
    codings = [c for t in org.get("type", ()) for c in t.get("coding", ())]
    kind: Resource = next((c for c in codings if c.get("system") != s.ORGANIZATION_TYPE), {})
    affiliate = ""
    if parent is not None:
        scoper = _org_entity("scoper2", parent)
        affiliate = f'<asAffiliate classCode="AFFL">{scoper}</asAffiliate>'
    aliases = org.get("alias") or [None]
    payload = (
        '<registrationRequest classCode="REG" moodCode="RQO"><statusCode code="active"/><subject1 typeCode="SBJ">'
        f'<assignedEntity classCode="ASSIGNED">{_ids((ORGANIZATION_ROOT, _org_code(org)))}{_name(aliases[0])}'
        f"{_addr(org.get('address'), 'DSET_AD', 'work')}{_telecom(org)}"
        f'<statusCode code="{"active" if org.get("active", True) else "terminated"}"/>'
        '<assignedPrincipalOrganization classCode="ORG" determinerCode="INSTANCE">'
        f"{_name(person_name(org))}{affiliate}</assignedPrincipalOrganization></assignedEntity></subject1>"
        f"{_assigned('author', 'AUT', author, org, represented=True) if author else ''}"
        + _extension(
            (
                ("uscc", identifier(org, s.USCC), None),
                ("licenceNo", identifier(org, s.INSTITUTION_LICENCE), None),
                ("institutionKind", kind.get("code"), kind.get("display")),
            )
        )
        + "</registrationRequest>"
    )
    return _message(ORGANIZATION_REGISTER, payload, message_id, sent, sender_device, receiver_device)


def provider_register(
    practitioner: Resource,
    org: Resource,
    role_text: str,
    *,
    message_id: str,
    sent: datetime,
    sender_device: str,
    receiver_device: str = "RHIP",
    author: Resource | None = None,
) -> bytes:
    """医疗卫生人员注册: a PRPM_IN301010UV01 registering ``practitioner`` as ``role_text`` at ``org``."""
    staff = identifier(practitioner, s.STAFF_NO)
    if staff is None:
        raise ValueError(f"Practitioner/{practitioner.get('id')} has no staff number ({s.STAFF_NO})")
    title = _TITLES.get(role_text)
    code_attr = f'code="{title}"' if title else 'nullFlavor="OTH"'
    payload = (
        '<registrationRequest classCode="REG" moodCode="RQO"><statusCode code="active"/><subject1 typeCode="SBJ">'
        f'<healthCareProvider classCode="PROV">{_ids((STAFF_ROOT, staff))}'
        f'<code {code_attr} codeSystem="{TITLE_SYSTEM}" codeSystemName="专业技术职务代码（GB/T 8561）">'
        f'<displayName value="{_q(role_text)}"/></code>{_addr(practitioner.get("address"), "DSET_AD", "work")}'
        f'{_telecom(practitioner)}<statusCode code="{"active" if practitioner.get("active", True) else "terminated"}"/>'
        f'<healthCarePrincipalPerson classCode="PSN" determinerCode="INSTANCE">{_id_card(practitioner)}'
        f"{_name(person_name(practitioner))}{_gender(practitioner)}{_birth(practitioner)}"
        f'<asAffiliate classCode="AFFL">{_org_entity("affiliatedPrincipalOrganization", org)}</asAffiliate>'
        "</healthCarePrincipalPerson></healthCareProvider></subject1>"
        f"{_assigned('author', 'AUT', author, org, represented=True) if author else ''}"
        + _extension((("certificateNo", identifier(practitioner, s.PRACTITIONER_LICENCE), None),))
        + "</registrationRequest>"
    )
    return _message(PROVIDER_REGISTER, payload, message_id, sent, sender_device, receiver_device)


def soap12(body: bytes, *, action: str | None = None) -> bytes:
    """Wrap a message in the SOAP 1.2 envelope of the platforms' ``HIPMessageServer(action, message)``."""
    if body.startswith(b"<?xml"):
        body = body[body.index(b"?>") + 2 :]
    if action is None:
        found = _INTERACTION.match(body)
        action = SERVICE_ACTIONS.get(found.group(1).decode()) if found else None
        if action is None:
            raise ValueError("not one of the interactions in SERVICE_ACTIONS: pass action=")
    # The message travels as text in CDATA; a literal "]]>" inside must be split across two sections.
    text = body.decode("utf-8").strip().replace("]]>", "]]]]><![CDATA[>")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="{SOAP12_NS}" xmlns:urn="{HL7_NS}">'
        f"<soap:Header/><soap:Body><urn:HIPMessageServer><urn:action>{escape(action)}</urn:action>"
        f"<urn:message><![CDATA[{text}]]></urn:message></urn:HIPMessageServer></soap:Body></soap:Envelope>"
    ).encode()
