"""The extracted resources are valid FHIR the store accepts, in one transaction, and re-submission adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.documents.cda import (
    CdaDocument,
    ExtractContext,
    encounter_full_url,
    read_document,
    transaction_entries,
)
from rhip.fhir.rest.messages import FhirRequest

from .truth import EX_SMALL, documents

GOLDEN = Path(__file__).parent / "golden"
ORG = "urn:oid:2.16.156.10011.1.5"


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """A migrated database with the FHIR service, without the resident index (not under test here)."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings, empi=False)
    try:
        yield plat
    finally:
        plat.close()


def bundle_of(doc: CdaDocument) -> dict[str, Any]:
    """A transaction as the registry builds it: institution, patient, visit and the extracted resources."""
    header = doc.header
    code = header.custodian.code
    org_url, patient_url = (
        "urn:uuid:00000000-0000-4000-8000-000000000001",
        "urn:uuid:00000000-0000-4000-8000-000000000002",
    )
    _system, value = header.patient.identifiers[0]
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": f"urn:rhip:mrn:{code}", "value": value},
            *({"system": s, "value": v} for s, v in header.patient.identifiers),
        ],
        "name": [{"text": header.patient.name}],
        "managingOrganization": {"reference": org_url},
    }
    ctx = ExtractContext(
        patient_ref=patient_url,
        encounter_ref=encounter_full_url(doc),
        organization_ref=org_url,
        source=f"urn:rhip:source:cda:{code}",
    )
    entries = [
        {
            "fullUrl": org_url,
            "resource": {
                "resourceType": "Organization",
                "identifier": [{"system": ORG, "value": code}],
                "name": header.custodian.name,
            },
            "request": {"method": "POST", "url": "Organization", "ifNoneExist": f"identifier={ORG}|{code}"},
        },
        {
            "fullUrl": patient_url,
            "resource": patient,
            "request": {"method": "PUT", "url": f"Patient?identifier=urn:rhip:mrn:{code}|{value}"},
        },
        *transaction_entries(doc, ctx),
    ]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def post(platform: Platform, bundle: dict[str, Any]) -> dict[str, Any]:
    """Process a transaction; its response (fails the test on an error)."""
    response = platform.fhir.handle(
        FhirRequest("POST", "", body=orjson.dumps(bundle), headers={"content-type": "application/fhir+json"})
    )
    assert response.status == 200, response.body
    assert response.body is not None
    result: dict[str, Any] = orjson.loads(response.body)
    return result


def statuses(response: dict[str, Any]) -> list[str]:
    """The status of each entry of a transaction-response."""
    return [e["response"]["status"] for e in response["entry"]]


def sample_documents() -> list[bytes]:
    """The golden inputs and, when the synthetic region is there, one document of each of its types."""
    out = [p.read_bytes() for p in sorted(GOLDEN.glob("*.xml"))]
    if (EX_SMALL / "cda").is_dir():
        seen: set[str] = set()
        for _inst, name, raw in documents():
            code = name.split("-", 1)[0]
            if (
                code not in seen
                and raw not in out
                and b'<id root="2.16.156.10011.1.' in raw.split(b"<patientRole", 1)[1][:200]
            ):
                seen.add(code)
                out.append(raw)
    return out


def test_extracted_resources_are_stored_once(platform: Platform) -> None:
    for raw in sample_documents():
        doc = read_document(raw)
        bundle = bundle_of(doc)
        extracted = [i for i, e in enumerate(bundle["entry"]) if i > 1 and e["request"]["method"] == "POST"]
        assert extracted, doc.header.code
        first = statuses(post(platform, bundle))
        assert all(first[i].startswith("201") for i in extracted), (doc.header.code, first)
        # The second time every extracted resource is found again (200), none is created (201).
        second = statuses(post(platform, bundle))
        assert all(second[i].startswith("200") for i in extracted), (doc.header.code, second)
