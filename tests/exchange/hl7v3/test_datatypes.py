"""HL7 v3 data types read as FHIR: timestamps, names, addresses, phones, codes, identifiers."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from rhip.exchange.hl7v3.datatypes import (
    address,
    coding,
    fhir_to_ts,
    human_name,
    identifier_system,
    parse_ts,
    split_han_name,
    telecoms,
)
from rhip.exchange.hl7v3.errors import BadValue
from rhip.exchange.hl7v3.xmlread import II, find, ids
from rhip.xmlsafe import parse_xml

ZONE = ZoneInfo("Asia/Shanghai")


def xml(text: str) -> object:
    """An element in the HL7 namespace (or none, when ``text`` declares none)."""
    return parse_xml(text.encode())


@pytest.mark.parametrize(
    ("ts", "fhir"),
    [
        ("1987", "1987"),
        ("198701", "1987-01"),
        ("19870131", "1987-01-31"),
        ("20250326121800", "2025-03-26T12:18:00+08:00"),
        ("202503261218", "2025-03-26T12:18:00+08:00"),
        ("20250326121800.123", "2025-03-26T12:18:00.123+08:00"),
        ("20250326121800+0000", "2025-03-26T12:18:00+00:00"),
        ("2025-03-26T12:18:00", "2025-03-26T12:18:00+08:00"),
        ("2025-03-26", "2025-03-26"),
    ],
)
def test_timestamps_become_fhir_dates_with_the_local_offset(ts: str, fhir: str) -> None:
    assert parse_ts(ts, ZONE, "x") == fhir


@pytest.mark.parametrize("bad", ["19870231", "abc", "2025132", "20251301", "1987013112999"])
def test_impossible_timestamps_are_refused_naming_the_element(bad: str) -> None:
    with pytest.raises(BadValue) as caught:
        parse_ts(bad, ZONE, "PRPA/x/birthTime")
    assert caught.value.location == "PRPA/x/birthTime"


def test_fhir_times_go_back_as_timestamps() -> None:
    assert fhir_to_ts("1987-01-31") == "19870131"
    assert fhir_to_ts("2025-02-01T09:30:00+08:00") == "20250201093000+0800"


@pytest.mark.parametrize(
    ("name", "parts"),
    [("伍波", ("伍", "波")), ("欧阳明远", ("欧阳", "明远")), ("司马光", ("司马", "光")), ("王", ("王", ""))],
)
def test_han_names_split_at_the_surname(name: str, parts: tuple[str, str]) -> None:
    assert split_han_name(name) == parts


def test_names_in_every_layout() -> None:
    one_part = xml('<name xmlns="urn:hl7-org:v3"><item><part value="欧阳明远"/></item></name>')
    assert human_name(one_part) == {
        "use": "official",
        "text": "欧阳明远",
        "family": "欧阳",
        "given": ["明远"],
    }  # type: ignore[arg-type]
    typed = xml('<name><item><part type="FAM" value="Smith"/><part type="GIV" value="Anne"/></item></name>')
    assert human_name(typed) == {
        "use": "official",
        "text": "Smith Anne",
        "family": "Smith",
        "given": ["Anne"],
    }  # type: ignore[arg-type]
    r1 = xml("<name><family>张</family><given>三</given></name>")
    assert human_name(r1) == {"use": "official", "text": "张三", "family": "张", "given": ["三"]}  # type: ignore[arg-type]
    plain = xml("<name>李四</name>")
    assert human_name(plain)["family"] == "李"  # type: ignore[arg-type,index]
    assert human_name(xml('<name nullFlavor="UNK"/>')) is None  # type: ignore[arg-type]


def test_chinese_address_parts() -> None:
    addr = xml(
        '<addr use="H"><item><part type="STA" value="广东省"/><part type="CTY" value="广州市"/>'
        '<part type="CNT" value="越秀区"/><part type="STB" value="童心街"/><part type="STR" value="下塘西路"/>'
        '<part type="BNR" value="39号"/><part type="ZIP" value="510000"/></item></addr>'
    )
    assert address(addr) == {  # type: ignore[arg-type]
        "text": "广东省广州市越秀区童心街下塘西路39号",
        "line": ["童心街下塘西路39号"],
        "city": "广州市",
        "district": "越秀区",
        "state": "广东省",
        "postalCode": "510000",
    }
    assert address(xml('<addr><item><part value=""/></item></addr>')) is None  # type: ignore[arg-type]


def test_phones_and_mail() -> None:
    tel = xml(
        '<telecom><item value="13085908474"/><item value="tel:0816-2222444"/>'
        '<item value="mailto:a@b.cn"/><item value="028-1" use="WP"/><item nullFlavor="UNK"/></telecom>'
    )
    assert telecoms(tel) == [  # type: ignore[arg-type]
        {"system": "phone", "value": "13085908474", "use": "mobile"},
        {"system": "phone", "value": "0816-2222444"},
        {"system": "email", "value": "a@b.cn"},
        {"system": "phone", "value": "028-1", "use": "work"},
    ]


def test_codes_and_identifiers() -> None:
    cd = xml(
        '<maritalStatusCode code="20" codeSystem="2.16.156.10011.2.3.3.5"><displayName value="已婚"/></maritalStatusCode>'
    )
    assert coding(cd) == {"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "20", "display": "已婚"}  # type: ignore[arg-type]
    assert coding(xml('<code nullFlavor="OTH" codeSystem="1.2"/>')) is None  # type: ignore[arg-type]
    both = xml(
        '<r><id><item root=" 2.16.156.10011.1.3 " extension="1"/><item nullFlavor="NI"/></id><id root="1.2" extension="9"/></r>'
    )
    assert ids(find(both, "id")) == [II("2.16.156.10011.1.3", "1")]  # type: ignore[arg-type]
    assert ids(both[1]) == [II("1.2", "9")]  # type: ignore[index]
    assert identifier_system(II("2.16.156.10011.2.5.1.4", "7"), "510704104X01") == "urn:rhip:mrn:510704104X01"
    assert identifier_system(II("2.16.156.10011.2.5.1.4", "7"), None) is None
    assert identifier_system(II("2.16.156.10011.1.19", "7"), None) == "urn:oid:2.16.156.10011.1.19"
