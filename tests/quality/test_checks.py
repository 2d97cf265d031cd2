"""The check kinds on their edges, and how a resource's institution is found."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from rhip.bootstrap.container import code_tables
from rhip.bootstrap.settings import Settings
from rhip.fhir.definitions import structure
from rhip.fhir.search.values import date_range
from rhip.fhir.valuesets import required_valuesets
from rhip.quality.attribution import Attributor
from rhip.quality.ruleset import load_rulesets
from rhip.quality.scorer import Scorer
from rhip.terminology.service import TerminologyService

from .fixture import id_number

ZONE = ZoneInfo("Asia/Shanghai")
ARRIVAL_US = date_range("2026-10-05T12:00:00+08:00", ZONE)[0]


@pytest.fixture(scope="module")
def scorer() -> Scorer:
    table = structure()
    codes = TerminologyService(code_tables(Settings()), required_valuesets())
    return Scorer(load_rulesets(table), codes, table, ZONE)


def outcomes(
    scorer: Scorer, resource: dict[str, Any], patient: dict[str, Any] | None = None
) -> dict[str, bool]:
    scored = scorer.score(resource, ARRIVAL_US, version=1, institution="", patient=patient)
    return {rule.id: ok for rule, ok in scored.outcomes}


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (id_number("510703", "1980-03-01", "001"), True),
        (id_number("510703", "1980-03-01", "001", valid=False), False),
        ("510703800301001", False),  # 15 digits: the old form is not an 18-digit number
        (id_number("510703", "1899-12-31", "001"), False),  # before 1900
        ("51070319800230001" + "0", False),  # 30 February
        ("5107031980030100X1", False),
    ],
)
def test_id_numbers(scorer: Scorer, value: str, valid: bool) -> None:
    patient = {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": value}],
    }
    assert outcomes(scorer, patient)["V-PAT-IDNUMBER"] is valid


@pytest.mark.parametrize(
    ("birth", "plausible"),
    [("1950-01-01", True), ("1899-06", False), ("2026-10-05", True), ("2026-10-06", False), ("2026", True)],
)
def test_birth_dates(scorer: Scorer, birth: str, plausible: bool) -> None:
    # A partial date counts from its start: "2026" began before the arrival.
    assert outcomes(scorer, {"resourceType": "Patient", "birthDate": birth})["V-PAT-BIRTH"] is plausible


def test_events_before_birth_and_vaccine_ages(scorer: Scorer) -> None:
    child = {"resourceType": "Patient", "gender": "female", "birthDate": "2026-03-15"}
    dose = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"coding": [{"system": "urn:rhip:cs:nip-vaccine", "code": "1201"}]},
        "patient": {"reference": "Patient/x"},
        "occurrenceDateTime": "2026-11-14",  # 7 months and 30 days: not yet 8 months
    }
    assert outcomes(scorer, dose, child)["K-IMM-LIVE-8M-AGE"] is False
    assert outcomes(scorer, dose | {"occurrenceDateTime": "2026-11-15"}, child)["K-IMM-LIVE-8M-AGE"] is True
    early = dose | {"occurrenceDateTime": "2026-03-14"}
    assert outcomes(scorer, early, child)["V-IMM-AFTER-BIRTH"] is False
    # Without the Patient's birth date the age and birth rules do not apply.
    assert {"K-IMM-LIVE-8M-AGE", "V-IMM-AFTER-BIRTH"}.isdisjoint(outcomes(scorer, dose, {"gender": "male"}))


def test_sex_specific_ranges_and_unknown_gender(scorer: Scorer) -> None:
    condition = {
        "resourceType": "Condition",
        "code": {"coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.11", "code": "N40.x00"}]},
    }
    assert outcomes(scorer, condition, {"gender": "female"})["K-CON-MALE-GENITAL-SEX"] is False
    assert outcomes(scorer, condition, {"gender": "male"})["K-CON-MALE-GENITAL-SEX"] is True
    assert "K-CON-MALE-GENITAL-SEX" not in outcomes(scorer, condition, {"gender": "unknown"})
    assert "K-CON-MALE-GENITAL-SEX" not in outcomes(scorer, condition, None)


def test_delay_buckets(scorer: Scorer) -> None:
    hour = 3_600_000_000
    assert [scorer.bucket(h * hour) for h in (0, 1, 2, 30, 100, 500, 1000)] == [
        "<=1h", "<=1h", "<=24h", "<=48h", "<=168h", "<=720h", ">720h",
    ]  # fmt: skip
    assert scorer.bucket(-5 * hour) == "<=1h"  # an event after its arrival is validity's business


def test_institution_of_a_resource() -> None:
    store = {
        ("Organization", "org-1"): {
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": "510703H01"}]
        },
        ("Organization", "org-2"): {"name": "no code"},
        ("Encounter", "e1"): {
            "resourceType": "Encounter",
            "serviceProvider": {"reference": "Organization/org-1"},
        },
    }
    reads: list[tuple[str, str]] = []

    def read(resource_type: str, id: str) -> dict[str, Any] | None:
        reads.append((resource_type, id))
        return store.get((resource_type, id))

    who = Attributor(read)
    source = {"resourceType": "Observation", "meta": {"source": "urn:rhip:source:v2:510704H02"}}
    assert who.institution(source) == "510704H02"  # the door's stamp comes first
    performed = {"resourceType": "Observation", "performer": [{"reference": "Organization/org-1"}]}
    assert who.institution(performed) == "510703H01"
    assert (
        who.institution({"resourceType": "Condition", "encounter": {"reference": "Encounter/e1"}})
        == "510703H01"
    )
    assert who.institution(
        {"resourceType": "Encounter", "serviceProvider": {"reference": "Organization/org-2"}}
    ) == ("Organization/org-2")
    assert who.institution({"resourceType": "Condition"}) == ""
    assert reads.count(("Organization", "org-1")) == 1  # codes are cached
