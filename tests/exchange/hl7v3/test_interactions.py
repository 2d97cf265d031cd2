"""Details of the services beyond the golden files: envelopes, documents, terminology, organizations, staff."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.core.errors import InvalidRequest
from rhip.exchange.hl7v3.service import V3Service
from rhip.fhir.rest.messages import FhirRequest
from rhip.xmlsafe import parse_xml

from .helpers import GOLDEN, HL7, FakeIntake, FixedClock, ack_of, counter_uuids, detail_text, send

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"


def golden(name: str) -> bytes:
    """A golden request by its number prefix."""
    (path,) = GOLDEN.glob(f"{name}-*.request.xml")
    return path.read_bytes()


def search(platform: Platform, rtype: str, **params: str) -> list[dict[str, Any]]:
    """Search the FHIR store."""
    response = platform.fhir.handle(FhirRequest("GET", rtype, query=list(params.items())))
    return [e["resource"] for e in orjson.loads(response.body or b"{}").get("entry", [])]


def message(interaction: str, act: str, message_id: str = "X-1") -> bytes:
    """A minimal interaction from device HIS of institution 510704104X01."""
    return f"""<{interaction} xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
<id root="2.16.156.10011.2.5.1.1" extension="{message_id}"/>
<interactionId root="2.16.156.10011.2.5.1.2" extension="{interaction}"/>
<sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id><item root="2.16.156.10011.2.5.1.3"
extension="HIS"/></id><asAgent classCode="AGNT"><representedOrganization classCode="ORG" determinerCode="INSTANCE">
<id><item root="2.16.156.10011.1.5" extension="510704104X01"/></id></representedOrganization></asAgent></device></sender>
<controlActProcess classCode="CACT" moodCode="EVN">{act}</controlActProcess></{interaction}>""".encode()


# -- envelopes -------------------------------------------------------------------------------------------


def test_hipmessageserver_answers_in_hipmessageserverresult(service: V3Service) -> None:
    register = golden("07").decode().split("?>", 1)[1]
    body = (
        f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP12}"><s:Body><HIPMessageServer xmlns="urn:hl7-org:v3">'
        f"<action>PatientInfoRegister</action><message>{register.replace('&', '&amp;').replace('<', '&lt;')}"
        "</message></HIPMessageServer></s:Body></s:Envelope>"
    ).encode()
    answer = send(service, body)
    assert (answer.status, answer.content_type) == (200, "application/soap+xml; charset=utf-8")
    root = parse_xml(answer.body)
    result = root.find(f"{{{SOAP12}}}Body/{HL7}HIPMessageServerResponse/{HL7}HIPMessageServerResult")
    assert result is not None and result.text is not None
    assert parse_xml(result.text.encode()).tag == f"{HL7}MCCI_IN000002UV01"
    assert ack_of(answer) == ("AA", "")


def test_a_message_declared_in_another_encoding_inside_soap_is_read_as_the_text_it_is(
    service: V3Service,
) -> None:
    register = golden("07").decode().split("?>", 1)[1]
    body = (
        f'<s:Envelope xmlns:s="{SOAP11}"><s:Body><HIPMessageServer xmlns="urn:hl7-org:v3"><action>x</action>'
        f'<message><![CDATA[<?xml version="1.0" encoding="GBK"?>{register}]]></message></HIPMessageServer></s:Body>'
        "</s:Envelope>"
    ).encode("gb18030")
    body = body.replace(b"<s:Envelope", b'<?xml version="1.0" encoding="GBK"?><s:Envelope', 1)
    answer = service.handle(body, "text/xml; charset=GBK")
    assert (answer.status, answer.content_type, ack_of(answer)) == (
        200,
        "text/xml; charset=utf-8",
        ("AA", ""),
    )


def test_an_inline_interaction_in_the_message_element_is_accepted(service: V3Service) -> None:
    register = golden("07").decode().split("?>", 1)[1]
    body = (
        f'<s:Envelope xmlns:s="{SOAP12}"><s:Body><HIPMessageServer xmlns="urn:hl7-org:v3"><message>{register}'
        "</message></HIPMessageServer></s:Body></s:Envelope>"
    ).encode()
    assert ack_of(send(service, body)) == ("AA", "")


def test_messages_without_the_hl7_namespace_are_read_too(service: V3Service, v3_platform: Platform) -> None:
    body = golden("07").replace(b' xmlns="urn:hl7-org:v3"', b"")
    assert ack_of(send(service, body)) == ("AA", "")
    assert search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|812524559757")


# -- documents -------------------------------------------------------------------------------------------

CDA = (GOLDEN / "document.cda.xml").read_bytes()


def _register(content: str) -> bytes:
    return message(
        "RCMR_IN000002UV02",
        f'<subject typeCode="SUBJ"><clinicalDocument classCode="DOCCLIN" moodCode="EVN">{content}'
        '<recordTarget typeCode="RCT"><patient classCode="PAT"><providerOrganization><id><item root='
        '"2.16.156.10011.1.5" extension="510704105X01"/></id></providerOrganization></patient></recordTarget>'
        "</clinicalDocument></subject>",
    )


def test_a_document_may_travel_as_base64_text_or_as_the_element_itself(
    service: V3Service, intake: FakeIntake
) -> None:
    wrapped = base64.encodebytes(CDA).decode()  # with line breaks, as many encoders write it
    assert ack_of(
        send(service, _register(f"<storageCode><originalText>{wrapped}</originalText></storageCode>"))
    ) == (
        "AA",
        "",
    )
    embedded = CDA.decode().split("?>", 1)[1].replace("DOC-0001", "DOC-0002")
    assert ack_of(send(service, _register(f"<component>{embedded}</component>"))) == ("AA", "")
    assert intake.documents["2.16.156.10011.1.1^DOC-0001"][0] == CDA, "the bytes arrive unchanged"
    assert intake.submitted == [("510704105X01", "hl7v3"), ("510704105X01", "hl7v3")]


def test_document_refusals_keep_the_registry_code(service: V3Service, intake: FakeIntake) -> None:
    not_base64 = send(service, _register('<storageCode><originalText value="***"/></storageCode>'))
    assert ack_of(not_base64) == ("AE", "RHIP-V3-0011")
    missing = send(service, _register("<code code='C0001'/>"))
    assert ack_of(missing) == ("AE", "RHIP-V3-0010")
    assert "storageCode/originalText" in detail_text(missing)
    not_cda = base64.b64encode(b"<notCda/>").decode()
    refused = send(service, _register(f'<storageCode><originalText value="{not_cda}"/></storageCode>'))
    assert ack_of(refused) == ("AE", "RHIP-CDA-0001")


def test_without_a_registry_documents_get_an_ae(v3_platform: Platform) -> None:
    service = V3Service(v3_platform.fhir, clock=FixedClock(), new_uuid=counter_uuids())
    assert ack_of(send(service, golden("19"))) == ("AE", "RHIP-V3-0017")


def test_the_document_query_reaches_the_registry_as_asked(service: V3Service, intake: FakeIntake) -> None:
    assert ack_of(send(service, golden("20"))) == ("AA", "")
    query = intake.last_query
    assert query is not None
    assert query.patient_identifiers == (
        ("urn:rhip:mrn:510704104X01", "812524559757"),
        ("urn:oid:2.16.156.10011.1.3", "510704198701311291"),
    )
    assert (query.type_codes, query.date_from, query.date_to) == (("HSDB04.01",), "2025-01-01", "2025-03-31")
    assert query.include_superseded is False


def test_retrieving_an_unknown_document_is_an_ae(service: V3Service) -> None:
    answer = send(service, golden("21"))
    assert ack_of(answer) == ("AE", "RHIP-V3-0013")


def test_a_registry_failure_is_an_ae_with_its_code(v3_platform: Platform) -> None:
    class Failing(FakeIntake):
        def query(self, query: Any) -> Any:
            raise InvalidRequest("the registry is unwell", code="RHIP-DOC-0009")

    service = V3Service(v3_platform.fhir, documents=Failing(), clock=FixedClock())
    assert ack_of(send(service, golden("20"))) == ("AE", "RHIP-DOC-0009")


# -- terminology -----------------------------------------------------------------------------------------


def _value_set(interaction: str, vs_id: str, version: str, items: str) -> bytes:
    return message(
        interaction,
        '<subject typeCode="SUBJ"><registrationRequest classCode="REG" moodCode="RQO"><subject1 typeCode="SBJ">'
        f'<valueSet><id {vs_id}/><version code="{version}"/>{items}</valueSet></subject1></registrationRequest></subject>',
    )


def _item(code: str, status: str = "1") -> str:
    return f'<valueSetItems><code code="{code}"><displayName value="{code}!"/></code><statusCode code="{status}"/></valueSetItems>'


def test_value_sets_are_versioned_code_systems(service: V3Service, v3_platform: Platform) -> None:
    register = _value_set(
        "PRVS_IN000001UV01", 'root="2.16.156.10011.2.3.3.4"', "2003", _item("1") + _item("2")
    )
    assert ack_of(send(service, register)) == ("AA", "")
    update = _value_set(
        "PRVS_IN000002UV01", 'root="2.16.156.10011.2.3.3.4"', "2024", _item("9") + _item("2", "0")
    )
    assert ack_of(send(service, update)) == ("AA", "")
    found = {c["version"]: c for c in search(v3_platform, "CodeSystem", url="urn:oid:2.16.156.10011.2.3.3.4")}
    assert set(found) == {"2003", "2024"}
    assert [c["code"] for c in found["2003"]["concept"]] == ["1", "2"]
    assert found["2024"]["content"] == "complete"
    assert [(c["code"], c.get("property")) for c in found["2024"]["concept"]] == [
        ("1", None),
        ("2", [{"code": "status", "valueCode": "retired"}]),
        ("9", None),
    ]
    # An update of a value set nobody registered keeps only what it says: a fragment.
    fragment = _value_set("PRVS_IN000002UV01", 'extension="localDrugs"', "1", _item("A01"))
    assert ack_of(send(service, fragment)) == ("AA", "")
    (local,) = search(v3_platform, "CodeSystem", url="urn:rhip:cs:local:510704104X01:localDrugs")
    assert local["content"] == "fragment" and local["meta"]["source"] == "urn:rhip:source:v3:510704104X01"


def test_a_value_set_query_filters_items_and_finds_other_senders_sets(service: V3Service) -> None:
    register = _value_set("PRVS_IN000001UV01", 'extension="sexDictionary"', "1.0", _item("F") + _item("M"))
    assert ack_of(send(service, register)) == ("AA", "")
    other_sender = golden("18").replace(b"510704104X01-PHIS", b"OTHER-SYSTEM")
    query = other_sender.replace(
        b'<version code="1.0"/>', b'<version code="1.0"/><valueSetItems><code code="M"/></valueSetItems>'
    )
    answer = send(service, query)
    assert ack_of(answer) == ("AA", "")
    codes = [c.get("code") for c in parse_xml(answer.body).iter(f"{HL7}code")]
    assert codes == ["M"]
    unknown = send(service, golden("18").replace(b"sexDictionary", b"nothing"))
    assert ack_of(unknown) == ("AA", "")
    assert b'queryResponseCode code="NF"' in unknown.body


def test_registered_dictionaries_are_answered_by_the_terminology_service(
    service: V3Service, v3_platform: Platform
) -> None:
    """术语注册 goes through to the terminology: $lookup and $validate-code answer over what was registered."""
    register = _value_set("PRVS_IN000001UV01", 'extension="dept"', "1", _item("NK") + _item("WK"))
    assert ack_of(send(service, register)) == ("AA", "")
    terms = v3_platform.terminology
    assert terms is not None
    url = "urn:rhip:cs:local:510704104X01:dept"
    found = terms.lookup(url, "NK")
    assert found is not None and found.concept.display == "NK!" and found.system.content == "complete"
    update = _value_set("PRVS_IN000002UV01", 'extension="dept"', "2", _item("WK", "0") + _item("EK"))
    assert ack_of(send(service, update)) == ("AA", "")
    assert terms.validate_code("EK", system=url).result  # the newest version is the one answered
    retired = terms.validate_code("WK", system=url)
    assert not retired.result and "retired" in retired.message
    response = v3_platform.fhir.handle(
        FhirRequest("GET", "CodeSystem/$lookup", query=[("system", url), ("code", "WK")])
    )
    assert response.status == 200, response.body
    props = [p for p in orjson.loads(response.body or b"{}")["parameter"] if p["name"] == "property"]
    assert {"name": "code", "valueCode": "status"} in [part for p in props for part in p["part"]]
    # A hospital's dictionary is not judged on write: its codes are what it sends, not what the platform refuses.
    stored = v3_platform.fhir.handle(
        FhirRequest(
            "POST",
            "Basic",
            headers={"content-type": "application/fhir+json"},
            body=orjson.dumps({"resourceType": "Basic", "code": {"coding": [{"system": url, "code": "ZZ"}]}}),
        )
    )
    assert stored.status == 201, stored.body


# -- organizations and staff -----------------------------------------------------------------------------


def test_a_department_registers_under_its_own_identifier_with_its_parent(
    service: V3Service, v3_platform: Platform
) -> None:
    body = message(
        "PRPM_IN401030UV01",
        '<subject typeCode="SUBJ"><registrationRequest classCode="REG" moodCode="RQO"><subject1 typeCode="SBJ">'
        '<assignedEntity classCode="ASSIGNED"><id><item root="2.16.156.10011.1.26" extension="A03.01"/></id>'
        '<code code="A03.01" codeSystem="2.16.156.10011.2.3.2.62"><displayName value="呼吸内科专业"/></code>'
        '<statusCode code="active"/><assignedPrincipalOrganization><name><item><part value="呼吸内科"/></item></name>'
        '<asAffiliate classCode="AFFL"><scoper2><id><item root="2.16.156.10011.1.5" extension="510704104X01"/></id>'
        "</scoper2></asAffiliate></assignedPrincipalOrganization></assignedEntity></subject1></registrationRequest>"
        "</subject>",
    )
    assert ack_of(send(service, body)) == ("AA", "")
    (dept,) = search(v3_platform, "Organization", identifier="urn:oid:2.16.156.10011.1.26|A03.01")
    (parent,) = search(v3_platform, "Organization", identifier="urn:oid:2.16.156.10011.1.5|510704104X01")
    assert dept["partOf"] == {"reference": f"Organization/{parent['id']}"}
    assert dept["type"] == [
        {
            "coding": [
                {"system": "urn:oid:2.16.156.10011.2.3.2.62", "code": "A03.01", "display": "呼吸内科专业"}
            ]
        }
    ]
    missing_id = body.replace(b'<item root="2.16.156.10011.1.26" extension="A03.01"/>', b"")
    assert ack_of(send(service, missing_id)) == ("AE", "RHIP-V3-0010")


def test_the_same_staff_number_at_two_institutions_is_two_practitioners(
    service: V3Service, v3_platform: Platform
) -> None:
    first = golden("04")
    second = first.replace(b"510704104X01", b"510704105X01")
    assert ack_of(send(service, first)) == ("AA", "")
    assert ack_of(send(service, second)) == ("AA", "")
    assert ack_of(send(service, first)) == ("AA", "")
    staff = search(v3_platform, "Practitioner", identifier="urn:oid:2.16.156.10011.1.4|0001")
    assert len(staff) == 2
    roles = search(v3_platform, "PractitionerRole")
    assert len(roles) == 2
    answer = send(service, golden("06"))
    assert b'resultTotalQuantity value="2"' in answer.body


def test_documents_round_trip_through_the_real_registry(v3_platform: Platform) -> None:
    import zipfile

    from rhip.documents.service import DocumentService

    cda_zip = GOLDEN.parents[3] / "var" / "ex-small" / "cda" / "510704104X01.zip"
    if not cda_zip.exists():
        pytest.skip("var/ex-small is not generated")
    with zipfile.ZipFile(cda_zip) as archive:
        name = next(n for n in sorted(archive.namelist()) if n.startswith("HSDB04.01"))
        cda = archive.read(name)
    service = V3Service(v3_platform.fhir, documents=DocumentService(v3_platform.fhir), clock=FixedClock())
    content = f'<storageCode><originalText value="{base64.b64encode(cda).decode()}"/></storageCode>'
    answer = send(service, _register(content))
    assert ack_of(answer) == ("AA", ""), detail_text(answer)
    card = parse_xml(cda).find(f".//{HL7}patient/{HL7}id").get("extension")  # type: ignore[union-attr]
    query = golden("20").replace(b"510704198701311291", card.encode()).replace(b"812524559757", b"none")
    query = re.sub(
        rb"<clinicalDocument.effectiveTime>.*?</clinicalDocument.effectiveTime>", b"", query, flags=re.S
    )
    found = send(service, query)
    assert ack_of(found) == ("AA", "")
    ids = [i for i in parse_xml(found.body).iter(f"{HL7}item") if i.get("root") == "2.16.156.10011.1.1"]
    assert [i.get("extension") for i in ids] == [name.removesuffix(".xml")]
    retrieve = golden("21").replace(b"DOC-0001", name.removesuffix(".xml").encode())
    got = send(service, retrieve)
    assert ack_of(got) == ("AA", "")
    original = next(parse_xml(got.body).iter(f"{HL7}originalText"))
    assert base64.b64decode(original.get("value", "")) == cda
