"""The terminology operations through the platform's FHIR API, as a clinician's system calls them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.fhir.rest.messages import FhirRequest
from rhip.security.context import acting_as
from rhip.security.principal import Principal, Role
from rhip.security.scopes import parse_scopes

BASE = "http://localhost/fhir"
SEX = "urn:oid:2.16.156.10011.2.3.3.4"
MARITAL = "urn:oid:2.16.156.10011.2.3.3.5"


@pytest.fixture
def call(platform: Platform) -> Iterator[Any]:
    doctor = Principal("user:doc", Role.CLINICIAN, parse_scopes("user/*.rs"), institution="4501")

    def request(method: str, path: str, query: str = "", body: Any = None) -> tuple[int, dict[str, Any]]:
        raw = orjson.dumps(body) if body is not None else b""
        head = {"content-type": "application/fhir+json"} if raw else {}
        with acting_as(doctor):
            resp = platform.fhir.handle(FhirRequest(method, path, parse_qsl(query), head, raw, BASE))
        assert resp.status < 500 and resp.body is not None, resp.body
        return resp.status, orjson.loads(resp.body)

    yield request


def values(parameters: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in parameters["parameter"]:
        if "part" in p:
            out.setdefault(p["name"], []).append(
                {q["name"]: next(v for k, v in q.items() if k.startswith("value")) for q in p["part"]}
            )
        else:
            out[p["name"]] = next(v for k, v in p.items() if k.startswith("value"))
    return out


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_lookup_and_subsumes(call: Any) -> None:
    status, body = call("GET", "CodeSystem/$lookup", f"system={MARITAL}&code=22")
    assert status == 200
    found = values(body)
    assert found["display"] == "再婚" and found["version"] == "2003"
    props = {p["code"]: p["value"] for p in found["property"]}
    assert props["parent"] == "20" and props["verified"] is False
    assert found["designation"] == [{"language": "en", "value": "Remarried"}]
    status, body = call(
        "POST",
        "CodeSystem/$subsumes",
        body={
            "resourceType": "Parameters",
            "parameter": [
                {"name": "system", "valueUri": MARITAL},
                {"name": "codeA", "valueCode": "20"},
                {"name": "codeB", "valueCode": "23"},
            ],
        },
    )
    assert status == 200 and values(body) == {"outcome": "subsumes"}
    status, body = call("GET", "CodeSystem/$lookup", f"system={MARITAL}&code=77")
    assert status == 404 and body["resourceType"] == "OperationOutcome"
    status, body = call("GET", "CodeSystem/$lookup", "system=urn:nowhere&code=1")
    assert status == 404 and "not known" in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_validate_code_on_value_sets_and_code_systems(call: Any) -> None:
    status, body = call("GET", "ValueSet/$validate-code", f"url=urn:rhip:vs:gb-t-2261-1&system={SEX}&code=2")
    assert status == 200 and values(body) == {"result": True, "display": "女性"}
    status, body = call("GET", "ValueSet/$validate-code", f"url=urn:rhip:vs:gb-t-2261-1&system={SEX}&code=5")
    assert status == 200 and values(body)["result"] is False
    status, body = call("GET", "CodeSystem/$validate-code", f"url={SEX}&code=1&display=女性")
    assert status == 200 and values(body)["result"] is False and "男性" in values(body)["message"]
    gender = "http://hl7.org/fhir/ValueSet/administrative-gender"
    status, body = call("GET", "ValueSet/$validate-code", f"url={gender}&code=unknown")
    assert status == 200 and values(body)["result"] is True
    status, body = call("GET", "ValueSet/$validate-code", f"url={gender}&code=1&date=yesterday")
    assert status == 400 and "date" in body["issue"][0]["diagnostics"]
    status, body = call("GET", "ValueSet/$validate-code", f"url={gender}&code=1&colour=red")
    assert status == 400  # a parameter the operation does not take is refused, not ignored


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_expand_with_filter_and_paging(call: Any) -> None:
    status, body = call("GET", "ValueSet/$expand", "url=urn:rhip:vs:gb-3304&filter=族&offset=2&count=3")
    assert status == 200 and body["resourceType"] == "ValueSet"
    expansion = body["expansion"]
    assert expansion["total"] == 56 and expansion["offset"] == 2
    assert [c["code"] for c in expansion["contains"]] == ["03", "04", "05"]
    assert expansion["contains"][0] == {
        "system": "urn:oid:2.16.156.10011.2.3.3.3",
        "code": "03",
        "display": "回族",
        "designation": [{"language": "en", "value": "Hui"}],
    }
    status, body = call("GET", "ValueSet/$expand", "url=urn:rhip:vs:gb-3304&count=-1")
    assert status == 400
    status, body = call("GET", "ValueSet/$expand", "url=urn:nowhere")
    assert status == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_operations_are_in_the_capability_statement(call: Any) -> None:
    status, body = call("GET", "metadata")
    assert status == 200
    ops = {(r["type"], o["name"]) for r in body["rest"][0]["resource"] for o in r.get("operation", [])}
    assert {("CodeSystem", "lookup"), ("CodeSystem", "subsumes"), ("ValueSet", "expand")} <= ops
    assert {("ValueSet", "validate-code"), ("CodeSystem", "validate-code")} <= ops
