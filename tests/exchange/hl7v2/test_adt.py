"""ADT mapping: golden files (synthetic and public messages), and the bundles against the real FHIR service.

Each ``golden/adt-*.hl7`` is mapped and compared exactly with ``<name>.expected.json`` next to it (the
bundle and what the pipeline needs, or the MappingError). ``RHIP_UPDATE_GOLDEN=1`` rewrites the expected
files; review the diff before committing it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.exchange.hl7v2.charset import decode
from rhip.exchange.hl7v2.mapping import Mapped, MappingContext, MappingError, map_message
from rhip.exchange.hl7v2.message import Message, parse
from rhip.fhir.rest.messages import FhirRequest

GOLDEN = Path(__file__).parent / "golden"
CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpora" / "hl7v2-samples"
ZONE = ZoneInfo("Asia/Shanghai")
RECEIVED = "2025-03-01T00:00:00.000Z"
UPDATE = os.environ.get("RHIP_UPDATE_GOLDEN") == "1"


def load(path: Path) -> Message:
    """A message file as bytes are sent (any charset, BOM, \\n or \\r separated), parsed."""
    text, _ = decode(path.read_bytes())
    return parse(text)


def context(message: Message) -> MappingContext:
    """The context the pipeline gives a message: the sender is MSH-4.1."""
    return MappingContext(message.sending_facility, RECEIVED, ZONE)


def mapped(path: Path) -> Mapped:
    """The mapping of a message file."""
    message = load(path)
    return map_message(message, context(message))


def outcome(path: Path) -> dict[str, Any]:
    """What mapping a file gives, as the golden files hold it."""
    message = load(path)
    try:
        result = map_message(message, context(message))
    except MappingError as error:
        return {
            "error": {
                "code": error.code,
                "hl7_code": error.hl7_code,
                "segment": error.segment,
                "sequence": error.sequence,
                "field": error.field,
                "message": error.message,
            }
        }
    return {
        "bundle": result.bundle,
        "locations": result.locations,
        "patient_keys": result.patient_keys,
        "merges": [list(m) for m in result.merges],
        "focus": result.focus,
    }


def check_golden(path: Path) -> None:
    """Compare a file's mapping with its expected JSON (rewritten with RHIP_UPDATE_GOLDEN=1)."""
    expected_path = path.with_name(path.stem + ".expected.json")
    got = outcome(path)
    if UPDATE:
        expected_path.write_text(orjson.dumps(got, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    assert expected_path.exists(), f"{expected_path.name} is missing: run with RHIP_UPDATE_GOLDEN=1"
    assert got == orjson.loads(expected_path.read_bytes())


def cases(prefix: str) -> list[Path]:
    """The golden inputs whose name starts with ``prefix``."""
    return sorted(GOLDEN.glob(f"{prefix}*.hl7"))


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


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """A migrated database with the FHIR service (no master patient index: the mapping is under test)."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings, empi=False)
    try:
        yield plat
    finally:
        plat.close()


def post(platform: Platform, bundle: dict[str, Any]) -> dict[str, Any]:
    """Process a transaction; the transaction-response (fails the test on an error)."""
    body = orjson.dumps(bundle)
    response = platform.fhir.handle(
        FhirRequest("POST", "", body=body, headers={"content-type": "application/fhir+json"})
    )
    assert response.status == 200, response.body
    assert response.body is not None
    result: dict[str, Any] = orjson.loads(response.body)
    return result


def search(platform: Platform, rtype: str, *query: tuple[str, str]) -> list[dict[str, Any]]:
    """The resources a search finds (up to 200)."""
    response = platform.fhir.handle(FhirRequest("GET", rtype, [*query, ("_count", "200")]))
    assert response.status == 200, response.body
    assert response.body is not None
    return [
        e["resource"] for e in orjson.loads(response.body).get("entry", []) if e["search"]["mode"] == "match"
    ]


def counts(platform: Platform) -> dict[str, int]:
    """How many resources of each type the mapping writes are stored."""
    types = ("Organization", "Patient", "Encounter", "Condition", "Observation", "AllergyIntolerance")
    return {t: len(search(platform, t)) for t in (*types, "RelatedPerson", "Appointment")}


def statuses(response: dict[str, Any]) -> list[str]:
    """The status of each entry of a transaction-response."""
    return [e["response"]["status"].split()[0] for e in response["entry"]]


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
