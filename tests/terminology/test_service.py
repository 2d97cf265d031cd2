"""$lookup, $validate-code, $expand and $subsumes over the code tables and FHIR R4's required value sets."""

from __future__ import annotations

from datetime import date

import pytest

from rhip.fhir.valuesets import required_valuesets
from rhip.terminology.codesystems import builtin_code_systems, parse_code_table
from rhip.terminology.service import TerminologyService, UnknownTerminology

SEX = "urn:oid:2.16.156.10011.2.3.3.4"
MARITAL = "urn:oid:2.16.156.10011.2.3.3.5"
ETHNICITY_VS = "urn:rhip:vs:gb-3304"
GENDER_VS = "http://hl7.org/fhir/ValueSet/administrative-gender"
GENDER = "http://hl7.org/fhir/administrative-gender"


@pytest.fixture(scope="module")
def service() -> TerminologyService:
    return TerminologyService(builtin_code_systems(), required_valuesets())


def test_lookup_gives_display_and_place_in_the_hierarchy(service: TerminologyService) -> None:
    found = service.lookup(MARITAL, "22")
    assert found is not None
    assert found.concept.display == "再婚" and found.ancestors == ("20",) and found.system.version == "2003"
    married = service.lookup(MARITAL, "20")
    assert married is not None and married.children == ("21", "22", "23")
    assert service.lookup(MARITAL, "77") is None
    with pytest.raises(UnknownTerminology):
        service.lookup("urn:nowhere", "1")


def test_validate_code_against_systems_and_value_sets(service: TerminologyService) -> None:
    assert service.validate_code("1", system=SEX).display == "男性"
    assert service.validate_code("1", system=SEX, display="Male").result
    wrong = service.validate_code("1", system=SEX, display="女性")
    assert not wrong.result and "男性" in wrong.message
    assert not service.validate_code("3", system=SEX).result
    assert service.validate_code("56", valueset=ETHNICITY_VS).result
    assert not service.validate_code("57", valueset=ETHNICITY_VS).result
    # FHIR R4's required bindings, from the official package.
    assert service.validate_code("female", system=GENDER, valueset=GENDER_VS).result
    assert not service.validate_code("woman", system=GENDER, valueset=GENDER_VS).result
    with pytest.raises(UnknownTerminology):
        service.validate_code("x", valueset="urn:nowhere")
    with pytest.raises(ValueError):
        service.validate_code("x")


def test_a_code_out_of_force_on_the_day_is_refused() -> None:
    table = (
        "# name: divisions\n# url: urn:test:div\n# version: 2024\n# source: test\n# valueset: urn:test:vs\n"
        "code,display,display_en,parent,verified,valid_from,valid_to\n"
        "510722,三台县,,,yes,,\n510799,旧县,,,yes,1990-01-01,2019-12-31\n"
    )
    service = TerminologyService([parse_code_table(table)])
    assert service.validate_code("510799", system="urn:test:div", on=date(2010, 1, 1)).result
    late = service.validate_code("510799", system="urn:test:div", on=date(2024, 1, 1))
    assert not late.result and "not in force" in late.message
    assert service.validate_code("510799", valueset="urn:test:vs", system="urn:test:div").result


def test_expand_filters_and_pages(service: TerminologyService) -> None:
    whole = service.expand(ETHNICITY_VS)
    assert whole.total == 58 and whole.members[0].display == "汉族"
    page = service.expand(ETHNICITY_VS, offset=10, count=5)
    assert page.total == 58 and [m.code for m in page.members] == ["11", "12", "13", "14", "15"]
    found = service.expand(ETHNICITY_VS, text="哈")
    assert {m.display for m in found.members} == {"哈尼族", "哈萨克族"}
    assert [m.code for m in service.expand(ETHNICITY_VS, text="kazakh").members] == ["17"]
    required = service.expand(GENDER_VS)
    assert {m.code for m in required.members} == {"male", "female", "other", "unknown"}


def test_subsumes_follows_parents(service: TerminologyService) -> None:
    assert service.subsumes(MARITAL, "20", "22") == "subsumes"
    assert service.subsumes(MARITAL, "22", "20") == "subsumed-by"
    assert service.subsumes(MARITAL, "22", "22") == "equivalent"
    assert service.subsumes(MARITAL, "10", "22") == "not-subsumed"
    with pytest.raises(UnknownTerminology):
        service.subsumes(MARITAL, "20", "99")


def test_divisions_with_their_hierarchy_and_validity(service: TerminologyService) -> None:
    divisions = "urn:rhip:cs:gb-t-2260"
    assert service.subsumes(divisions, "510000", "510703") == "subsumes"  # 四川省 > 绵阳市 > 涪城区
    found = service.lookup(divisions, "510703")
    assert found is not None and found.concept.display == "涪城区" and found.ancestors == ("510700", "510000")
    # 安县 became 安州区 in 2016: a record of 2010 may name it, one of 2024 may not.
    assert service.validate_code("510724", system=divisions, on=date(2010, 5, 1)).result
    assert not service.validate_code("510724", system=divisions, on=date(2024, 5, 1)).result
    assert service.validate_code("510705", system=divisions, on=date(2024, 5, 1)).display == "安州区"
    assert [m.code for m in service.expand("urn:rhip:vs:gb-t-2260", text="绵阳").members] == ["510700"]
