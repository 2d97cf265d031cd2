"""SIU mapping: golden files, and the Appointment upserted through the real FHIR service."""

from __future__ import annotations

from pathlib import Path

import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.mapping import MappingError

from .test_adt import GOLDEN, cases, check_golden, counts, mapped, platform, post, search, statuses

__all__ = ["platform"]  # the FHIR-service fixture of test_adt, used here too


@pytest.mark.parametrize("path", cases("siu-"), ids=lambda p: p.stem)
def test_golden(path: Path) -> None:
    check_golden(path)


def test_every_golden_bundle_is_accepted(platform: Platform) -> None:
    for path in cases("siu-"):
        if "error" not in path.stem:
            post(platform, mapped(path).bundle)
    assert counts(platform)["Appointment"] == 2  # the public samples all book filler id 36996


def test_a_new_appointment_twice_and_its_cancellation_keep_one_appointment(platform: Platform) -> None:
    booked = mapped(GOLDEN / "siu-s12-synth.hl7")
    post(platform, booked.bundle)
    again = post(platform, booked.bundle)
    assert "201" not in statuses(again)
    [appointment] = search(platform, "Appointment")
    assert appointment["status"] == "booked"
    assert (appointment["start"], appointment["end"]) == (
        "2025-03-05T09:00:00+08:00",
        "2025-03-05T09:20:00+08:00",
    )
    assert appointment["minutesDuration"] == 20
    [patient] = search(platform, "Patient")
    assert appointment["participant"][0]["actor"]["reference"] == f"Patient/{patient['id']}"
    post(platform, mapped(GOLDEN / "siu-s15-cancel.hl7").bundle)
    [cancelled] = search(platform, "Appointment")
    assert (cancelled["id"], cancelled["status"]) == (appointment["id"], "cancelled")
    assert len(search(platform, "Patient")) == 1


def test_an_appointment_without_time_names_the_field() -> None:
    with pytest.raises(MappingError) as caught:
        mapped(GOLDEN / "siu-s12-error-no-time.hl7")
    assert (caught.value.segment, caught.value.field, caught.value.hl7_code) == ("SCH", 11, "101")
