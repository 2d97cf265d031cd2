"""``_summary`` and ``_elements`` views of stored resources (rhip.fhir.rest.output.View)."""

from __future__ import annotations

from typing import Any

import orjson

from rhip.fhir.definitions import structure
from rhip.fhir.repository import SearchPage, StoredResource
from rhip.fhir.rest.output import SUBSETTED, View, searchset

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
DAR = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
BIRTH_TIME = "http://hl7.org/fhir/StructureDefinition/patient-birthTime"
NATIONALITY = "http://hl7.org/fhir/StructureDefinition/patient-nationality"
SECURITY = {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "meta": {"versionId": "3", "lastUpdated": "2024-03-01T08:00:00.000Z", "security": [SECURITY]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">王伟</div>'},
        "extension": [{"url": NATIONALITY, "valueCodeableConcept": {"text": "CN"}}],
        "identifier": [
            {
                "use": "official",
                "system": "urn:oid:2.16.156.10011.1.3",
                "value": "110101198005120011",
                "extension": [{"url": "http://example.org/verified", "valueBoolean": True}],
            }
        ],
        "active": True,
        "name": [{"use": "official", "family": "王", "given": ["伟"], "_given": [{"id": "g1"}]}],
        "telecom": [{"system": "phone", "value": "13800000000", "use": "mobile"}],
        "gender": "male",
        "birthDate": "1980-05-12",
        "_birthDate": {"extension": [{"url": BIRTH_TIME, "valueDateTime": "1980-05-12T08:30:00+08:00"}]},
        "maritalStatus": {"text": "married"},
        "contact": [{"relationship": [{"text": "wife"}], "name": {"family": "李"}}],
        "generalPractitioner": [{"reference": "Practitioner/gp"}],
        "managingOrganization": {"reference": "Organization/o1", "display": "County hospital"},
        "link": [
            {
                "other": {"reference": "Patient/p0"},
                "type": "replaces",
                "extension": [{"url": "http://example.org/why", "valueString": "merge"}],
            }
        ],
    }


def observation() -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "o1",
        "meta": {"versionId": "1", "lastUpdated": "2024-03-01T08:00:00.000Z", "tag": [SUBSETTED]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">BP</div>'},
        "status": "final",
        "category": [{"coding": [{"code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": "2024-01-15T08:30:00+08:00",
        "interpretation": [{"text": "high"}],
        "note": [{"text": "after exercise"}],
        "component": [
            {
                "modifierExtension": [{"url": "http://example.org/estimated", "valueBoolean": True}],
                "extension": [{"url": "http://example.org/device-mode", "valueCode": "auto"}],
                "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                "valueQuantity": {"value": 150, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
                "interpretation": [{"text": "high"}],
                "referenceRange": [{"low": {"value": 90}, "high": {"value": 140}}],
            },
            {
                "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                "dataAbsentReason": {"text": "not measured"},
                "_valueString": {"extension": [{"url": DAR, "valueCode": "unknown"}]},
            },
        ],
    }


def view(summary: str | None = None, elements: list[str] | None = None) -> View:
    return View(structure(), summary, elements)


def subsetted_tags(resource: dict[str, Any]) -> list[Any]:
    return [t for t in resource["meta"]["tag"] if t.get("code") == "SUBSETTED"]


def test_summary_true_restricts_nested_elements_of_a_patient() -> None:
    got = view("true").subset(patient(), "Patient")
    assert list(got)[:3] == ["resourceType", "id", "meta"]
    assert got["id"] == "p1"
    # meta stays whole, with SUBSETTED added once.
    assert got["meta"]["versionId"] == "3"
    assert got["meta"]["security"] == [SECURITY]
    assert got["meta"]["tag"] == [SUBSETTED]
    # Top level: summary elements only.
    assert set(got) == {
        "resourceType",
        "id",
        "meta",
        "identifier",
        "active",
        "name",
        "telecom",
        "gender",
        "birthDate",
        "managingOrganization",
        "link",
    }
    # Nested: extensions (Element.extension, a primitive's "_x") are not summary elements.
    assert got["identifier"] == [
        {"use": "official", "system": "urn:oid:2.16.156.10011.1.3", "value": "110101198005120011"}
    ]
    assert got["name"] == [{"use": "official", "family": "王", "given": ["伟"]}]
    assert got["link"] == [{"other": {"reference": "Patient/p0"}, "type": "replaces"}]
    assert got["managingOrganization"] == {"reference": "Organization/o1", "display": "County hospital"}


def test_summary_true_restricts_nested_elements_of_an_observation() -> None:
    got = view("true").subset(observation(), "Observation")
    assert set(got) == {
        "resourceType",
        "id",
        "meta",
        "status",
        "code",
        "subject",
        "effectiveDateTime",
        "component",
    }
    first, second = got["component"]
    # Observation.component: code and value[x] are summary elements, modifierExtension is a modifier
    # (kept whole); extension, interpretation and referenceRange are not summary elements.
    assert first == {
        "modifierExtension": [{"url": "http://example.org/estimated", "valueBoolean": True}],
        "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
        "valueQuantity": {"value": 150, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
    }
    assert second == {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}}
    # The stored SUBSETTED tag is not repeated.
    assert got["meta"]["tag"] == [SUBSETTED]


def test_summary_true_of_resources_inside_a_resource() -> None:
    bundle = {
        "resourceType": "Bundle",
        "id": "b1",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:1", "resource": patient()}],
    }
    got = view("true").subset(bundle, "Bundle")
    inner = got["entry"][0]["resource"]
    assert "contact" not in inner and "text" not in inner
    assert inner["name"] == [{"use": "official", "family": "王", "given": ["伟"]}]
    assert subsetted_tags(inner) == [SUBSETTED]


def test_summary_text_and_data() -> None:
    text = view("text").subset(observation(), "Observation")
    # text, id, meta and the top-level mandatory elements (Observation.status and code are 1..1).
    assert set(text) == {"resourceType", "id", "meta", "text", "status", "code"}
    data = view("data").subset(patient(), "Patient")
    assert "text" not in data
    assert data["contact"] == patient()["contact"]
    assert data["_birthDate"] == patient()["_birthDate"]
    assert subsetted_tags(data) == [SUBSETTED]


def test_elements_are_top_level_with_mandatory_and_modifier_elements() -> None:
    got = view(elements=["birthDate", "name"]).subset(patient(), "Patient")
    # Patient has no mandatory elements; active and link are modifiers.
    assert set(got) == {"resourceType", "id", "meta", "name", "birthDate", "_birthDate", "active", "link"}
    # Top-level only: what is inside a listed element is returned whole.
    assert got["name"] == patient()["name"]
    assert got["link"] == patient()["link"]
    assert got["meta"]["security"] == [SECURITY]
    assert subsetted_tags(got) == [SUBSETTED]

    obs = view(elements=["subject"]).subset(observation(), "Observation")
    assert set(obs) == {"resourceType", "id", "meta", "status", "code", "subject"}
    assert subsetted_tags(obs) == [SUBSETTED]
    # A choice element may be named either way.
    assert "effectiveDateTime" in view(elements=["effective"]).subset(observation(), "Observation")
    assert "effectiveDateTime" in view(elements=["effectiveDateTime"]).subset(observation(), "Observation")


def test_elements_names_are_trimmed() -> None:
    """A read's ``_elements=gender, birthDate`` is split on commas only."""
    got = view(elements=["gender", " birthDate "]).subset(patient(), "Patient")
    assert {"gender", "birthDate"} <= set(got)
    assert "name" not in got


def stored(resource: dict[str, Any]) -> StoredResource:
    return StoredResource(
        resource["resourceType"], resource["id"], 1, "2024-03-01T08:00:00.000Z", False, orjson.dumps(resource)
    )


def test_elements_do_not_apply_to_included_resources() -> None:
    page = SearchPage(matches=[stored(observation())], included=[stored(patient())])
    bundle = orjson.loads(searchset("http://x/fhir", page, [], view(elements=["subject"]), "now"))
    match, include = (e["resource"] for e in bundle["entry"])
    assert "component" not in match
    assert include == patient()
    # _summary applies to both.
    bundle = orjson.loads(searchset("http://x/fhir", page, [], view("true"), "now"))
    match, include = (e["resource"] for e in bundle["entry"])
    assert "contact" not in include and subsetted_tags(include) == [SUBSETTED]
    assert "note" not in match
