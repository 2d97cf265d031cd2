"""A refused message's content on the operator's screen: no name, address, birth date or whole ID number."""

from __future__ import annotations

import orjson

from rhip.web.portal.admin_ops_mask import HIDDEN, masked_content

ID_NUMBER = "513701195012285032"


def test_hl7_v2_people_fields_are_hidden() -> None:
    raw = (
        "MSH|^~\\&|HIS|510725H01|RHIP|RHIP|20250308134800||ADT^A04^ADT_A01|C1|P|2.5.1\r"
        f"PID|1||M1^^^510725H01^MR~{ID_NUMBER}^^^&2.16.156.10011.1.3&ISO^NNCHN||欧阳^测试||19501228|M|||"
        "北京市西城区1号||13812345678\r"
        "NK1|1|欧阳^父|FTH|北京市西城区1号|13912345678\r"
    ).encode("gbk")
    shown = masked_content(raw, "mllp")
    assert "欧阳" not in shown and "北京" not in shown and "19501228" not in shown
    assert ID_NUMBER not in shown and "5137**********5032" in shown
    assert "13812345678" not in shown and "13912345678" not in shown
    assert shown.splitlines()[1].startswith("PID|1||M1^^^510725H01^MR~") and f"|{HIDDEN}|" in shown
    assert "ADT^A04^ADT_A01|C1|" in shown  # what the operator needs stays


def test_xml_names_addresses_and_birth_times_are_hidden() -> None:
    raw = (
        '<ClinicalDocument xmlns="urn:hl7-org:v3"><recordTarget><patientRole>'
        f'<id root="2.16.156.10011.1.3" extension="{ID_NUMBER}"/>'
        "<addr><streetAddressLine>西长安街1号</streetAddressLine></addr>"
        '<telecom value="tel:13812345678"/><patient><name>欧阳测试</name>'
        '<birthTime value="19501228"/></patient></patientRole></recordTarget>'
        "<title>出院小结</title></ClinicalDocument>"
    ).encode()
    shown = masked_content(raw, "cda")
    assert "欧阳" not in shown and "西长安街" not in shown and "19501228" not in shown
    assert ID_NUMBER not in shown and "13812345678" not in shown
    assert "<title>出院小结</title>" in shown


def test_fhir_json_people_are_hidden() -> None:
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "identifier": [{"value": ID_NUMBER}],
                    "name": [{"text": "欧阳测试"}],
                    "birthDate": "1950-12-28",
                    "address": [{"text": "西长安街1号"}],
                }
            }
        ],
    }
    shown = masked_content(orjson.dumps(bundle), "mhd")
    assert "欧阳" not in shown and "1950-12-28" not in shown and "西长安街" not in shown
    assert ID_NUMBER not in shown and '"resourceType": "Patient"' in shown


def test_anything_else_loses_its_chinese_and_long_numbers() -> None:
    shown = masked_content(f"garbage 欧阳测试 {ID_NUMBER}".encode(), "hl7v3")
    assert "欧阳" not in shown and ID_NUMBER not in shown
