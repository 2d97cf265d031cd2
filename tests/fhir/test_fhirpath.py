"""The FHIRPath subset used for search indexing, checked against fhirpathpy (an independent implementation)."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhirpathpy import evaluate
from fhirpathpy.models import models

from rhip.fhir.definitions import structure
from rhip.fhir.fhirpath import FhirPathCompiler, FhirPathError, reference_type
from rhip.fhir.search.params import registry

EXAMPLES = [
    json.loads(p.read_text("utf-8"))
    for p in sorted((Path(__file__).resolve().parents[1] / "data" / "r4-examples").glob("*.json"))
]
COMPILER = FhirPathCompiler(structure())


def _plain(value: Any) -> Any:
    """fhirpathpy returns its own wrappers for some values; compare on JSON-like data."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "__str__") and type(value).__name__ in ("FP_DateTime", "FP_Time", "FP_Quantity"):
        return str(value)
    return value


def _distinct(values: list[Any]) -> list[str]:
    return sorted({json.dumps(v, sort_keys=True, ensure_ascii=False) for v in values})


def _for_fhirpathpy(expression: str, rtype: str) -> str:
    """Search parameters use ``as`` as a filter over collections (as HAPI reads them); FHIRPath's ``ofType``
    says that, and fhirpathpy rightly refuses ``as`` on more than one item."""
    expression = re.sub(r"\(([A-Za-z][\w.]*) as (\w+)\)", r"\1.ofType(\2)", expression)
    # Resource-level parameters start at Resource, which every resource is; fhirpathpy wants the type itself.
    expression = re.sub(r"\b(?:Resource|DomainResource)\.", f"{rtype}.", expression)
    return re.sub(r"\.as\((\w+)\)", r".ofType(\1)", expression)


def _cases() -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for resource in EXAMPLES:
        rtype = resource.get("resourceType", "")
        for param in registry().for_type(rtype).values():
            expr = param.expression
            # fhirpathpy has no resolve(); extension('url') and %resource are checked by the unit tests below.
            if not expr or param.column or "resolve()" in expr or "extension(" in expr or "%" in expr:
                continue
            out.append((rtype, expr, resource))
    return out


@pytest.mark.parametrize(
    ("rtype", "expression", "resource"), _cases(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_search_expressions_agree_with_fhirpathpy(
    rtype: str, expression: str, resource: dict[str, Any]
) -> None:
    ours = [_plain(v) for v, _t in COMPILER.compile(expression)(resource)]
    theirs = [_plain(v) for v in evaluate(resource, _for_fhirpathpy(expression, rtype), [], models["r4"])]
    # `|` is a union (duplicates removed); indexing keeps each distinct value once, so compare distinct values.
    assert _distinct(ours) == _distinct(theirs)


def test_choice_types_keep_their_concrete_type() -> None:
    obs = {
        "resourceType": "Observation",
        "effectivePeriod": {"start": "2024-01-01"},
        "valueQuantity": {"value": 1},
    }
    assert COMPILER.compile("Observation.effective")(obs) == [({"start": "2024-01-01"}, "Period")]
    assert COMPILER.compile("(Observation.value as Quantity)")(obs) == [({"value": 1}, "Quantity")]
    assert COMPILER.compile("(Observation.value as string)")(obs) == []


def test_resolve_is_type_uses_the_reference_and_contained_resources() -> None:
    res = {
        "resourceType": "Observation",
        "contained": [{"resourceType": "Patient", "id": "p"}],
        "subject": {"reference": "#p"},
        "performer": [
            {"reference": "Practitioner/1"},
            {"reference": "http://other/fhir/Patient/2/_history/3"},
        ],
    }
    assert COMPILER.compile("Observation.subject.where(resolve() is Patient)")(res) == [
        ({"reference": "#p"}, "Reference")
    ]
    performers = COMPILER.compile("Observation.performer.where(resolve() is Patient)")(res)
    assert [v["reference"] for v, _ in performers] == ["http://other/fhir/Patient/2/_history/3"]
    assert reference_type({"type": "Device"}, None) == "Device"
    assert reference_type({"reference": "urn:uuid:1"}, None) is None


def test_extension_by_url() -> None:
    res = {
        "resourceType": "Patient",
        "extension": [{"url": "a", "valueString": "x"}, {"url": "b", "valueString": "y"}],
    }
    assert [v["url"] for v, _ in COMPILER.compile("Patient.extension('b')")(res)] == ["b"]


@pytest.mark.parametrize(
    "bad", ["Patient.name.", "Patient.name.trace()", "Patient..name", "Patient.name[x]", "%context"]
)
def test_unsupported_or_malformed_expressions_are_refused(bad: str) -> None:
    with pytest.raises(FhirPathError):
        COMPILER.compile(bad)
