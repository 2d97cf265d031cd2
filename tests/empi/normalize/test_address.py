"""Addresses: division extension, name parsing (short forms, old names, ambiguity), street and house number."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from rhip.empi.normalize.address import ParsedAddress, address_from_fhir, parse_address
from rhip.empi.normalize.divisions import current_code, division_table, province_codes
from rhip.synth.region import Region
from rhip.synth.registration import Registrar

EXT = "urn:rhip:ext:division"


@pytest.fixture(scope="module")
def registrar() -> Iterator[Registrar]:
    """The synthetic generator's registrar, whose ``address`` writes Patient addresses."""
    yield Registrar(Region(seed=3, start=date(2022, 1, 1)), random.Random(1), {})


def _villages(registrar: Registrar) -> list[str]:
    return [code for code in registrar.region.divisions.by_code if len(code) == 12]


def test_every_synthetic_address_parses_fully(registrar: Registrar) -> None:
    villages = _villages(registrar)
    assert len(villages) > 2000
    for code in villages:
        for house, expected in (("3组12号", "3-12"), ("人民路12号5栋3单元1202", "12-5-3-1202")):
            address = registrar.address(code, house)
            by_code = parse_address(address)
            by_name = parse_address({k: v for k, v in address.items() if k != "extension"})
            by_text = parse_address({"text": address["text"]})
            want = ParsedAddress(code[:2], code[:4], code[:6], code[:9], code, house, expected)
            assert by_code == want, address
            assert by_name == want, address
            assert by_text == want, address


def test_partial_synthetic_addresses_give_the_county(registrar: Registrar) -> None:
    for code in _villages(registrar)[::50]:
        address = registrar.address(code, "1号", partial=True)
        assert parse_address(address) == ParsedAddress(code[:2], code[:4], code[:6], None, None, "", None)


def test_the_extension_is_trusted_and_padded_codes_stop_early() -> None:
    assert parse_address({"extension": [{"url": EXT, "valueCode": "510722100"}]}) == ParsedAddress(
        "51", "5107", "510722", "510722100", None, "", None
    )
    assert parse_address({"extension": [{"url": EXT, "valueCode": "510700"}]}).county is None
    assert parse_address({"extension": [{"url": EXT, "valueCode": "510722100000"}]}).township == "510722100"
    # A code of the wrong length is ignored; the text is read by name (a unique full county name).
    bad = parse_address({"extension": [{"url": EXT, "valueCode": "5107"}], "text": "江油市1号"})
    assert (bad.city, bad.county, bad.street) == ("5107", "510781", "1号")
    other = parse_address({"extension": [{"url": "urn:other", "valueCode": "510703"}]})
    assert other.province is None


def test_free_text_with_every_level() -> None:
    parsed = parse_address({"text": "四川省绵阳市涪城区城厢街道警钟街社区人民路12号"})
    assert parsed == ParsedAddress("51", "5107", "510703", "510703001", "510703001003", "人民路12号", "12")


@pytest.mark.parametrize(
    "text",
    [
        "四川绵阳涪城城厢街道办事处警钟街社区人民路12号",
        "中国四川省绵阳市涪城区城厢警钟街社区人民路12号",
        "四川省 绵阳市，涪城区 城厢街道 警钟街社区 人民路１２号",
        "四川省綿陽市涪城區城廂街道警鐘街社區人民路12號",
    ],
)
def test_suffixes_may_be_left_off_and_the_text_is_normalised(text: str) -> None:
    parsed = parse_address({"text": text})
    assert parsed == ParsedAddress("51", "5107", "510703", "510703001", "510703001003", "人民路12号", "12")


def test_the_old_county_name_keeps_its_code() -> None:
    old = parse_address({"text": "绵阳市安县花荄镇3组12号"})
    assert (old.province, old.city, old.county) == ("51", "5107", "510724")
    assert old.house == "3-12"
    new = parse_address({"text": "四川省绵阳市安州区花荄镇"})
    assert (new.county, new.township) == ("510705", "510705102")
    assert current_code("510724") == "510705"
    assert current_code("510703") == "510703"
    assert parse_address({"state": "四川", "city": "绵阳", "district": "安县"}).county == "510724"


def test_an_ambiguous_bare_county_is_not_guessed() -> None:
    bare = parse_address({"text": "朝阳区建国路88号"})
    assert (bare.province, bare.city, bare.county) == (None, None, None)
    assert bare.street == "朝阳区建国路88号"
    assert bare.house == "88"
    beijing = parse_address({"text": "北京市朝阳区建国路88号"})
    assert (beijing.province, beijing.county, beijing.street) == ("11", "110105", "建国路88号")
    changchun = parse_address({"text": "吉林省长春市朝阳区"})
    assert changchun.county == "220104"
    by_field = parse_address({"city": "北京市", "district": "朝阳区", "line": ["建国路88号"]})
    assert by_field.county == "110105"


def test_a_short_name_alone_is_not_read_as_a_division() -> None:
    # 长安 is the short form of 长安区 (西安), 四川 of 四川省: not when a street starts with them.
    assert parse_address({"text": "长安街1号"}).county is None
    assert parse_address({"text": "四川路12号"}).province is None
    # A short name followed by one of its own divisions is read.
    assert parse_address({"text": "四川绵阳"}).city == "5107"
    # A whole structured field may be a short name.
    assert parse_address({"state": "四川"}).province == "51"
    # Streets named after a division: a short name inside a known city or county needs confirming too.
    fucheng_road = parse_address({"text": "四川省绵阳市涪城路12号"})
    assert (fucheng_road.city, fucheng_road.county, fucheng_road.street) == ("5107", None, "涪城路12号")
    chengjiao_road = parse_address({"text": "绵阳市涪城区城郊路5号"})
    assert (chengjiao_road.county, chengjiao_road.township) == ("510703", None)
    assert chengjiao_road.street == "城郊路5号"
    assert parse_address({"text": "绵阳市涪城区城郊5号"}).township == "510703012"
    assert parse_address({"text": "绵阳涪城"}).county == "510703"


def test_a_unique_full_county_name_alone_is_read() -> None:
    parsed = parse_address({"text": "涪城区临园路1号"})
    assert (parsed.province, parsed.city, parsed.county, parsed.street) == (
        "51",
        "5107",
        "510703",
        "临园路1号",
    )


def test_structured_fields_and_line() -> None:
    address: dict[str, Any] = {
        "use": "home",
        "line": ["12号"],
        "city": "成都市",
        "district": "武侯区",
        "state": "四川省",
        "postalCode": "610000",
    }
    assert parse_address(address) == ParsedAddress("51", "5101", "510107", None, None, "12号", "12")
    # Fields that contradict each other: the district outside the province is not read.
    assert parse_address({"state": "四川省", "district": "朝阳区"}).county is None


def test_nothing_known() -> None:
    assert parse_address({}) == ParsedAddress(None, None, None, None, None, "", None)
    assert parse_address({"line": ["1 Main Street"], "city": "Springfield"}).street == "1MainStreet"


def test_address_from_fhir_prefers_current_home_addresses() -> None:
    home = {"use": "home", "text": "四川省绵阳市涪城区"}
    work = {"use": "work", "text": "四川省绵阳市游仙区"}
    old = {"use": "old", "text": "四川省绵阳市江油市"}
    ended = {"use": "home", "text": "四川省绵阳市三台县", "period": {"end": "2001-01-01"}}
    ongoing = {"text": "四川省绵阳市盐亭县", "period": {"start": "2001-01-01", "end": "2999-12-31"}}
    assert address_from_fhir([work, old, ended, home]).county == "510703"  # type: ignore[union-attr]
    assert address_from_fhir([work, ongoing]).county == "510723"  # type: ignore[union-attr]
    assert address_from_fhir([old, ended, work]).county == "510704"  # type: ignore[union-attr]
    assert address_from_fhir([old, ended]) is None
    assert address_from_fhir(None) is None
    assert address_from_fhir([]) is None


def test_division_table() -> None:
    assert province_codes() >= {"11", "51", "65", "71", "81", "82"}
    assert len(province_codes()) == 34
    table = division_table()
    assert table.names["510726"] == "北川羌族自治县"
    assert [e[0] for e in table.by_alias["北川"]] == ["510726"]
    assert {e[0] for e in table.by_alias["朝阳区"]} == {"110105", "220104"}
    assert sum(1 for code in table.names if len(code) == 6) > 2800
