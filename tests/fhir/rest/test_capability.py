"""The CapabilityStatement lists exactly what works: every advertised search parameter, include and
reverse include is accepted by the real search parser, and the statement follows the settings."""

from __future__ import annotations

from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rhip.bootstrap.settings import Settings
from rhip.fhir.rest.capability import capability_statement
from rhip.fhir.search.params import SearchParam, registry
from rhip.fhir.search.parse import SearchParser
from rhip.fhir.validation import validator

BASE = "http://rhip.test/fhir"

# A plausible search value for each parameter type (the parser checks the syntax of each).
VALUES = {
    "string": "王",
    "token": "urn:oid:2.16.156.10011.1.3|110101199003071234",
    "date": "ge2024-03-01",
    "number": "gt0.5",
    "quantity": "5.4|http://unitsofmeasure.org|mg",
    "uri": "http://example.org/fhir/StructureDefinition/x",
}


def _statement(**options: Any) -> dict[str, Any]:
    return capability_statement(registry(), BASE, "test", "2024-01-01T00:00:00Z", **options)


@cache
def _parser() -> SearchParser:
    """The parser as rhip.bootstrap.container builds it."""
    settings = Settings(database_url="sqlite://")
    base_urls = (settings.server.public_base_url,) if settings.server.public_base_url else ()
    return SearchParser(
        registry(),
        ZoneInfo(settings.timezone),
        base_urls,
        settings.fhir.default_count,
        settings.fhir.max_count,
    )


def _value(param: SearchParam) -> str:
    if param.type == "reference":
        return f"{param.targets[0]}/abc" if param.targets else "Patient/abc"
    if param.type == "composite":
        parts = []
        for comp in param.components:
            if comp.type == "reference":
                parts.append("Patient/abc")
            else:
                parts.append(VALUES[comp.type])
        return "$".join(parts)
    return VALUES[param.type]


def _resources() -> list[dict[str, Any]]:
    resources: list[dict[str, Any]] = _statement()["rest"][0]["resource"]
    return resources


def test_every_advertised_search_parameter_is_accepted() -> None:
    parser, params = _parser(), registry()
    refused, tried = [], 0
    for resource in _resources():
        rtype = resource["type"]
        for advertised in resource["searchParam"]:
            param = params.get(rtype, advertised["name"])
            assert param is not None, (rtype, advertised["name"])
            assert advertised["type"] == param.type
            value = _value(param)
            try:
                query = parser.parse(rtype, [(param.code, value)], strict=True)
            except Exception as exc:  # any refusal is a false claim of the statement
                refused.append(f"{rtype}?{param.code}={value}: {type(exc).__name__}: {exc}")
                continue
            tried += 1
            assert not query.ignored, (rtype, param.code, query.ignored)
            assert len(query.filters) == 1, (rtype, param.code)
    assert not refused, "\n".join(refused)
    assert tried > 2000  # every type's parameters were tried


def test_every_advertised_include_and_revinclude_parses() -> None:
    parser = _parser()
    refused, includes, revincludes = [], 0, 0
    for resource in _resources():
        rtype = resource["type"]
        assert "*" not in resource.get("searchInclude", [])
        for value in resource.get("searchInclude", []):
            assert value.split(":", 1)[0] == rtype, value
            try:
                query = parser.parse(rtype, [("_include", value)], strict=True)
                assert len(query.includes) == 1
                includes += 1
            except Exception as exc:
                refused.append(f"{rtype}?_include={value}: {type(exc).__name__}: {exc}")
        for value in resource.get("searchRevInclude", []):
            try:
                query = parser.parse(rtype, [("_revinclude", value)], strict=True)
                assert len(query.revincludes) == 1
                revincludes += 1
            except Exception as exc:
                refused.append(f"{rtype}?_revinclude={value}: {type(exc).__name__}: {exc}")
    assert not refused, "\n".join(refused)
    assert includes > 500 and revincludes > 500


def test_the_bare_star_include_is_not_advertised_because_it_is_refused() -> None:
    from rhip.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        _parser().parse("Patient", [("_include", "*")])
    patient = next(r for r in _resources() if r["type"] == "Patient")
    assert patient["searchInclude"][0] == "Patient:*"
    assert "Patient:organization" in patient["searchInclude"]
    assert "Observation:subject" in patient["searchRevInclude"]


def test_rest_level_search_parameters_are_accepted() -> None:
    values = {
        "_count": "10",
        "_sort": "-_lastUpdated",
        "_total": "accurate",
        "_summary": "count",
        "_elements": "id,name",
        "_include": "Patient:organization",
        "_revinclude": "Observation:subject",
    }
    rest = _statement()["rest"][0]
    assert {p["name"] for p in rest["searchParam"]} == set(values)
    _parser().parse("Patient", list(values.items()), strict=True)


@pytest.mark.parametrize(("allowed", "expected"), [(False, "single"), (True, "multiple")])
def test_conditional_delete_follows_the_setting(allowed: bool, expected: str) -> None:
    resources = _statement(allow_multiple_delete=allowed)["rest"][0]["resource"]
    assert {r["conditionalDelete"] for r in resources} == {expected}


def test_conditional_read_compartment_and_validity() -> None:
    statement = _statement()
    rest = statement["rest"][0]
    assert {r["conditionalRead"] for r in rest["resource"]} == {"full-support"}
    assert rest["compartment"] == ["http://hl7.org/fhir/CompartmentDefinition/patient"]
    assert validator().validate(statement) == []
