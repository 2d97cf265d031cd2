"""Local dictionaries read as concept maps: the CSV layout, the FHIR ConceptMap, and what is refused."""

from __future__ import annotations

import pytest

from rhip.terminology.conceptmaps import (
    COLUMNS,
    ConceptMapError,
    Target,
    concept_map_from_fhir,
    parse_concept_map_csv,
)

LOCAL = "urn:rhip:cs:local:4501:sex"
SEX = "urn:oid:2.16.156.10011.2.3.3.4"
CSV = f"""# url: urn:rhip:cm:4501:sex
# name: 4501 sex dictionary
# version: 2026-10
# source: 4501 HIS dictionary export (2026-10-08)
# institution: 4501
# source_system: {LOCAL}
# target_system: {SEX}
local_code,local_display,standard_code,standard_display,equivalence
M,男,1,男性,
F,女,2,女性,equal
U,不详,0,未知的性别,inexact
"""


def test_csv_dictionary_reads_as_a_map_and_round_trips_through_fhir() -> None:
    cm = parse_concept_map_csv(CSV)
    assert cm.url == "urn:rhip:cm:4501:sex" and cm.version == "2026-10" and cm.institution == "4501"
    assert cm.elements[(LOCAL, "M")] == (Target(SEX, "1", "男性", "equivalent"),)
    assert cm.elements[(LOCAL, "U")][0].addable is False  # inexact: never added on the way in
    assert cm.source_systems() == {LOCAL}
    resource = cm.to_fhir()
    (group,) = resource["group"]
    assert group["source"] == LOCAL and group["target"] == SEX and len(group["element"]) == 3
    assert group["element"][0] == {
        "code": "M",
        "display": "男",
        "target": [{"code": "1", "equivalence": "equivalent", "display": "男性"}],
    }
    again = concept_map_from_fhir(resource)
    assert again.elements == cm.elements and again.institution == "4501"


def test_byte_order_mark_is_ignored() -> None:
    assert parse_concept_map_csv("\ufeff" + CSV).url == "urn:rhip:cm:4501:sex"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (CSV.replace(f"# target_system: {SEX}\n", ""), "target_system"),
        (CSV.replace("local_code,local_display", "code,display"), "first line after the # lines"),
        (CSV.replace("M,男,1,男性,", "M,男,,男性,"), "row 2: a local code and a standard code"),
        (CSV.replace("F,女,2,女性,equal", "F,女,2,女性,same"), "row 3: equivalence 'same'"),
        (CSV + "M,男,1,男性,equivalent\n", "stated twice"),
        (CSV.split("local_code", maxsplit=1)[0] + ",".join(COLUMNS) + "\n", "at least one"),
    ],
)
def test_bad_dictionaries_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ConceptMapError, match=message):
        parse_concept_map_csv(text)


def test_fhir_map_groups_and_unmatched_targets() -> None:
    resource = {
        "resourceType": "ConceptMap",
        "url": "urn:rhip:cm:4501:dept",
        "version": "1",
        "group": [
            {
                "source": "urn:rhip:cs:local:4501:dept",
                "target": "urn:example:std",
                "element": [
                    {"code": "NK", "target": [{"code": "03", "equivalence": "equivalent"}]},
                    {"code": "ZZ", "target": [{"equivalence": "unmatched"}]},
                ],
            }
        ],
    }
    cm = concept_map_from_fhir(resource)
    assert list(cm.elements) == [("urn:rhip:cs:local:4501:dept", "NK")]  # "nothing matches" adds nothing
    with pytest.raises(ConceptMapError, match="url"):
        concept_map_from_fhir({**resource, "url": ""})
    with pytest.raises(ConceptMapError, match="lists of objects"):
        concept_map_from_fhir({**resource, "group": {"source": "x"}})
    close = [{"code": "NK", "target": [{"code": "03", "equivalence": "close"}]}]
    bad = {**resource, "group": [{**resource["group"][0], "element": close}]}
    with pytest.raises(ConceptMapError, match="equivalence 'close'"):
        concept_map_from_fhir(bad)
