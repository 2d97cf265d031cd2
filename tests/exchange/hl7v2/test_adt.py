"""ADT mapping: golden files (synthetic and public messages), and the bundles against the real FHIR service.

Each ``golden/adt-*.hl7`` is mapped and compared exactly with ``<name>.expected.json`` next to it (the
bundle and what the pipeline needs, or the MappingError). ``RHIP_UPDATE_GOLDEN=1`` rewrites the expected
files; review the diff before committing it.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.mapping import Mapped, MappingError, map_message
from rhip.exchange.hl7v2.message import parse

from .golden_support import (
    CORPUS,
    GOLDEN,
    cases,
    check_golden,
    context,
    load,
    map_file,
    platform,
    post,
    search,
    statuses,
)

__all__ = ["GOLDEN", "cases", "check_golden", "counts", "mapped", "platform", "post", "search", "statuses"]


def mapped(path: Path) -> Mapped:
    """The mapping of a message file."""
    return map_file(path)


@pytest.mark.parametrize("path", cases("adt-"), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    check_golden(path)


@pytest.mark.parametrize(
    "path", [p for p in cases("adt-") + cases("siu-") if "error" not in p.stem], ids=lambda p: p.stem
)
def test_bundle_shape(path: Path) -> None:
    """Every entry has a location, a unique urn:uuid fullUrl and meta.source; every urn:uuid reference resolves."""
    result = mapped(path)
    entries = result.bundle["entry"]
    assert result.bundle["type"] == "transaction"
    assert len(result.locations) == len(entries)
    urls = [e["fullUrl"] for e in entries]
    assert len(set(urls)) == len(urls)
    assert all(u.startswith("urn:uuid:") for u in urls)
    assert set(result.focus) <= set(urls)
    source = f"urn:rhip:source:v2:{load(path).sending_facility}".replace(" ", "%20")
    for entry in entries:
        assert entry["resource"]["meta"] == {"source": source}
    text = orjson.dumps(result.bundle).decode()
    for ref in re.findall(r'"reference":"(urn:uuid:[^"]+)"', text):
        assert ref in urls
    assert result.patient_keys


def test_an_unsupported_message_type_is_200() -> None:
    message = parse(message_text("MSH|^~\\&|HIS|H01|RHIP|RHIP|20250101||BAR^P01|1|P|2.5.1").decode())
    with pytest.raises(MappingError) as caught:
        map_message(message, context(message))
    assert (caught.value.hl7_code, caught.value.code, caught.value.field) == ("200", "RHIP-V2-0014", 9)


# -- against the FHIR service ---------------------------------------------------------------------


def counts(platform: Platform) -> dict[str, int]:
    """How many resources of each type the mapping writes are stored."""
    types = ("Organization", "Patient", "Encounter", "Condition", "Observation", "AllergyIntolerance")
    return {t: len(search(platform, t)) for t in (*types, "RelatedPerson", "Appointment")}


def message_text(*segments: str) -> bytes:
    """A message from its segments."""
    return ("\r".join(segments) + "\r").encode()


def test_every_golden_bundle_is_accepted(platform: Platform) -> None:
    for path in cases("adt-"):
        if "error" not in path.stem:
            post(platform, mapped(path).bundle)
    stored = counts(platform)
    assert stored["Patient"] >= 10
    assert stored["Condition"] >= 3
    assert stored["AllergyIntolerance"] >= 2


def test_processing_twice_creates_nothing_twice(platform: Platform) -> None:
    bundle = mapped(GOLDEN / "adt-a01-records.hl7").bundle
    first = post(platform, bundle)
    before = counts(platform)
    second = post(platform, bundle)
    assert counts(platform) == before
    assert "201" in statuses(first)
    assert "201" not in statuses(second)
    assert before == {
        "Organization": 1,
        "Patient": 1,
        "Encounter": 1,
        "Condition": 2,
        "Observation": 3,
        "AllergyIntolerance": 1,
        "RelatedPerson": 1,
        "Appointment": 0,
    }


def test_a08_updates_the_same_patient(platform: Platform, tmp_path: Path) -> None:
    post(platform, mapped(GOLDEN / "adt-a01-synth.hl7").bundle)
    [before] = search(platform, "Patient")
    a01 = (GOLDEN / "adt-a01-synth.hl7").read_bytes().decode()
    a08 = a01.replace("ADT^A01^ADT_A01", "ADT^A08^ADT_A01").replace("18522529119", "13911112222")
    (tmp_path / "a08.hl7").write_bytes(a08.encode())
    post(platform, mapped(tmp_path / "a08.hl7").bundle)
    [after] = search(platform, "Patient")
    assert after["id"] == before["id"]
    assert after["meta"]["versionId"] == "2"
    assert after["telecom"] == [{"system": "phone", "value": "13911112222", "use": "mobile"}]
    assert after["meta"]["source"] == "urn:rhip:source:v2:510725H01"
    assert len(search(platform, "Encounter")) == 1


def test_admission_transfer_discharge_and_cancellations_follow_one_encounter(platform: Platform) -> None:
    post(platform, mapped(GOLDEN / "adt-a01-synth.hl7").bundle)
    [admitted] = search(platform, "Encounter")
    assert admitted["status"] == "in-progress"
    post(platform, mapped(GOLDEN / "adt-a02-transfer.hl7").bundle)
    [moved] = search(platform, "Encounter")
    assert moved["id"] == admitted["id"]
    assert [(x["location"]["display"], x["status"]) for x in moved["location"]] == [
        ("心血管内科", "active"),
        ("神经内科", "completed"),
    ]
    post(platform, mapped(GOLDEN / "adt-a03-synth.hl7").bundle)
    [discharged] = search(platform, "Encounter")
    assert discharged["status"] == "finished"
    assert discharged["period"]["end"] == "2025-02-22T18:32:00+08:00"
    [condition] = search(platform, "Condition")  # admitting and final diagnosis: one Condition
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    post(platform, mapped(GOLDEN / "adt-a13-cancel-discharge.hl7").bundle)
    [reopened] = search(platform, "Encounter")
    assert reopened["status"] == "in-progress"
    assert "end" not in reopened["period"]
    post(platform, mapped(GOLDEN / "adt-a11-cancel-admit.hl7").bundle)
    [cancelled] = search(platform, "Encounter")
    assert (cancelled["id"], cancelled["status"]) == (admitted["id"], "cancelled")


def test_a40_marks_the_obsolete_patient_replaced(platform: Platform, tmp_path: Path) -> None:
    post(platform, mapped(GOLDEN / "adt-a01-synth.hl7").bundle)
    a04 = (GOLDEN / "adt-a04-synth.hl7").read_bytes().decode()
    obsolete_mrn = a04.split("PID|1||")[1].split("^")[0]
    merge = (GOLDEN / "adt-a40-merge.hl7").read_bytes().decode().replace("179376639999", obsolete_mrn)
    (tmp_path / "a40.hl7").write_bytes(merge.encode())
    post(platform, mapped(GOLDEN / "adt-a04-synth.hl7").bundle)
    result = mapped(tmp_path / "a40.hl7")
    post(platform, result.bundle)
    [(surviving_criteria, obsolete_criteria)] = result.merges
    [surviving] = search(platform, "Patient", *parse_qsl(surviving_criteria))
    [obsolete] = search(platform, "Patient", *parse_qsl(obsolete_criteria))
    assert surviving["active"] is True
    assert obsolete["active"] is False
    assert obsolete["link"] == [{"other": {"reference": f"Patient/{surviving['id']}"}, "type": "replaced-by"}]
    assert obsolete["meta"]["versionId"] == "2"  # its earlier version stays in history
    assert len(search(platform, "Encounter", ("subject", f"Patient/{obsolete['id']}"))) == 1


def test_required_fields_name_the_segment_and_field() -> None:
    with pytest.raises(MappingError) as caught:
        mapped(GOLDEN / "adt-a01-error-no-pid3.hl7")
    assert (caught.value.segment, caught.value.field, caught.value.hl7_code) == ("PID", 3, "101")
    assert caught.value.code == "RHIP-V2-0011"
    with pytest.raises(MappingError) as caught:
        mapped(GOLDEN / "adt-a45-error-unsupported.hl7")
    assert (caught.value.hl7_code, caught.value.code) == ("201", "RHIP-V2-0015")


def test_an_empty_sending_facility_is_refused() -> None:
    message = parse(
        message_text("MSH|^~\\&|HIS||RHIP|RHIP|20250101||ADT^A04|1|P|2.5.1", "PID|1||1^^^X^MR").decode()
    )
    with pytest.raises(MappingError) as caught:
        map_message(message, context(message))
    assert (caught.value.segment, caught.value.field, caught.value.hl7_code) == ("MSH", 4, "101")


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the public sample corpus (../shared/corpora) is not here")
def test_every_public_adt_and_siu_sample_maps_and_is_accepted_or_is_refused_clearly(
    platform: Platform,
) -> None:
    accepted = refused = 0
    for path in sorted(CORPUS.glob("*.hl7")):
        message = load(path)
        if message.message_code not in ("ADT", "SIU"):
            continue
        try:
            result = map_message(message, context(message))
        except MappingError as error:
            assert error.hl7_code in ("100", "101", "102", "103", "200", "201", "207"), path.name
            refused += 1
            continue
        post(platform, result.bundle)
        accepted += 1
    assert accepted >= 25
    assert refused <= accepted
