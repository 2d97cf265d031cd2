"""Standard codes added beside local ones on the way in, and maps read again when they change."""

from __future__ import annotations

import copy
from typing import Any

from rhip.terminology.conceptmaps import parse_concept_map_csv
from rhip.terminology.mapping import MAPPED_BY, ConceptMaps

from .test_conceptmaps import CSV, LOCAL, SEX

STANDARD_ADDED = {
    "extension": [{"url": MAPPED_BY, "valueCanonical": "urn:rhip:cm:4501:sex|2026-10"}],
    "system": SEX,
    "code": "1",
    "display": "男性",
    "userSelected": False,
}


def held() -> ConceptMaps:
    maps = ConceptMaps()
    maps.replace([parse_concept_map_csv(CSV)])
    return maps


def observation(code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "urn:x", "code": "sex"}]},
        "component": [
            {"code": {"text": "a"}, "valueCodeableConcept": {"coding": [{"system": LOCAL, "code": code}]}}
        ],
    }


def test_a_mapped_local_code_gets_its_standard_code_and_keeps_its_own() -> None:
    resource = observation("M")
    before = copy.deepcopy(resource)
    out = held().add_standard_codes(resource)
    assert resource == before  # the caller's object is left as it came
    assert out is not None
    codings = out["component"][0]["valueCodeableConcept"]["coding"]
    assert codings == [{"system": LOCAL, "code": "M"}, STANDARD_ADDED]
    assert out["code"] is resource["code"]  # untouched branches are shared, not copied


def test_nothing_is_added_twice_or_when_the_map_does_not_allow_it() -> None:
    maps = held()
    assert maps.add_standard_codes(observation("X")) is None  # not in the map
    assert maps.add_standard_codes(observation("U")) is None  # inexact
    already = observation("M")
    already["component"][0]["valueCodeableConcept"]["coding"].append({"system": SEX, "code": "1"})
    assert maps.add_standard_codes(already) is None
    assert ConceptMaps().add_standard_codes(observation("M")) is None  # no maps at all


def test_translate_filters_by_map_and_target_system() -> None:
    maps = held()
    (found,) = maps.translate(LOCAL, "F")
    assert (found.target.code, found.map_url, found.map_version) == ("2", "urn:rhip:cm:4501:sex", "2026-10")
    assert maps.translate(LOCAL, "F", url="urn:other") == []
    assert maps.translate(LOCAL, "F", target_system="urn:other") == []
    assert maps.translate(LOCAL, "nope") == []


def test_maps_are_read_again_after_a_change_or_when_stale() -> None:
    now = [0.0]
    stored: list[dict[str, Any]] = []
    reads = [0]

    def source() -> list[dict[str, Any]]:
        reads[0] += 1
        return stored

    maps = ConceptMaps(source, ttl_s=30, clock=lambda: now[0])
    assert maps.translate(LOCAL, "M") == [] and reads[0] == 1
    stored.append(parse_concept_map_csv(CSV).to_fhir())
    now[0] = 10
    assert maps.translate(LOCAL, "M") == [] and reads[0] == 1  # fresh enough: not read again
    now[0] = 31
    assert len(maps.translate(LOCAL, "M")) == 1 and reads[0] == 2  # stale: read again
    stored.clear()
    maps.changed()  # told of a change: read again at once
    assert maps.translate(LOCAL, "M") == [] and reads[0] == 3


def test_a_stored_map_that_cannot_be_read_is_skipped(caplog: Any) -> None:
    good = parse_concept_map_csv(CSV).to_fhir()
    maps = ConceptMaps(lambda: [{"resourceType": "ConceptMap", "id": "bad", "url": ""}, good])
    assert len(maps.translate(LOCAL, "M")) == 1
    assert "ConceptMap/bad is not used" in caplog.text
