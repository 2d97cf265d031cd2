"""The generated population and its care behave like the statistics the data files name."""

from __future__ import annotations

import csv
from collections import Counter
from datetime import date
from pathlib import Path

import orjson
import pytest

from rhip.synth import catalog
from rhip.synth.idcard import birth_date, is_male, is_valid
from rhip.synth.population import OTHER_AREAS
from rhip.synth.run import Summary

START = date(2022, 1, 1)


def _persons(out: Path) -> list[dict]:
    return [orjson.loads(line) for line in (out / "truth" / "persons.ndjson").read_bytes().splitlines()]


def _age(p: dict, on: date) -> int:
    b = date.fromisoformat(p["birthDate"])
    return on.year - b.year - ((on.month, on.day) < (b.month, b.day))


@pytest.fixture(scope="module")
def persons(region_dir: tuple[Path, Summary]) -> list[dict]:
    return _persons(region_dir[0])


def _resources(out: Path, kind: str) -> list[dict]:
    found = []
    needle = f'"resourceType":"{kind}"'.encode()
    for f in sorted((out / "fhir").glob("*.ndjson")):
        found.extend(orjson.loads(line) for line in f.read_bytes().splitlines() if needle in line[:60])
    return found


def test_age_and_sex_follow_the_census(persons: list[dict]) -> None:
    at_start = [p for p in persons if date.fromisoformat(p["birthDate"]) <= START and not p["movedIn"]]
    anchors = catalog.population()["pyramid"]["anchors"]
    n = len(at_start)
    children = sum(1 for p in at_start if _age(p, START) < 15) / n * 100
    old = sum(1 for p in at_start if _age(p, START) >= 60) / n * 100
    male = sum(1 for p in at_start if p["gender"] == "male") / n * 100
    assert abs(children - anchors["sichuan_age_0_14_percent"]) < 3.0
    assert abs(old - anchors["sichuan_age_60_plus_percent"]) < 3.0
    assert abs(male - anchors["sichuan_male_percent"]) < 3.0


def test_households(persons: list[dict]) -> None:
    sizes = Counter(p["household"] for p in persons if date.fromisoformat(p["birthDate"]) <= START)
    mean = sum(sizes.values()) / len(sizes)
    assert 2.1 < mean < 3.2
    assert max(sizes.values()) >= 4 and min(sizes.values()) == 1


def test_id_numbers_are_valid_unique_and_agree_with_the_person(persons: list[dict]) -> None:
    counties = {d.code for d in catalog.divisions().by_code.values() if d.level == "county"}
    numbers = [p["idNumber"] for p in persons]
    assert len(set(numbers)) == len(numbers)
    for p in persons:
        n = p["idNumber"]
        assert is_valid(n)
        assert birth_date(n).isoformat() == p["birthDate"]
        assert is_male(n) is (p["gender"] == "male")
        assert n[:6] in counties or n[:6] in OTHER_AREAS
    # People born in 安州区 before 2016 carry the old 安县 code.
    assert any(p["idNumber"].startswith("510724") for p in persons)


def test_names_repeat_as_real_names_do(persons: list[dict]) -> None:
    names = Counter(p["name"] for p in persons)
    surnames = Counter(p["family"] for p in persons)
    assert names.most_common(1)[0][1] >= 3
    assert surnames.most_common(1)[0][0] in {"王", "李", "张", "刘", "陈"}
    assert len(surnames) > 60


def test_births_deaths_and_moves(persons: list[dict]) -> None:
    born = [p for p in persons if date.fromisoformat(p["birthDate"]) >= START]
    died = [p for p in persons if p["death"]]
    n = len(persons)
    assert 0.018 < len(born) / n < 0.036  # about 6–7 births per 1000 a year over 4 years (4.5–9 allowed)
    assert 0.02 < len(died) / n < 0.06  # about 8–9 deaths per 1000 a year
    assert all(p["deathCause"] for p in died)
    assert any(p["twin"] for p in persons) or len(born) < 60
    assert any(p["movedIn"] for p in persons) and any(p["movedOut"] for p in persons)
    assert any(len(p["phones"]) > 1 for p in persons) and any(len(p["addresses"]) > 1 for p in persons)
    # A phone is household evidence: children give a parent's number.
    shared = Counter(p["phones"][0]["number"] for p in persons)
    assert shared.most_common(1)[0][1] >= 2


def test_immunization_coverage_and_delays(region_dir: tuple[Path, Summary]) -> None:
    rows = list(csv.DictReader((region_dir[0] / "truth" / "immunizations.csv").open(encoding="utf-8")))
    assert len(rows) > 200
    given = [r for r in rows if r["given"]]
    coverage = len(given) / len(rows)
    behaviour = catalog.immunization()["behaviour"]
    assert abs(coverage - (1 - behaviour["missed_first_year"] - 0.02)) < 0.06
    late = sum(1 for r in given if (date.fromisoformat(r["given"]) - date.fromisoformat(r["due"])).days > 31)
    assert 0.04 < late / len(given) < 0.25
    # The 2025 edition: children born from 2025 get DTaP at 2 months, those born before at 3 months, and
    # nobody gets a dose twice or loses one at the switch.
    persons = {p["id"]: p for p in _persons(region_dir[0])}
    first_dtap = [r for r in rows if r["vaccine"] == "0402" and r["dose"] == "1"]
    assert any(persons[r["person"]]["birthDate"] >= "2025-01-01" for r in first_dtap)
    for r in first_dtap:
        birth = persons[r["person"]]["birthDate"]
        months = (date.fromisoformat(r["due"]) - date.fromisoformat(birth)).days / 30.44
        assert round(months) == (2 if birth >= "2025-01-01" else 3)
    doses = Counter((r["person"], r["vaccine"], r["dose"]) for r in rows)
    assert max(doses.values()) == 1


def test_chronic_prevalence_and_follow_up_adherence(
    region_dir: tuple[Path, Summary], persons: list[dict]
) -> None:
    out = region_dir[0]
    registrations = {
        r["patient"]: r["person"]
        for r in csv.DictReader((out / "truth" / "registrations.csv").open(encoding="utf-8"))
    }
    hypertensive = {
        registrations[c["subject"]["reference"].split("/")[1]]
        for c in _resources(out, "Condition")
        if c["code"]["coding"][0]["code"] == "I10"
    }
    adults = [p for p in persons if _age(p, START) >= 35 and not p["movedIn"]]
    share = len(hypertensive & {p["id"] for p in adults}) / len(adults)
    assert 0.15 < share < 0.45
    visits = Counter(
        registrations[e["subject"]["reference"].split("/")[1]]
        for e in _resources(out, "Encounter")
        if e["type"][0]["coding"][0]["code"] == "htn-followup"
    )
    per_year = sum(visits.values()) / max(1, len(visits)) / 4
    assert 2.0 < per_year < 4.5  # about every 3 months, some missed, enrolment during the first year


def test_outbreaks_are_in_the_ground_truth(region_dir: tuple[Path, Summary]) -> None:
    out = region_dir[0]
    outbreaks = orjson.loads((out / "truth" / "outbreaks.json").read_bytes())
    assert outbreaks
    cases = list(csv.DictReader((out / "truth" / "notifiable-cases.csv").open(encoding="utf-8")))
    by_outbreak = Counter(c["outbreak"] for c in cases if c["outbreak"])
    for ob in outbreaks:
        assert len(ob["cases"]) >= 3
        assert by_outbreak[ob["id"]] >= len(ob["cases"]) * 0.8  # a case may fall after a move or death
        assert ob["start"] <= min(c["onset"] for c in ob["cases"])
    assert sum(1 for c in cases if not c["outbreak"]) > 0  # baseline cases too
    conditions = {c["id"] for c in _resources(out, "Condition")}
    assert all(c["condition"] in conditions for c in cases)


def test_registrations_are_messy_and_mapped(region_dir: tuple[Path, Summary], persons: list[dict]) -> None:
    out = region_dir[0]
    rows = list(csv.DictReader((out / "truth" / "registrations.csv").open(encoding="utf-8")))
    patients = {p["id"] for p in _resources(out, "Patient")}
    assert {r["patient"] for r in rows} == patients
    known = {p["id"] for p in persons}
    assert all(r["person"] in known for r in rows)
    errors = Counter(e for r in rows for e in r["errors"].split("|") if e)
    for kind in ("name-homophone", "id-missing", "id-typo", "phone-missing", "address-partial"):
        assert errors[kind] > 0, kind
    per_person = Counter(r["person"] for r in rows)
    assert sum(per_person.values()) / len(per_person) > 1.5  # people are registered at several places
