"""Through the platform: an institution registers its local dictionary as a ConceptMap, its data with local
codes is stored with the standard codes beside them, $translate answers from the map, and validation on write
refuses a code that is not in a complete national code table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.fhir.rest.messages import FhirRequest
from rhip.security.context import acting_as
from rhip.security.principal import Principal, Role, platform_principal
from rhip.security.scopes import parse_scopes
from rhip.terminology.conceptmaps import parse_concept_map_csv
from rhip.terminology.mapping import MAPPED_BY

from .test_conceptmaps import CSV, LOCAL, SEX

BASE = "http://localhost/fhir"


@pytest.fixture
def call(platform: Platform) -> Iterator[Any]:
    hospital = Principal("client:4501-his", Role.SYSTEM, parse_scopes("system/*.cruds"), institution="4501")

    def request(
        method: str, path: str, query: str = "", body: Any = None, who: Principal = hospital
    ) -> tuple[int, dict[str, Any]]:
        raw = orjson.dumps(body) if body is not None else b""
        head = {"content-type": "application/fhir+json"} if raw else {}
        with acting_as(who):
            resp = platform.fhir.handle(FhirRequest(method, path, parse_qsl(query), head, raw, BASE))
        assert resp.status < 500 and resp.body is not None, resp.body
        return resp.status, orjson.loads(resp.body)

    yield request


def patient_with(sex_coding: dict[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "gender": "male",
        "extension": [
            {
                "url": "urn:rhip:ext:test-sex",
                "valueCodeableConcept": {"coding": [sex_coding]},
            }
        ],
    }


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_local_codes_get_standard_codes_once_the_dictionary_is_registered(call: Any) -> None:
    status, stored = call("POST", "Patient", body=patient_with({"system": LOCAL, "code": "M"}))
    assert status == 201
    assert stored["extension"][0]["valueCodeableConcept"]["coding"] == [{"system": LOCAL, "code": "M"}]

    status, created = call("POST", "ConceptMap", body=parse_concept_map_csv(CSV).to_fhir())
    assert status == 201, created

    status, stored = call("POST", "Patient", body=patient_with({"system": LOCAL, "code": "M"}))
    assert status == 201
    local, standard = stored["extension"][0]["valueCodeableConcept"]["coding"]
    assert local == {"system": LOCAL, "code": "M"}  # what the hospital sent is kept
    assert (standard["system"], standard["code"], standard["display"]) == (SEX, "1", "男性")
    assert standard["extension"] == [{"url": MAPPED_BY, "valueCanonical": "urn:rhip:cm:4501:sex|2026-10"}]
    status, read = call("GET", f"Patient/{stored['id']}")
    assert status == 200 and read["extension"] == stored["extension"]  # stored as answered

    status, answer = call("GET", "ConceptMap/$translate", f"system={LOCAL}&code=F")
    assert status == 200
    params = {p["name"]: p for p in answer["parameter"]}
    assert params["result"]["valueBoolean"] is True
    parts = {p["name"]: p for p in params["match"]["part"]}
    assert parts["concept"]["valueCoding"] == {"system": SEX, "code": "2", "display": "女性"}
    assert parts["equivalence"]["valueCode"] == "equal"
    assert parts["source"]["valueUri"] == "urn:rhip:cm:4501:sex|2026-10"

    status, answer = call("GET", "ConceptMap/$translate", f"system={LOCAL}&code=Q")
    assert status == 200 and answer["parameter"][0] == {"name": "result", "valueBoolean": False}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_map_to_codes_the_standard_lacks_is_refused(call: Any) -> None:
    bad = parse_concept_map_csv(CSV.replace("M,男,1,男性,", "M,男,7,男性,")).to_fhir()
    status, outcome = call("POST", "ConceptMap", body=bad)
    assert status == 400 and outcome["resourceType"] == "OperationOutcome"
    assert "'M' → '7'" in outcome["issue"][0]["diagnostics"]
    assert "GB/T 2261.1" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_validation_on_write_refuses_codes_missing_from_a_complete_table(call: Any) -> None:
    status, outcome = call("POST", "Patient", body=patient_with({"system": SEX, "code": "7"}))
    assert status in (400, 422) and outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["code"] == "code-invalid"
    assert "Code '7' is not a code of GB/T 2261.1" in issue["diagnostics"]
    assert issue["expression"] == ["Patient.extension[0].valueCodeableConcept.coding[0].code"]
    status, _ = call("POST", "Patient", body=patient_with({"system": SEX, "code": "2"}))
    assert status == 201
    status, _ = call("POST", "Patient", body=patient_with({"system": "urn:unknown:system", "code": "7"}))
    assert status == 201  # a code system the platform does not hold is not judged


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_translate_needs_a_system_and_a_code(call: Any) -> None:
    status, outcome = call("GET", "ConceptMap/$translate", "code=M", who=platform_principal("cli:test"))
    assert status == 400 and "system" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_concept_map_the_way_in_cannot_use_is_stored_as_any_resource(call: Any) -> None:
    draft = {"resourceType": "ConceptMap", "status": "draft", "group": [{"element": [{"code": "M"}]}]}
    status, stored = call("POST", "ConceptMap", body=draft)
    assert status == 201 and stored["status"] == "draft"  # valid R4, no url nor source: kept, not used
