"""Code tables as data files: read, checked, and shown as FHIR CodeSystems."""

from __future__ import annotations

from datetime import date

import pytest

from rhip.terminology.codesystems import CodeTableError, builtin_code_systems, parse_code_table

HEADER = "code,display,display_en,parent,verified,valid_from,valid_to"
META = "# name: T 1 测试\n# url: urn:test:cs\n# version: 1\n# source: a test\n#   (continued)\n"


def test_the_shipped_tables_name_their_source_and_version() -> None:
    systems = {cs.url: cs for cs in builtin_code_systems()}
    sex = systems["urn:oid:2.16.156.10011.2.3.3.4"]
    assert [c.code for c in sex.concepts] == ["0", "1", "2", "9"]
    assert sex.by_code["1"].display == "男性" and sex.by_code["1"].verified
    assert not sex.by_code["9"].verified  # keyed in from secondary sources: said so
    ethnicity = systems["urn:oid:2.16.156.10011.2.3.3.3"]
    assert ethnicity.by_code["01"].display == "汉族" and ethnicity.by_code["56"].display == "基诺族"
    assert len([c for c in ethnicity.concepts if c.code <= "56"]) == 56
    for cs in systems.values():
        assert cs.source and cs.version and cs.valueset and cs.verified_note


def test_a_table_with_hierarchy_and_dates() -> None:
    cs = parse_code_table(
        META + f"{HEADER}\n10,上,Up,,yes,,\n11,中,,10,no,2020-01-01,2024-12-31\n12,下,,11,yes,,\n"
    )
    assert cs.source == "a test (continued)"
    assert cs.ancestors("12") == ("11", "10")
    middle = cs.by_code["11"]
    assert not middle.verified and middle.valid_on(date(2022, 5, 1)) and not middle.valid_on(date(2025, 1, 1))
    fhir = cs.to_fhir()
    assert fhir["resourceType"] == "CodeSystem" and fhir["count"] == 3 and fhir["content"] == "complete"
    props = {p["code"]: p for p in fhir["concept"][1]["property"]}
    assert props["parent"]["valueCode"] == "10" and props["valid-to"]["valueDateTime"] == "2024-12-31"
    assert props["verified"]["valueBoolean"] is False
    assert fhir["concept"][0]["designation"] == [{"language": "en", "value": "Up"}]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"# url: urn:x\n{HEADER}\n1,a,,,yes,,\n", "without name, version, source"),
        (META + "code,display\n1,a\n", "first line after the # lines"),
        (META + f"{HEADER}\n1,a,,,yes,,\n1,b,,,yes,,\n", "listed twice"),
        (META + f"{HEADER}\n1,a,,9,yes,,\n", "unknown parent"),
        (META + f"{HEADER}\n1,a,,2,yes,,\n2,b,,1,yes,,\n", "circle"),
        (META + f"{HEADER}\n1,a,,,maybe,,\n", "verified is yes or no"),
        (META + f"{HEADER}\n1,a,,,yes,2020-13-01,\n", "not a date"),
        (META + f"{HEADER}\n1,,,,yes,,\n", "display are required"),
    ],
)
def test_a_broken_table_is_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(CodeTableError, match=message):
        parse_code_table(text, "broken.csv")
