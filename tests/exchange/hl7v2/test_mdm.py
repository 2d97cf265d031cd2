"""MDM^T02 mapping: golden files, the document content, the FHIR service, the public samples."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.mapping import MappingError, map_message

from .results_support import (
    GOLDEN,
    RESULT_MAPPERS,
    cases,
    check_golden,
    context,
    corpus,
    load,
    mapped,
    platform,
    post,
    search,
    storable,
    store_twice,
)

__all__ = ["platform"]  # the fixture, imported for the tests below


@pytest.mark.parametrize("path", cases("mdm-"), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    check_golden(path)


def test_every_golden_bundle_is_stored_twice_without_duplicates(platform: Platform) -> None:
    stored = store_twice(platform, storable("mdm-"))
    assert stored["DocumentReference"] == 3


def test_a_discharge_summary_in_gb18030_keeps_its_text(platform: Platform) -> None:
    post(platform, mapped(GOLDEN / "mdm-t02-discharge-gb18030.hl7").bundle)
    [doc] = search(platform, "DocumentReference", ("type", "urn:oid:2.16.156.10011.2.4|C0053"))
    [content] = doc["content"]
    data = base64.b64decode(content["attachment"]["data"])
    assert data.decode("utf-8").splitlines() == [
        "出院小结",
        "入院诊断：腰痛（M54.5）",
        "诊疗经过：入院后予以卧床休息、理疗，症状缓解。",
        "出院医嘱：避免久坐，一周后门诊复查。",
    ]
    assert content["attachment"]["size"] == len(data)
    assert content["attachment"]["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert doc["masterIdentifier"] == {
        "system": "urn:rhip:document:510704H01",
        "value": "CY2025091300000040007",
    }
    assert doc["docStatus"] == "final"
    assert doc["securityLabel"][0]["coding"][0]["code"] == "R"
    assert doc["date"] == "2025-09-13T15:55:00+08:00"
    assert doc["author"][0]["display"] == "薛超"
    assert doc["context"]["related"][0]["identifier"]["value"] == "SQ2025090800011"
    [encounter] = search(platform, "Encounter")
    assert doc["context"]["encounter"] == [{"reference": f"Encounter/{encounter['id']}"}]
    [patient] = search(platform, "Patient")
    assert doc["subject"] == {"reference": f"Patient/{patient['id']}"}


def test_an_embedded_pdf_is_the_attachment() -> None:
    [doc] = [
        e["resource"]
        for e in mapped(GOLDEN / "mdm-t02-pdf.hl7").bundle["entry"]
        if e["resource"]["resourceType"] == "DocumentReference"
    ]
    [content] = doc["content"]
    assert content["attachment"]["contentType"] == "application/pdf"
    assert base64.b64decode(content["attachment"]["data"]).startswith(b"%PDF-1.4")
    assert doc["type"]["coding"][0] == {
        "system": "http://terminology.hl7.org/CodeSystem/v2-0270",
        "code": "DI",
        "display": "Diagnostic imaging",
    }


@pytest.mark.parametrize("path", corpus("MDM"), ids=lambda p: p.stem)
def test_every_public_sample_maps_or_is_refused(path: Path) -> None:
    message = load(path)
    try:
        result = map_message(message, context(message), RESULT_MAPPERS)
    except MappingError as error:
        assert error.hl7_code in ("100", "101", "102", "103", "200", "201", "207")
        return
    assert result.bundle["entry"]
