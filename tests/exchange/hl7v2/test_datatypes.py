"""v2 data types → FHIR data types."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from rhip.exchange.hl7v2 import datatypes as dt
from rhip.exchange.hl7v2.message import DEFAULT_DELIMITERS as D
from rhip.exchange.hl7v2.message import Delimiters

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2025", "2025"),
        ("202502", "2025-02"),
        ("20250220", "2025-02-20"),
        ("2025022015", "2025-02-20T15:00:00+08:00"),
        ("202502201547", "2025-02-20T15:47:00+08:00"),
        ("20250220154700", "2025-02-20T15:47:00+08:00"),
        ("20250220154700+0800", "2025-02-20T15:47:00+08:00"),
        ("20210817151943.4+0200", "2021-08-17T15:19:43.4+02:00"),
        ("202109141120-0530", "2021-09-14T11:20:00-05:30"),
        ("19880601120000", "1988-06-01T12:00:00+09:00"),  # China kept summer time from 1986 to 1991
        ("", None),
    ],
)
def test_ts_datetime_keeps_precision_and_reads_local_time(value: str, expected: str | None) -> None:
    assert dt.ts_datetime(value, SHANGHAI) == expected


def test_ts_date_and_instant() -> None:
    assert dt.ts_date("19870528") == "1987-05-28"
    assert dt.ts_date("198708181126+0215") == "1987-08-18"
    assert dt.ts_date("1987-05-28") == "1987-05-28"  # dashes, as some HIS send them
    assert dt.ts_datetime("2025-02-20 15:47:00", SHANGHAI) == "2025-02-20T15:47:00+08:00"
    assert dt.ts_instant("20250305", SHANGHAI) == "2025-03-05T00:00:00+08:00"
    assert dt.ts_instant("20250305090000", SHANGHAI) == "2025-03-05T09:00:00+08:00"


@pytest.mark.parametrize("value", ["19870532", "1987-5-28", "20251340", "2025022025", "abc", "20250220+2500"])
def test_a_bad_time_is_a_data_type_error(value: str) -> None:
    with pytest.raises(dt.DataTypeError) as caught:
        dt.ts_datetime(value, SHANGHAI)
    assert caught.value.hl7_code == "102"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("794248968212^^^510725H01^MR", {"system": "urn:rhip:mrn:510725H01", "value": "794248968212"}),
        ("123^^^^MR", {"system": "urn:rhip:mrn:SENDER", "value": "123"}),
        ("123", {"system": "urn:rhip:mrn:SENDER", "value": "123"}),
        (
            "510725197610198323^^^&2.16.156.10011.1.3&ISO^NNCHN",
            {"system": "urn:oid:2.16.156.10011.1.3", "value": "510725197610198323"},
        ),
        (
            "510725197610198323^^^^NNCHN",
            {"system": "urn:oid:2.16.156.10011.1.3", "value": "510725197610198323"},
        ),
        (
            "51072933969726^^^&2.16.156.10011.1.15&ISO^SN",
            {"system": "urn:oid:2.16.156.10011.1.15", "value": "51072933969726"},
        ),
        ("PATID1234^5^M11^test1&2.16.1&HCD^MR", {"system": "urn:rhip:mrn:test1", "value": "PATID1234"}),
        ("12345^^^Ntierprise Clinic^MR", {"system": "urn:rhip:mrn:Ntierprise%20Clinic", "value": "12345"}),
        (
            "123456789^^^USSSA^SS",
            {
                "system": "urn:rhip:id:USSSA",
                "value": "123456789",
                "type": {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]
                },
            },
        ),
        ("^^^510725H01^MR", None),
    ],
)
def test_cx_identifier(raw: str, expected: dict[str, object] | None) -> None:
    assert dt.cx_identifier(raw, D, "SENDER") == expected


def test_cx_period_and_ei() -> None:
    cx = dt.cx_identifier("4000776^^^AccMgr&1.3.6.1.4.1.44750.1.2.2&ISO^VN^1^19241011^19241012", D, "X")
    assert cx is not None
    assert cx["system"] == "urn:oid:1.3.6.1.4.1.44750.1.2.2"
    assert cx["period"] == {"start": "1924-10-11", "end": "1924-10-12"}
    assert dt.ei_identifier("36996", D, "urn:rhip:appointment", "H01") == {
        "system": "urn:rhip:appointment:H01",
        "value": "36996",
    }
    assert dt.ei_identifier("1^LIS^1.2.3^ISO", D, "urn:rhip:order", "H01") == {
        "system": "urn:oid:1.2.3",
        "value": "1",
    }


def test_chinese_and_latin_names() -> None:
    assert dt.xpn_name("何^婷", D, "official") == {
        "use": "official",
        "text": "何婷",
        "family": "何",
        "given": ["婷"],
    }
    assert dt.xpn_name("欧阳^娜娜^^^^^L", D) == {
        "use": "official",
        "text": "欧阳娜娜",
        "family": "欧阳",
        "given": ["娜娜"],
    }
    latin = dt.xpn_name("EVERYMAN&&&&Aniston^ADAM^A^III^Dr.^MD^D", D)
    assert latin == {
        "use": "usual",
        "text": "ADAM A EVERYMAN",
        "family": "EVERYMAN",
        "given": ["ADAM", "A"],
        "prefix": ["Dr."],
        "suffix": ["III", "MD"],
    }
    assert dt.xpn_name("^^^^^^L", D) is None


def test_chinese_address_with_division_code() -> None:
    raw = "文兴镇照耀村4组63号^^绵阳市^四川省^^CHN^H^梓潼县^510725"
    assert dt.xad_address(raw, D) == {
        "use": "home",
        "text": "四川省绵阳市梓潼县文兴镇照耀村4组63号",
        "line": ["文兴镇照耀村4组63号"],
        "city": "绵阳市",
        "district": "梓潼县",
        "state": "四川省",
        "country": "CHN",
        "extension": [{"url": "urn:rhip:ext:division", "valueCode": "510725"}],
    }
    # the whole address in the street line, as synth writes a text-only address
    only_area = dt.xad_address("四川省绵阳市梓潼县^^绵阳市^四川省^^CHN^H^梓潼县^", D)
    assert only_area is not None
    assert only_area["text"] == "四川省绵阳市梓潼县"
    assert "line" not in only_area
    latin = dt.xad_address("1000&Hospital Lane^Ste. 123^Ann Arbor ^MI^99999^USA^M", D)
    assert latin == {
        "type": "postal",
        "line": ["1000 Hospital Lane", "Ste. 123"],
        "city": "Ann Arbor",
        "state": "MI",
        "postalCode": "99999",
        "country": "USA",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("13230948155^PRN^CP", {"system": "phone", "value": "13230948155", "use": "mobile"}),
        ("0816-2563473^PRN^PH", {"system": "phone", "value": "0816-2563473", "use": "home"}),
        ("0816-2563473^WPN^PH", {"system": "phone", "value": "0816-2563473", "use": "work"}),
        ("^NET^Internet^a@example.cn", {"system": "email", "value": "a@example.cn"}),
        (
            "^PRN^PH^^86^816^2563473^12",
            {"system": "phone", "value": "+86 816-2563473 ext. 12", "use": "home"},
        ),
        ("(608)271-9000", {"system": "phone", "value": "(608)271-9000"}),
        ("^PRN^FX", None),
    ],
)
def test_xtn_contact(raw: str, expected: dict[str, str] | None) -> None:
    assert dt.xtn_contact(raw, D) == expected


@pytest.mark.parametrize(
    ("name", "system"),
    [
        ("I10", "urn:oid:2.16.156.10011.2.3.3.11"),
        ("ICD10", "http://hl7.org/fhir/sid/icd-10"),
        ("LN", "http://loinc.org"),
        ("HL70001", "http://terminology.hl7.org/CodeSystem/v2-0001"),
        ("GB3304", "urn:oid:2.16.156.10011.2.3.3.3"),
        ("GBT2261.1", "urn:oid:2.16.156.10011.2.3.3.4"),
        ("GBT2261.2", "urn:oid:2.16.156.10011.2.3.3.5"),
        ("2.16.156.10011.2.3.3.11", "urn:oid:2.16.156.10011.2.3.3.11"),
        ("99LAB", "urn:rhip:cs:local:H01:lab"),
        ("99LAB-PANEL", "urn:rhip:cs:local:H01:lab-panel"),
        ("L", "urn:rhip:cs:local:H01"),
        ("ICDO", "urn:rhip:cs:v2:ICDO"),
        ("", None),
    ],
)
def test_coding_system_names(name: str, system: str | None) -> None:
    assert dt.coding_system(name, "H01") == system


def test_cwe_concept() -> None:
    assert dt.cwe_concept("6690-2^白细胞计数^LN^WBC^白细胞计数^99LAB", D, "H01") == {
        "coding": [
            {"system": "http://loinc.org", "code": "6690-2", "display": "白细胞计数"},
            {"system": "urn:rhip:cs:local:H01:lab", "code": "WBC", "display": "白细胞计数"},
        ],
        "text": "白细胞计数",
    }
    assert dt.cwe_concept("01^^GB3304", D, "H01") == {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.3", "code": "01"}]
    }
    assert dt.cwe_concept("^花生", D, "H01") == {"text": "花生"}
    assert dt.cwe_concept("", D, "H01") is None
    assert dt.cwe_concept("A^^^^^^^^原文", D, "H01", "urn:x") == {
        "coding": [{"system": "urn:x", "code": "A"}],
        "text": "原文",
    }


def test_escaped_delimiters_are_read_back() -> None:
    assert dt.cwe_concept("10*9/L^10\\S\\9/L^UCUM", D, "H01") == {
        "coding": [{"system": "http://unitsofmeasure.org", "code": "10*9/L", "display": "10^9/L"}],
        "text": "10^9/L",
    }
    other = Delimiters("|", "#", "~", "\\", "&")
    assert dt.xpn_name("何#婷", other) == {"text": "何婷", "family": "何", "given": ["婷"]}


@pytest.mark.parametrize(
    ("code", "gender", "gb"),
    [
        ("M", "male", "1"),
        ("F", "female", "2"),
        ("O", "other", "9"),
        ("U", "unknown", "0"),
        ("1", "male", "1"),
        ("2", "female", "2"),
        ("男", "male", "1"),
    ],
)
def test_sex(code: str, gender: str, gb: str) -> None:
    assert dt.sex_gender(code) == gender
    coding = dt.sex_coding(code)
    assert coding is not None
    assert (coding["system"], coding["code"]) == ("urn:oid:2.16.156.10011.2.3.3.4", gb)


def test_an_unknown_sex_is_a_table_error() -> None:
    assert dt.sex_gender("") is None
    with pytest.raises(dt.DataTypeError) as caught:
        dt.sex_gender("X")
    assert caught.value.hl7_code == "103"


def test_marital_status_prefers_the_gb_code() -> None:
    both = "M^已婚^HL70002^20^已婚^GBT2261.2"
    assert dt.marital_status(both, D, "H01") == {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "20", "display": "已婚"}]
    }
    assert dt.marital_status("W", D, "H01") == {
        "coding": [
            {"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "30", "display": "丧偶"},
            {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": "W"},
        ]
    }


@pytest.mark.parametrize(
    ("code", "system", "act"),
    [
        ("I", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "IMP"),
        ("O", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "AMB"),
        ("E", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "EMER"),
        ("P", "http://terminology.hl7.org/CodeSystem/v3-ActCode", "PRENC"),
        ("R", "http://terminology.hl7.org/CodeSystem/v2-0004", "R"),
    ],
)
def test_patient_class(code: str, system: str, act: str) -> None:
    coding = dt.patient_class(code)
    assert coding is not None
    assert (coding["system"], coding["code"]) == (system, act)


def test_practitioner_and_location_are_logical_references() -> None:
    assert dt.xcn_reference("0005^张^蓉^^^^^^510725H01", D, "X") == {
        "type": "Practitioner",
        "identifier": {
            "system": "urn:oid:2.16.156.10011.1.4",
            "value": "0005",
            "assigner": {"identifier": {"system": "urn:oid:2.16.156.10011.1.5", "value": "510725H01"}},
        },
        "display": "张蓉",
    }
    assert dt.xcn_reference("^张蓉", D, "X") == {"type": "Practitioner", "display": "张蓉"}
    assert dt.xcn_reference("", D, "X") is None
    practitioner = dt.xcn_practitioner("9941339109^Smith^Adam^^^^^^&2.16.840.1.113883.4.6&ISO", D, "X")
    assert practitioner is not None
    assert practitioner["identifier"] == {"system": "urn:oid:2.16.840.1.113883.4.6", "value": "9941339109"}
    assert practitioner["name"] == {"text": "Adam Smith", "family": "Smith", "given": ["Adam"]}
    location = dt.pl_reference("02^^^510725H01^^^^^内科", D, "X")
    assert location is not None
    assert location["identifier"]["value"] == "02"
    assert location["display"] == "内科"
