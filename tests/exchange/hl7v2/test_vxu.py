"""VXU^V04 mapping: golden files, the synthetic ground truth, the FHIR service, the public samples."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.mapping import MappingError, map_message
from rhip.synth.hl7v2 import vxu_v04

from .results_support import (
    GOLDEN,
    RESULT_MAPPERS,
    cases,
    check_golden,
    context,
    corpus,
    counts,
    load,
    mapped,
    platform,
    post,
    search,
    storable,
    store_twice,
)

__all__ = ["platform"]  # the fixture, imported for the tests below
TRUTH: dict[str, Any] = json.loads((GOLDEN / "vxu-synth-truth.json").read_text())


@pytest.mark.parametrize("path", cases("vxu-"), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    check_golden(path)


@pytest.mark.parametrize(("name", "doses"), [("vxu-synth", slice(0, 3)), ("vxu-synth-gbk", slice(3, 5))])
def test_synthetic_doses_come_back_as_the_synthetic_fhir(name: str, doses: slice) -> None:
    """The golden message is what rhip.synth writes from the FHIR truth, and maps back onto the same values."""
    golden = load(GOLDEN / f"{name}.hl7")
    truth = TRUTH["doses"][doses]
    text = vxu_v04(
        TRUTH["patient"],
        TRUTH["organization"],
        control_id=golden.control_id,
        sent=truth[-1]["occurrenceDateTime"],
        immunizations=truth,
        sending_app=golden.sending_application,
        charset_field=golden.charset or None,
    )
    assert text.rstrip("\r") == golden.text.rstrip("\r")
    result = map_message(golden, context(golden), RESULT_MAPPERS)
    entries = {e["fullUrl"]: e["resource"] for e in result.bundle["entry"]}
    doses_got = [r for r in entries.values() if r["resourceType"] == "Immunization"]
    assert len(doses_got) == len(truth)
    for mine, theirs in zip(doses_got, truth, strict=True):
        for key in ("status", "vaccineCode", "occurrenceDateTime", "primarySource", "lotNumber"):
            assert mine[key] == theirs[key], key
        assert (
            mine["protocolApplied"][0]["doseNumberPositiveInt"]
            == theirs["protocolApplied"][0]["doseNumberPositiveInt"]
        )
        assert mine["identifier"][0]["value"] == theirs["id"]  # the writer sends the id as filler number
        [performer] = mine["performer"]
        organization = entries[performer["actor"]["reference"]]
        assert organization["identifier"][0] in TRUTH["organization"]["identifier"]
        # v2 does not carry these: the recording time (RXA-22 not sent) and the schedule's name
        assert "recorded" not in mine
        assert "series" not in mine["protocolApplied"][0]
    patient = entries[doses_got[0]["patient"]["reference"]]
    assert TRUTH["patient"]["identifier"][0] in patient["identifier"]


def test_every_golden_bundle_is_stored_twice_without_duplicates(platform: Platform) -> None:
    stored = store_twice(platform, storable("vxu-"))
    assert stored["Immunization"] == 15
    assert stored["Patient"] == 4


def test_a_deletion_marks_the_dose_entered_in_error(platform: Platform) -> None:
    post(platform, mapped(GOLDEN / "vxu-synth.hl7").bundle)
    before = counts(platform)
    filler = "urn:rhip:order:510704001S01|f8301547-da9c-4d8e-8732-2e7a7372de4e"
    [dose] = search(platform, "Immunization", ("identifier", filler))
    assert dose["status"] == "completed"
    post(platform, mapped(GOLDEN / "vxu-v04-delete.hl7").bundle)
    [deleted] = search(platform, "Immunization", ("identifier", filler))
    assert deleted["id"] == dose["id"]
    assert deleted["status"] == "entered-in-error"
    assert counts(platform) == before


def test_refusal_history_and_details() -> None:
    by_file = {}
    for name in ("vxu-v04-refusal", "vxu-v04-historical", "vxu-v04-administered"):
        [dose] = [
            e["resource"]
            for e in mapped(GOLDEN / f"{name}.hl7").bundle["entry"]
            if e["resource"]["resourceType"] == "Immunization"
        ]
        by_file[name] = dose
    refused = by_file["vxu-v04-refusal"]
    assert refused["status"] == "not-done"
    assert refused["statusReason"]["text"] == "家长拒绝"
    historical = by_file["vxu-v04-historical"]
    assert historical["primarySource"] is False
    assert historical["reportOrigin"]["coding"][0]["code"] == "record"
    assert "performer" not in historical  # the sender did not give the dose
    assert historical["identifier"][0]["system"] == "urn:rhip:v2-entry:510704001S01"
    given = by_file["vxu-v04-administered"]
    assert given["doseQuantity"] == {
        "value": 0.5,
        "unit": "mL",
        "system": "http://unitsofmeasure.org",
        "code": "mL",
    }
    assert given["route"]["coding"][0]["code"] == "IM"
    assert given["site"]["coding"][0]["code"] == "LD"
    assert given["protocolApplied"] == [{"doseNumberPositiveInt": 3}]
    assert given["programEligibility"][0]["coding"][0]["code"] == "NIP"
    assert given["performer"][1]["function"]["coding"][0]["code"] == "AP"
    assert given["expirationDate"] == "2027-01-31"
    assert given["recorded"] == "2025-06-10T09:50:00+08:00"


@pytest.mark.parametrize("path", corpus("VXU"), ids=lambda p: p.stem)
def test_every_public_sample_maps_or_is_refused(path: Path) -> None:
    message = load(path)
    try:
        result = map_message(message, context(message), RESULT_MAPPERS)
    except MappingError as error:
        assert error.hl7_code in ("100", "101", "102", "103", "200", "201", "207")
        return
    assert result.bundle["entry"]
