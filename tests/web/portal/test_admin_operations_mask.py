"""A refused message's content on the operator's screen: only its structure and sender, never a name,
address, birth date, whole ID number or phone, whatever the format and however it is written."""

from __future__ import annotations

import orjson
import pytest

from rhip.web.portal.admin_ops_mask import HIDDEN, masked_content, masked_reason

ID_NUMBER = "513701195012285032"
PHONE = "13812345678"
# What must never survive: names (Chinese and pinyin), addresses, birth dates, ID numbers, phones.
SECRETS = (
    "欧阳",
    "测试",
    "Ouyang",
    "OUYANG",
    "Ceshi",
    "北京",
    "西长安",
    "Xichang",
    "19501228",
    "1950-12-28",
    "1950",
    ID_NUMBER,
    PHONE,
    "1381234",
)
MSH = "MSH|^~\\&|HIS|510725H01|RHIP|RHIP|20250308134800||ADT^A04^ADT_A01|C1|P|2.5.1\r"
V3 = '<PRPA_IN201311UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">'
FHIR_PATIENT = {"resourceType": "Patient", "id": "p1"}

LEAKS: dict[str, tuple[str, bytes]] = {
    "v2 lowercase segment": ("mllp", f"{MSH}pid|1||M1||欧阳^测试||19501228\r".encode()),
    "v2 space-prefixed segment": ("mllp", f"{MSH} PID|1||M1||欧阳^测试||19501228\r".encode()),
    "v2 OBX-5 free text": ("mllp", f"{MSH}OBX|1|ST|x^y||欧阳测试住北京西长安街||||||F\r".encode()),
    "v2 NTE-3 free text": ("mllp", f"{MSH}NTE|1||Ouyang Ceshi {PHONE} 1950-12-28\r".encode()),
    "v2 GBK text": ("mllp", f"{MSH}NTE|1||欧阳测试 北京西长安街\r".encode("gbk")),
    "v2 PID-23 birth place": ("mllp", f"{MSH}PID|1||M1|||||||||||||||||||||北京西长安街\r".encode()),
    "v2 PID-3 ID number": ("mllp", f"{MSH}PID|1||{ID_NUMBER}^^^&2.16.156.10011.1.3&ISO||欧阳\r".encode()),
    "v2 unknown segment": ("mllp", f"{MSH}ZPI|1|OUYANG^CESHI|{PHONE}|19501228\r".encode()),
    "v2 newlines": ("mllp", f"{MSH}\nPID|1||M1||欧阳^测试||19501228\n".encode()),
    "xml spaced end tag": ("hl7v3", f"{V3}<name >欧阳测试</name ></PRPA_IN201311UV02>".encode()),
    "xml prefixed hyphenated": (
        "hl7v3",
        b'<hl7:patient-name xmlns:hl7="urn:hl7-org:v3">Ouyang Ceshi</hl7:patient-name>',
    ),
    "xml single-quoted attributes": (
        "cda",
        f"{V3}<birthTime value='19501228'/><telecom value='tel:{PHONE}'/></PRPA_IN201311UV02>".encode(),
    ),
    "xml id extension": (
        "cda",
        f'{V3}<id root="2.16.156.10011.1.3" extension="{ID_NUMBER}"/></PRPA_IN201311UV02>'.encode(),
    ),
    "xml narrative text": (
        "cda",
        f"{V3}<text><paragraph>欧阳测试，1950-12-28 生，住北京西长安街</paragraph></text></PRPA_IN201311UV02>".encode(),
    ),
    "xml other element": (
        "cda",
        f"{V3}<birthplace><place>北京西长安街</place></birthplace></PRPA_IN201311UV02>".encode(),
    ),
    "xml comment": ("cda", f"{V3}<!-- 欧阳测试 {PHONE} --></PRPA_IN201311UV02>".encode()),
    "xml displayName": ("cda", f'{V3}<code code="1" displayName="欧阳测试"/></PRPA_IN201311UV02>'.encode()),
    "xml not well formed": ("cda", f"{V3}<name>欧阳测试</nam><addr use='H'>北京 {PHONE}".encode()),
    "json reference display": (
        "mhd",
        orjson.dumps(
            {"resourceType": "Observation", "subject": {"reference": "Patient/1", "display": "欧阳测试"}}
        ),
    ),
    "json valueString": ("mhd", orjson.dumps({**FHIR_PATIENT, "note": [{"valueString": "Ouyang Ceshi"}]})),
    "json valueAddress": (
        "mhd",
        orjson.dumps(
            {
                **FHIR_PATIENT,
                "extension": [{"url": "x", "valueAddress": {"city": "北京", "line": ["西长安街"]}}],
            }
        ),
    ),
    "json valueDate": (
        "mhd",
        orjson.dumps({**FHIR_PATIENT, "extension": [{"url": "x", "valueDate": "1950-12-28"}]}),
    ),
    "json identifier and telecom": (
        "mhd",
        orjson.dumps({**FHIR_PATIENT, "identifier": [{"value": ID_NUMBER}], "telecom": [{"value": PHONE}]}),
    ),
    "json code that is a date": ("mhd", orjson.dumps({**FHIR_PATIENT, "code": "19501228"})),
    "json invalid": ("mhd", f'{{"name": "欧阳测试", "birthDate": "1950-12-28", "x": {PHONE}'.encode()),
    "fallback pinyin and dates": ("hl7v3", f"Ouyang Ceshi born 1950-12-28 at Xichang'an {PHONE}".encode()),
    "fallback chinese": ("hl7v3", f"欧阳测试 北京西长安街 {ID_NUMBER} 1950年12月28日".encode()),
}


@pytest.mark.parametrize("name", sorted(LEAKS))
def test_nothing_personal_survives(name: str) -> None:
    channel, raw = LEAKS[name]
    shown = masked_content(raw, channel)
    leaked = [s for s in SECRETS if s.lower() in shown.lower()]
    assert not leaked, f"{name}: {leaked} in {shown!r}"


@pytest.mark.parametrize(
    "reason",
    [
        "'1950-12-28' is not an HL7 date (PID-7)",
        '"欧阳测试" does not match the registered name',
        f"no patient with identifier {ID_NUMBER} or phone {PHONE}",
        "birth date 19501228 is in the future",
        "name “Ouyang Ceshi” is too long",
    ],
)
def test_reasons_lose_what_they_quote(reason: str) -> None:
    shown = masked_reason(reason)
    leaked = [s for s in SECRETS if s.lower() in shown.lower()]
    assert not leaked, f"{leaked} in {shown!r}"


def test_reasons_keep_their_codes_and_words() -> None:
    shown = masked_reason("RHIP-SEC-0002: Access denied: meta.source names another institution (PID-7)")
    assert shown == "RHIP-SEC-0002: Access denied: meta.source names another institution (PID-7)"


def test_hl7_v2_keeps_its_structure_and_sender() -> None:
    raw = (
        f"{MSH}EVN|A04|20250308\r"
        f"PID|1||M1^^^510725H01^MR~{ID_NUMBER}^^^&2.16.156.10011.1.3&ISO^NNCHN||欧阳^测试||19501228|M|||"
        f"北京市西城区1号||{PHONE}\r"
        f"NK1|1|欧阳^父|FTH|北京市西城区1号|13912345678\r"
    ).encode("gbk")
    shown = masked_content(raw, "mllp")
    lines = shown.splitlines()
    assert (
        lines[0].startswith("MSH|^~\\&|HIS|510725H01|RHIP|RHIP|") and "ADT^A04^ADT_A01|C1|P|2.5.1" in lines[0]
    )
    assert lines[1] == f"EVN|A04|{HIDDEN}"
    assert lines[2].startswith(
        f"PID|1||{HIDDEN}^^^{HIDDEN}^{HIDDEN}~{HIDDEN}^^^&{HIDDEN}&{HIDDEN}^{HIDDEN}||"
    )
    assert lines[3].startswith("NK1|1|")
    assert not [s for s in SECRETS if s in shown] and "13912345678" not in shown


def test_xml_keeps_its_elements_and_codes() -> None:
    raw = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        '<templateId root="2.16.156.10011.2.1.1.21" extension="C0001"/>'
        f'<recordTarget><patientRole><id root="2.16.156.10011.1.3" extension="{ID_NUMBER}"/>'
        "<addr use='H'><streetAddressLine>西长安街1号</streetAddressLine></addr>"
        f'<telecom value="tel:{PHONE}"/><patient><name>欧阳测试</name>'
        '<administrativeGenderCode code="1" codeSystem="2.16.156.10011.2.3.3.4"/>'
        '<birthTime value="19501228"/></patient></patientRole></recordTarget>'
        "<title>出院小结</title></ClinicalDocument>"
    ).encode()
    shown = masked_content(raw, "cda")
    assert not [s for s in SECRETS if s in shown]
    assert '<templateId root="2.16.156.10011.2.1.1.21" extension="C0001"/>' in shown
    assert f'<id root="2.16.156.10011.1.3" extension="{HIDDEN}"/>' in shown
    assert '<administrativeGenderCode code="1" codeSystem="2.16.156.10011.2.3.3.4"/>' in shown
    assert f'<addr use="H"><streetAddressLine>{HIDDEN}</streetAddressLine></addr>' in shown
    assert f"<title>{HIDDEN}</title>" in shown


def test_fhir_json_keeps_types_codes_and_references_to_other_than_patients() -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "subject": {"reference": "Patient/p1", "display": "欧阳测试"},
                    "performer": [{"reference": "Organization/o1"}],
                    "valueQuantity": {"value": 120, "unit": "mmHg"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        ],
    }
    shown = orjson.loads(masked_content(orjson.dumps(bundle), "mhd"))
    resource = shown["entry"][0]["resource"]
    assert shown["type"] == "transaction" and resource["status"] == "final"
    assert resource["code"]["coding"][0] == {"system": "http://loinc.org", "code": "8480-6"}
    assert resource["subject"] == {"reference": HIDDEN, "display": HIDDEN}
    assert resource["performer"] == [{"reference": "Organization/o1"}]
    assert resource["valueQuantity"] == {"value": HIDDEN, "unit": HIDDEN}
    assert shown["entry"][0]["request"] == {"method": "POST", "url": "Observation"}
