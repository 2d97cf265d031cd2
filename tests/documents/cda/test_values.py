"""The shared value readers: HL7 TS, PQ, CD and II into FHIR, and the entry identity helpers."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from rhip.documents.cda import CdaRejected, InstanceId, document_key, full_url, if_none_exist
from rhip.documents.cda.codes import fhir_system
from rhip.documents.cda.values import coding, fhir_time, instance_id, number, quantity

V3 = "urn:hl7-org:v3"


def element(xml: str) -> etree._Element:
    """A CDA element from a snippet (namespace added)."""
    return etree.fromstring(xml.replace("<v ", f'<v xmlns="{V3}" ', 1))


@pytest.mark.parametrize(
    ("ts", "fhir"),
    [
        ("2025", "2025"),
        ("202503", "2025-03"),
        ("20250323", "2025-03-23"),
        ("2025032311", "2025-03-23T11:00:00+08:00"),
        ("202503231123", "2025-03-23T11:23:00+08:00"),
        ("20250323112305", "2025-03-23T11:23:05+08:00"),
        ("20250323112305.5", "2025-03-23T11:23:05.500000+08:00"),
        ("20250323112305+0000", "2025-03-23T11:23:05+00:00"),
        ("20250323112305-0500", "2025-03-23T11:23:05-05:00"),
        ("00000000", None),
        ("000000000000", None),
    ],
)
def test_ts(ts: str, fhir: str | None) -> None:
    assert fhir_time(ts, "/x") == fhir


def test_ts_keeps_historical_offsets_of_the_zone() -> None:
    # China kept summer time from 1986 to 1991: a local time then was +09:00.
    assert fhir_time("19880701120000", "/x", ZoneInfo("Asia/Shanghai")) == "1988-07-01T12:00:00+09:00"


@pytest.mark.parametrize(
    "bad", ["2025-03-23", "20251332", "2025023012", "abc", "2025032325", "20250323 1123"]
)
def test_bad_ts_names_the_element(bad: str) -> None:
    with pytest.raises(CdaRejected) as caught:
        fhir_time(bad, "/ClinicalDocument/effectiveTime")
    assert caught.value.code == "RHIP-CDA-0020"
    assert caught.value.path == "/ClinicalDocument/effectiveTime"


def test_quantity() -> None:
    assert quantity(element('<v value="5.13" unit="10*9/L"/>'), "10^9/L") == {
        "value": 5.13, "unit": "10^9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L",
    }  # fmt: skip
    assert quantity(element('<v value="165" unit="g/L"/>')) == {
        "value": 165, "unit": "g/L", "system": "http://unitsofmeasure.org", "code": "g/L",
    }  # fmt: skip
    # A Chinese count word is no UCUM unit.
    assert quantity(element('<v value="30" unit="片"/>')) == {"value": 30, "unit": "片"}
    assert quantity(element('<v value="7"/>')) == {"value": 7}
    assert quantity(element('<v nullFlavor="UNK"/>')) is None
    with pytest.raises(CdaRejected):
        quantity(element('<v value="1,5" unit="mg"/>'))


@pytest.mark.parametrize(
    "bad", ["123456789012345678901234", "9" * 5000, "1e400", "-1e16", "1" * 41, "²", "١٢"]
)
def test_an_absurd_quantity_is_refused(bad: str) -> None:
    with pytest.raises(CdaRejected) as caught:
        quantity(element(f'<v value="{bad}" unit="g/L"/>'))
    assert caught.value.code == "RHIP-CDA-0020"


def test_integers_must_fit_a_fhir_integer() -> None:
    assert number("2147483647", "/x", integer=True) == 2147483647
    with pytest.raises(CdaRejected):
        number("2147483648", "/x", integer=True)
    assert number("2147483648", "/x") == 2147483648  # a quantity may be larger
    assert number("1.5e3", "/x") == 1500.0


@pytest.mark.parametrize(
    ("unit", "code"),
    [
        ("mmHg", "mm[Hg]"),
        ("10^9/L", "10*9/L"),
        ("10*12/L", "10*12/L"),
        ("℃", "Cel"),
        ("°C", "Cel"),
        ("次/分", "/min"),
        ("次/min", "/min"),
        ("岁", "a"),
        ("mmol/L", "mmol/L"),
        ("g/L", "g/L"),
        ("%", "%"),
        ("kg", "kg"),
        ("cm", "cm"),
        ("μmol/L", "umol/L"),
    ],
)
def test_common_units_are_given_their_ucum_code(unit: str, code: str) -> None:
    assert quantity(element(f'<v value="120" unit="{unit}"/>')) == {
        "value": 120, "unit": unit, "system": "http://unitsofmeasure.org", "code": code,
    }  # fmt: skip


@pytest.mark.parametrize("unit", ["片", "mg/次", "Pcs", "ml/kg.h", "10^9"])
def test_an_unknown_unit_is_only_a_unit(unit: str) -> None:
    assert quantity(element(f'<v value="2" unit="{unit}"/>')) == {"value": 2, "unit": unit}


def test_coding() -> None:
    assert coding(element('<v code="I10" codeSystem="2.16.156.10011.2.3.3.11" displayName="高血压"/>')) == {
        "system": "urn:oid:2.16.156.10011.2.3.3.11", "code": "I10", "display": "高血压",
    }  # fmt: skip
    assert coding(element('<v code="6690-2" codeSystem="2.16.840.1.113883.6.1"/>')) == {
        "system": "http://loinc.org", "code": "6690-2",
    }  # fmt: skip
    assert coding(element('<v code="0101" codeSystemName="国家免疫规划疫苗代码"/>')) == {
        "system": "urn:rhip:cs:nip-vaccine", "code": "0101",
    }  # fmt: skip
    assert coding(element('<v code="X" codeSystemName="未知代码表"/>')) == {"code": "X"}
    assert coding(element('<v nullFlavor="OTH" displayName="病例分类"/>')) is None
    assert fhir_system("2.16.840.1.113883.6.73") == "http://www.whocc.no/atc"


def test_instance_id() -> None:
    assert instance_id(element('<v root="2.16.156.10011.1.3" extension="5101"/>')) == (
        "2.16.156.10011.1.3",
        "5101",
    )
    for placeholder in (
        '<v root="2.16.156.10011.1.3" extension="-"/>',
        '<v nullFlavor="UNK"/>',
        '<v extension="1"/>',
    ):
        assert instance_id(element(placeholder)) is None


def test_entry_identity() -> None:
    key = document_key(InstanceId("2.16.156.10011.1.1", "C0002-abc"))
    assert key == "2.16.156.10011.1.1:C0002-abc"
    # Parts a URN or query string would mangle are replaced by a digest, the same each time.
    odd = document_key(InstanceId("2.16.156.10011.1.1", "甲 1&2"))
    assert odd.startswith("2.16.156.10011.1.1:sha1-") and odd == document_key(
        InstanceId("2.16.156.10011.1.1", "甲 1&2")
    )
    resource = {
        "resourceType": "Observation",
        "identifier": [{"system": f"urn:rhip:cda-entry:{key}", "value": "component[2]/section/entry[3]"}],
    }
    assert full_url(resource) == full_url(dict(resource))
    assert full_url(resource) != full_url({**resource, "resourceType": "Condition"})
    assert full_url(resource).startswith("urn:uuid:")
    assert if_none_exist(resource) == (
        "identifier=urn%3Arhip%3Acda-entry%3A2.16.156.10011.1.1%3AC0002-abc%7Ccomponent%5B2%5D%2Fsection%2Fentry%5B3%5D"
    )
    with pytest.raises(ValueError):
        full_url({"resourceType": "Observation"})
