"""The code tables as CodeSystem and ValueSet resources in the store: created once, updated when a table
changes, left alone otherwise; readable and searchable by any FHIR client."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.security.context import acting_as
from rhip.security.principal import platform_principal
from rhip.terminology.codesystems import builtin_code_systems
from rhip.terminology.publish import publish

SEX = "urn:oid:2.16.156.10011.2.3.3.4"


class AsOperator:
    """The platform's FHIR service, called as the command line's operator."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def handle(self, req: FhirRequest) -> FhirResponse:
        with acting_as(platform_principal("cli:test")):
            return self.platform.fhir.handle(req)

    def get(self, path: str, query: str = "") -> dict[str, Any]:
        resp = self.handle(FhirRequest("GET", path, parse_qsl(query), {}, b"", "http://localhost/fhir"))
        assert resp.status == 200 and resp.body is not None, resp.body
        return dict(orjson.loads(resp.body))


@pytest.fixture
def operator(platform: Platform) -> Iterator[AsOperator]:
    yield AsOperator(platform)


def test_load_creates_then_leaves_alone_then_updates(operator: AsOperator) -> None:
    tables = list(builtin_code_systems())
    first = publish(operator, tables)
    assert {p.action for p in first} == {"created"} and len(first) == 2 * len(tables)
    assert {p.action for p in publish(operator, tables)} == {"unchanged"}  # no version added
    sex = next(t for t in tables if t.url == SEX)
    checked = replace(sex, version="2003-checked")
    again = publish(operator, [checked])
    assert [p.action for p in again] == ["updated", "updated"]
    found = operator.get("CodeSystem", f"url={SEX}")
    (entry,) = found["entry"]
    resource = entry["resource"]
    assert resource["version"] == "2003-checked" and resource["meta"]["versionId"] == "2"
    assert [c["code"] for c in resource["concept"]] == ["0", "1", "2", "9"]
    history = operator.get(f"CodeSystem/{resource['id']}/_history")
    assert history["total"] == 2


def test_value_sets_include_their_code_system(operator: AsOperator) -> None:
    publish(operator, builtin_code_systems())
    found = operator.get("ValueSet", "url=urn:rhip:vs:gb-3304")
    (entry,) = found["entry"]
    assert entry["resource"]["compose"]["include"] == [
        {"system": "urn:oid:2.16.156.10011.2.3.3.3", "version": "1991"}
    ]
    listed = operator.get("CodeSystem", "_summary=count")
    assert listed["total"] == len(builtin_code_systems())
