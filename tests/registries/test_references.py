"""References to an institution by its code get the literal reference of its registered Organization."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from rhip.bootstrap.container import Platform
from rhip.fhir.rest.messages import FhirRequest
from rhip.registries.identifiers import INSTITUTION_CODE
from rhip.registries.references import resolve_institutions


class Known:
    """A resolver that knows a fixed directory and counts its questions."""

    def __init__(self, **ids: str) -> None:
        self.ids, self.asked = ids, 0

    def organization_id(self, code: str) -> str | None:
        self.asked += 1
        return self.ids.get(code)


def by_code(code: str, **more: Any) -> dict[str, Any]:
    return {"identifier": {"system": INSTITUTION_CODE, "value": code}, **more}


def test_logical_references_to_registered_institutions_become_literal() -> None:
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "serviceProvider": by_code("H01", display="人民医院"),
        "participant": [{"individual": {"reference": "Practitioner/p1"}}],
        "contained": [
            {"resourceType": "Organization", "identifier": [{"system": INSTITUTION_CODE, "value": "H01"}]}
        ],
    }
    before = copy.deepcopy(encounter)
    out = resolve_institutions(encounter, Known(H01="org-1"))
    assert encounter == before  # the caller's object is not changed
    assert out is not None
    assert out["serviceProvider"] == {**by_code("H01", display="人民医院"), "reference": "Organization/org-1"}
    assert out["participant"] is encounter["participant"] and out["contained"] == encounter["contained"]


def test_what_is_not_such_a_reference_is_left_alone() -> None:
    resolver = Known(H01="org-1")
    untouched = [
        {"resourceType": "Encounter", "serviceProvider": by_code("H99")},  # not registered: stays logical
        {"resourceType": "Encounter", "serviceProvider": by_code("H01", reference="Organization/x")},
        {"resourceType": "Encounter", "serviceProvider": by_code("H01", type="Location")},
        {
            "resourceType": "Encounter",
            "serviceProvider": {"identifier": {"system": "urn:other", "value": "H01"}},
        },
        {
            "resourceType": "Contract",
            "term": [by_code("H01", issued="2026-01-01")],
        },  # holds an Identifier only
        {"resourceType": "Composition", "identifier": {"system": INSTITUTION_CODE, "value": "H01"}},
    ]
    for resource in untouched:
        assert resolve_institutions(resource, resolver) is None, resource


def test_through_the_store_the_reference_points_at_the_registered_organization(platform: Platform) -> None:
    def call(method: str, path: str, body: Any = None, query: list[tuple[str, str]] | None = None) -> Any:
        raw = orjson.dumps(body) if body is not None else b""
        resp = platform.fhir.handle(
            FhirRequest(
                method, path, query or [], {"content-type": "application/fhir+json"} if raw else {}, raw
            )
        )
        assert resp.status < 300, resp.body
        return orjson.loads(resp.body or b"{}")

    hospital = call(
        "POST",
        "Organization",
        {
            "resourceType": "Organization",
            "name": "三台县人民医院",
            "identifier": [{"system": INSTITUTION_CODE, "value": "510722H01"}],
        },
    )
    encounter = call(
        "POST",
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "serviceProvider": by_code("510722H01"),
        },
    )
    assert encounter["serviceProvider"]["reference"] == f"Organization/{hospital['id']}"
    found = call("GET", "Encounter", query=[("service-provider", f"Organization/{hospital['id']}")])
    assert [e["resource"]["id"] for e in found["entry"]] == [encounter["id"]]
    elsewhere = call(
        "POST",
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "serviceProvider": by_code("NOT-YET"),
        },
    )
    assert "reference" not in elsewhere["serviceProvider"]  # kept as sent, not refused
    registered = call(
        "POST",
        "Organization",
        {
            "resourceType": "Organization",
            "name": "新建卫生院",
            "identifier": [{"system": INSTITUTION_CODE, "value": "NOT-YET"}],
        },
    )
    later = call(
        "POST",
        "Encounter",
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "serviceProvider": by_code("NOT-YET"),
        },
    )
    assert (
        later["serviceProvider"]["reference"] == f"Organization/{registered['id']}"
    )  # registering is seen at once
