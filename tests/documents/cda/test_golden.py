"""Golden files: each input document in golden/ and the header, visit and resources extracted from it.

``golden/<name>.xml`` is the input (hand-written samples for C0001, C0006 and HSDA00.01, documents of
the synthetic region for the other types); ``golden/<name>.json`` the expected result. Run with
``RHIP_UPDATE_GOLDEN=1`` to rewrite the expected files after an intended change, then review the diff.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import orjson
import pytest

from rhip.documents.cda import ExtractContext, extract, read_document, visit_encounter

GOLDEN = Path(__file__).parent / "golden"
INPUTS = sorted(GOLDEN.glob("*.xml"))
REQUIRED = {
    "C0001", "C0002", "C0006", "C0007", "C0032", "C0053",
    "HSDA00.01", "HSDB03.01", "HSDB03.02", "HSDB04.01", "HSDB04.02", "HSDC00.05",
}  # fmt: skip
CONTEXT = ExtractContext(
    patient_ref="urn:uuid:11111111-1111-4111-8111-111111111111",
    encounter_ref="urn:uuid:22222222-2222-4222-8222-222222222222",
    organization_ref="urn:uuid:33333333-3333-4333-8333-333333333333",
    practitioner_ref="urn:uuid:44444444-4444-4444-8444-444444444444",
    source="urn:rhip:source:cda:golden",
)


def result(path: Path) -> dict[str, Any]:
    """What reading and extracting the document gives, as JSON-ready data."""
    doc = read_document(path.read_bytes())
    resources = extract(doc, CONTEXT)
    return {
        "header": dataclasses.asdict(doc.header),
        "encounter": visit_encounter(doc, CONTEXT, resources),
        "resources": resources,
    }


def test_every_required_document_type_has_a_golden_file() -> None:
    assert {p.name.split("-", 1)[0] for p in INPUTS} >= REQUIRED


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_golden(path: Path) -> None:
    expected_file = path.with_suffix(".json")
    got = orjson.loads(orjson.dumps(result(path)))
    if os.environ.get("RHIP_UPDATE_GOLDEN") == "1":
        expected_file.write_bytes(
            orjson.dumps(got, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
    assert expected_file.exists(), f"no golden file {expected_file.name}: run with RHIP_UPDATE_GOLDEN=1"
    assert got == orjson.loads(expected_file.read_bytes())


@pytest.mark.parametrize("path", INPUTS, ids=[p.stem for p in INPUTS])
def test_every_resource_is_named_by_its_entry(path: Path) -> None:
    doc = read_document(path.read_bytes())
    resources = extract(doc, CONTEXT)
    assert resources, "a golden document gives resources"
    seen = set()
    for resource in resources:
        entry = [i for i in resource["identifier"] if i["system"].startswith("urn:rhip:cda-entry:")]
        assert len(entry) == 1, resource
        assert entry[0]["system"] == f"urn:rhip:cda-entry:{doc.header.document_key}"
        key = (resource["resourceType"], entry[0]["value"])
        assert key not in seen, f"two {key[0]} resources from {key[1]}"
        seen.add(key)
        assert "id" not in resource
        assert resource["meta"] == {"source": CONTEXT.source}
        subject = resource.get("subject") or resource.get("patient")
        assert subject == {"reference": CONTEXT.patient_ref}
        assert (resource.get("encounter") or resource.get("context")) == {"reference": CONTEXT.encounter_ref}
