"""The HL7 v3 registration messages: well-formed, in the v3 namespace, carrying the input where the samples do."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from rhip.synth import hl7v3
from rhip.synth import systems as s

from . import examples as ex
from .xmlparse import parse

NS = {"v3": "urn:hl7-org:v3", "soap": "http://www.w3.org/2003/05/soap-envelope"}
SENT = datetime(2023, 3, 4, 9, 30, 5, tzinfo=timezone(timedelta(hours=8)))
ENVELOPE: dict[str, Any] = {
    "message_id": "8d73520b-d489-4b70-8f4b-7b5c2d7961b5",
    "sent": SENT,
    "sender_device": "HIS-510703-H001",
}
PATIENT_PATH = "/*/v3:controlActProcess/v3:subject/v3:registrationRequest/v3:subject1/v3:patient"
PERSON_PATH = PATIENT_PATH + "/v3:patientPerson"
PARENT: dict[str, Any] = {
    "resourceType": "Organization",
    "id": "org-510700-W001",
    "identifier": [{"system": s.ORGANIZATION_OID, "value": "510700-W001"}],
    "name": "绵阳市卫生健康委员会",
}


def one(root: etree._Element, path: str) -> str:
    """The single string an XPath selects."""
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list)
    assert len(found) == 1, (path, found)
    return str(found[0])


def item(root: etree._Element, base: str, oid: str) -> str:
    """The extension of the id item with ``oid`` under ``base``."""
    return one(root, f'{base}/v3:id/v3:item[@root="{oid}"]/@extension')


def all_in_v3(root: etree._Element) -> bool:
    """Every element of the message is in the HL7 v3 namespace."""
    return all(el.tag.startswith("{urn:hl7-org:v3}") for el in root.iter() if isinstance(el.tag, str))


def check_envelope(root: etree._Element, interaction: str) -> None:
    """The transmission wrapper as in the samples."""
    assert root.tag == f"{{urn:hl7-org:v3}}{interaction}"
    assert root.get("ITSVersion") == "XML_1.0"
    assert all_in_v3(root)
    assert one(root, "/*/v3:interactionId/@extension") == interaction
    assert one(root, "/*/v3:interactionId/@root") == hl7v3.INTERACTION_ID_ROOT
    assert one(root, '/*/v3:id[@root="2.16.156.10011.2.5.1.1"]/@extension') == ENVELOPE["message_id"]
    assert one(root, "/*/v3:creationTime/@value") == "20230304093005"
    assert one(root, "/*/v3:processingCode/@code") == "P"
    assert one(root, "/*/v3:acceptAckCode/@code") == "AL"
    assert item(root, "/*/v3:sender/v3:device", "2.16.156.10011.2.5.1.3") == "HIS-510703-H001"
    assert item(root, "/*/v3:receiver/v3:device", "2.16.156.10011.2.5.1.3") == "RHIP"
    assert one(root, "/*/v3:controlActProcess/@classCode") == "CACT"


@pytest.mark.parametrize(
    ("render", "interaction"),
    [(hl7v3.patient_register, "PRPA_IN201311UV02"), (hl7v3.patient_update, "PRPA_IN201314UV02")],
)
def test_patient_register_and_update_carry_the_patient(render: Any, interaction: str) -> None:
    root = parse(render(ex.PATIENT, ex.ORGANIZATION, **ENVELOPE))
    check_envelope(root, interaction)
    assert one(root, "/*/v3:controlActProcess/v3:subject/v3:registrationRequest/@moodCode") == "RQO"
    assert item(root, PATIENT_PATH, "2.16.156.10011.2.5.1.4") == "M00012345"
    assert item(root, PATIENT_PATH, "2.16.156.10011.2.5.1.5") == ex.ORG_CODE
    assert item(root, PERSON_PATH, "2.16.156.10011.1.3") == "510703198507120027"
    assert one(root, PERSON_PATH + "/v3:idCategory/@code") == "01"
    assert one(root, PERSON_PATH + "/v3:name/v3:item/v3:part/@value") == "王丽"
    assert one(root, PERSON_PATH + "/v3:administrativeGenderCode/@code") == "2"
    assert one(root, PERSON_PATH + "/v3:administrativeGenderCode/@codeSystem") == "2.16.156.10011.2.3.3.4"
    assert one(root, PERSON_PATH + "/v3:birthTime/@value") == "19850712"
    assert one(root, PERSON_PATH + "/v3:telecom/v3:item/@value") == "13981612345"
    assert one(root, PERSON_PATH + '/v3:addr/v3:item/v3:part[@type="CNT"]/@value') == "涪城区"
    assert one(root, PERSON_PATH + "/v3:maritalStatusCode/@code") == "20"
    assert one(root, PERSON_PATH + "/v3:ethnicGroupCode/v3:item/@code") == "01"
    assert one(root, PERSON_PATH + "/v3:ethnicGroupCode/v3:item/@codeSystem") == "2.16.156.10011.2.3.3.3"
    other = PERSON_PATH + "/v3:asOtherIDs"
    assert item(root, other, "2.16.156.10011.1.19") == "5107000000123456789"
    assert item(root, other + "/v3:scopingOrganization", "2.16.156.10011.1.5") == ex.ORG_CODE
    assert item(root, PATIENT_PATH + "/v3:providerOrganization", "2.16.156.10011.1.5") == ex.ORG_CODE
    assert (
        one(root, PATIENT_PATH + "/v3:providerOrganization/v3:name/v3:item/v3:part/@value")
        == "绵阳市中心医院"
    )
    # Outpatient numbers belong to visits, not to the person.
    assert not root.xpath('//v3:item[@root="2.16.156.10011.1.11"]', namespaces=NS)


def test_xsi_types_follow_the_samples() -> None:
    root = parse(hl7v3.patient_register(ex.PATIENT, ex.ORGANIZATION, **ENVELOPE))
    xsi = "{http://www.w3.org/2001/XMLSchema-instance}type"
    person = root.find(
        "v3:controlActProcess/v3:subject/v3:registrationRequest/v3:subject1/v3:patient/v3:patientPerson", NS
    )
    assert person is not None
    types = {str(child.tag).split("}")[1]: child.get(xsi) for child in person}
    assert types["name"] == "LIST_EN"
    assert types["telecom"] == "DSET_TEL"
    assert types["addr"] == "LIST_AD"


def test_health_record_number_is_scoped_by_its_assigner() -> None:
    patient = copy.deepcopy(ex.PATIENT)
    patient["identifier"].append(
        {
            "system": s.HEALTH_RECORD,
            "value": "51070300100012345",
            "assigner": {"identifier": {"system": s.ORGANIZATION_OID, "value": "510703-B002"}},
        }
    )
    root = parse(hl7v3.patient_register(patient, ex.ORGANIZATION, **ENVELOPE))
    other = PERSON_PATH + '/v3:asOtherIDs[v3:id/v3:item/@root="2.16.156.10011.1.2"]'
    assert item(root, other, "2.16.156.10011.1.2") == "51070300100012345"
    assert item(root, other + "/v3:scopingOrganization", "2.16.156.10011.1.5") == "510703-B002"


def test_author_is_the_registering_staff_member() -> None:
    root = parse(hl7v3.patient_register(ex.PATIENT, ex.ORGANIZATION, author=ex.PRACTITIONER, **ENVELOPE))
    author = "//v3:registrationRequest/v3:author/v3:assignedEntity"
    assert item(root, author, "2.16.156.10011.1.4") == "0007"
    assert one(root, author + "/v3:assignedPerson/v3:name/v3:item/v3:part/@value") == "李建国"


def test_patient_merge_names_both_local_ids() -> None:
    obsolete = copy.deepcopy(ex.PATIENT)
    obsolete["identifier"][0]["value"] = "M00099999"
    root = parse(hl7v3.patient_merge(ex.PATIENT, obsolete, ex.ORGANIZATION, **ENVELOPE))
    check_envelope(root, "PRPA_IN201304UV02")
    event = "/*/v3:controlActProcess/v3:subject/v3:registrationEvent"
    assert one(root, event + "/@moodCode") == "EVN"
    assert item(root, event + "/v3:subject1/v3:patient", "2.16.156.10011.2.5.1.4") == "M00012345"
    assert (
        item(root, event + "/v3:subject1/v3:patient/v3:patientPerson", "2.16.156.10011.1.3")
        == "510703198507120027"
    )
    prior = event + "/v3:replacementOf/v3:priorRegistration"
    assert one(root, prior + "/v3:statusCode/@code") == "obsolete"
    assert item(root, prior + "/v3:subject1/v3:priorRegisteredRole", "2.16.156.10011.2.5.1.4") == "M00099999"
    assert item(root, prior + "/v3:subject1/v3:priorRegisteredRole", "2.16.156.10011.2.5.1.5") == ex.ORG_CODE
    assert item(root, event + "/v3:custodian/v3:assignedEntity", "2.16.156.10011.1.5") == ex.ORG_CODE


def test_organization_register() -> None:
    root = parse(hl7v3.organization_register(ex.ORGANIZATION, PARENT, **ENVELOPE))
    check_envelope(root, "PRPM_IN401030UV01")
    entity = "/*/v3:controlActProcess/v3:subject/v3:registrationRequest/v3:subject1/v3:assignedEntity"
    assert item(root, entity, "2.16.156.10011.1.5") == ex.ORG_CODE
    principal = entity + "/v3:assignedPrincipalOrganization"
    assert one(root, principal + "/v3:name/v3:item/v3:part/@value") == "绵阳市中心医院"
    assert item(root, principal + "/v3:asAffiliate/v3:scoper2", "2.16.156.10011.1.5") == "510700-W001"
    assert one(root, entity + "/v3:telecom/v3:item/@value") == "0816-2239651"
    assert one(root, entity + '/v3:addr/v3:item/v3:part[@type="ZIP"]/@value') == "621000"
    extension = "//v3:registrationRequest/v3:extension/v3:item"
    assert one(root, extension + '[@code="uscc"]/@value') == "12510700450754321X"
    assert one(root, extension + '[@code="institutionKind"]/@value') == "tertiary-hospital"


def test_organization_without_parent_has_no_affiliation() -> None:
    root = parse(hl7v3.organization_register(ex.ORGANIZATION, **ENVELOPE))
    assert not root.xpath("//v3:asAffiliate", namespaces=NS)


def test_provider_register() -> None:
    root = parse(hl7v3.provider_register(ex.PRACTITIONER, ex.ORGANIZATION, "主任医师", **ENVELOPE))
    check_envelope(root, "PRPM_IN301010UV01")
    provider = "/*/v3:controlActProcess/v3:subject/v3:registrationRequest/v3:subject1/v3:healthCareProvider"
    assert item(root, provider, "2.16.156.10011.1.4") == "0007"
    assert one(root, provider + "/v3:code/@code") == "231"
    assert one(root, provider + "/v3:code/v3:displayName/@value") == "主任医师"
    person = provider + "/v3:healthCarePrincipalPerson"
    assert one(root, person + "/v3:name/v3:item/v3:part/@value") == "李建国"
    assert one(root, person + "/v3:administrativeGenderCode/@code") == "1"
    assert one(root, person + "/v3:birthTime/@value") == "19750302"
    affiliated = person + "/v3:asAffiliate/v3:affiliatedPrincipalOrganization"
    assert item(root, affiliated, "2.16.156.10011.1.5") == ex.ORG_CODE
    assert one(root, '//v3:extension/v3:item[@code="certificateNo"]/@value') == "110510700012345"


def test_provider_with_an_unknown_title_keeps_the_text() -> None:
    root = parse(hl7v3.provider_register(ex.PRACTITIONER, ex.ORGANIZATION, "乡村医生", **ENVELOPE))
    assert one(root, "//v3:healthCareProvider/v3:code/@nullFlavor") == "OTH"
    assert one(root, "//v3:healthCareProvider/v3:code/v3:displayName/@value") == "乡村医生"


def test_markup_in_names_is_escaped() -> None:
    patient = copy.deepcopy(ex.PATIENT)
    patient["name"] = [{"use": "official", "text": "A<&\"B'>]]>\n"}]
    org = {**ex.ORGANIZATION, "name": '<医院 & "诊所">'}
    root = parse(hl7v3.patient_register(patient, org, **ENVELOPE))
    assert one(root, PERSON_PATH + "/v3:name/v3:item/v3:part/@value") == "A<&\"B'>]]>\n"
    assert (
        one(root, PATIENT_PATH + "/v3:providerOrganization/v3:name/v3:item/v3:part/@value")
        == '<医院 & "诊所">'
    )
    practitioner = {**ex.PRACTITIONER, "name": [{"text": '<&">'}]}
    root = parse(hl7v3.provider_register(practitioner, org, '主任"医师"<', **ENVELOPE))
    assert one(root, "//v3:healthCarePrincipalPerson/v3:name/v3:item/v3:part/@value") == '<&">'
    assert one(root, "//v3:healthCareProvider/v3:code/v3:displayName/@value") == '主任"医师"<'


# XML 1.0 characters: no C0 controls but tab and line breaks, no surrogates, no U+FFFE / U+FFFF.
XML_TEXT = st.text(
    st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff")
    | st.sampled_from("\t\n\r")
)


@given(name=XML_TEXT.filter(bool), message_id=XML_TEXT)
def test_any_text_round_trips(name: str, message_id: str) -> None:
    patient = {**ex.PATIENT, "name": [{"text": name}]}
    message = hl7v3.patient_register(patient, ex.ORGANIZATION, **{**ENVELOPE, "message_id": message_id})
    root = parse(message)
    assert one(root, PERSON_PATH + "/v3:name/v3:item/v3:part/@value") == name
    assert one(root, "/*/v3:id/@extension") == message_id
    assert parse(hl7v3.soap12(message)).findtext("{*}Body/{*}HIPMessageServer/{*}message") == message.decode()


def test_creation_time_is_china_standard_time() -> None:
    utc = datetime(2023, 3, 4, 1, 30, 5, tzinfo=UTC)
    root = parse(hl7v3.patient_register(ex.PATIENT, ex.ORGANIZATION, **{**ENVELOPE, "sent": utc}))
    assert one(root, "/*/v3:creationTime/@value") == "20230304093005"


def test_missing_local_ids_are_refused() -> None:
    patient = {**ex.PATIENT, "identifier": [{"system": s.ID_CARD, "value": "510703198507120027"}]}
    with pytest.raises(ValueError, match="MRN"):
        hl7v3.patient_register(patient, ex.ORGANIZATION, **ENVELOPE)
    with pytest.raises(ValueError, match="staff number"):
        hl7v3.provider_register({**ex.PRACTITIONER, "identifier": []}, ex.ORGANIZATION, "医师", **ENVELOPE)
    with pytest.raises(ValueError, match="identifier"):
        hl7v3.organization_register({**ex.ORGANIZATION, "identifier": []}, **ENVELOPE)


@pytest.mark.parametrize(
    ("interaction", "action"),
    [
        ("patient_register", "PatientInfoRegister"),
        ("patient_update", "PatientInfoUpdate"),
        ("organization_register", "OrganizationInfoRegister"),
    ],
)
def test_soap12_wraps_the_message_for_hip_message_server(interaction: str, action: str) -> None:
    render = getattr(hl7v3, interaction)
    args = (ex.ORGANIZATION,) if interaction.startswith("org") else (ex.PATIENT, ex.ORGANIZATION)
    message = render(*args, **ENVELOPE)
    envelope = parse(hl7v3.soap12(message))
    assert envelope.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"
    call = envelope.find("soap:Body/v3:HIPMessageServer", NS)
    assert call is not None
    assert call.findtext("v3:action", namespaces=NS) == action
    assert call.findtext("v3:message", namespaces=NS) == message.decode()


def test_soap12_splits_cdata_terminators_and_needs_an_action_for_other_messages() -> None:
    body = b'<MCCI_IN000002UV01 xmlns="urn:hl7-org:v3"><x>]]&gt;</x><y v="]]>"/></MCCI_IN000002UV01>'
    with pytest.raises(ValueError, match="action"):
        hl7v3.soap12(body)
    wrapped = hl7v3.soap12(b'<?xml version="1.0" encoding="UTF-8"?>\n' + body, action="Ack")
    assert parse(wrapped).findtext("soap:Body/v3:HIPMessageServer/v3:message", namespaces=NS) == body.decode()
