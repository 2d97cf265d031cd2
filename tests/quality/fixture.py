"""A small region with known defects for the hand count: two institutions, three days of October 2026.

Institution A (510703H01) and B (510704H02) send through the FHIR door (``meta.source`` set as the door sets
it). Each resource is stored by a repository whose clock says when it arrived, so ``meta.lastUpdated`` (the
arrival) falls on the day written beside it. One more Patient arrives in November: outside the October
report. The defects are listed in ``DEFECTS`` and counted by hand in tests/quality/test_hand_count.py.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, cast

from sqlalchemy import func, select

from rhip.bootstrap.container import Platform
from rhip.db import outbox
from rhip.empi.normalize.idnumber import check_character
from rhip.quality.service import CONSUMER, CatchUp, QualityService
from rhip.store.repository import SqlFhirRepository

A = "510703H01"
B = "510704H02"
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
NIP = "urn:rhip:cs:nip-vaccine"
CST = timezone(timedelta(hours=8))
# Arrival instants: noon in Shanghai on each day.
DAY1, DAY2, DAY3 = (datetime(2026, 10, d, 12, 0, tzinfo=CST) for d in (5, 6, 7))
NOVEMBER = datetime(2026, 11, 2, 12, 0, tzinfo=CST)
# Personal data the report must never carry (checked in the tests).
NAMES = ("张三", "李四", "王小五", "赵六", "钱七", "孙八")
PHONES = ("13800138000", "13900139000", "13700137000", "13600136000")


def id_number(area: str, born: str, sequence: str, *, valid: bool = True) -> str:
    """An 18-character ID number with the right (or, ``valid=False``, a wrong) check character."""
    first17 = f"{area}{born.replace('-', '')}{sequence}"
    check = check_character(first17)
    if not valid:
        check = "0" if check != "0" else "1"
    return first17 + check


class FixedClock:
    """A clock the test sets: the arrival of the next write."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self) -> datetime:
        """The set instant, in UTC."""
        return self.moment.astimezone(UTC)


def patient(
    pid: str, source: str, name: str, gender: str, born: str | None, phone: str | None, idn: str
) -> dict[str, Any]:
    """A Patient with every WS 365 element unless a defect removes one."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"source": f"urn:rhip:source:fhir:{source}"},
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": idn}],
        "name": [{"text": name}],
        "gender": gender,
        "address": [{"text": "四川省绵阳市涪城区"}],
        "maritalStatus": {"coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "20"}]},
        "extension": [
            {
                "url": "urn:rhip:ext:ethnicity",
                "valueCodeableConcept": {
                    "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.3", "code": "01"}]
                },
            }
        ],
    }
    if born is not None:
        resource["birthDate"] = born
    if phone is not None:
        resource["telecom"] = [{"system": "phone", "value": phone}]
    return resource


def encounter(
    eid: str, source: str, pid: str, status: str, start: str, end: str | None, provider: bool = True
) -> dict[str, Any]:
    """An ambulatory Encounter."""
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": eid,
        "meta": {"source": f"urn:rhip:source:fhir:{source}"},
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{pid}"},
        "period": {"start": start} | ({"end": end} if end else {}),
    }
    if provider:
        resource["serviceProvider"] = {"reference": f"Organization/org-{source}"}
    return resource


def observation(oid: str, source: str, pid: str, loinc: str, effective: str, **value: Any) -> dict[str, Any]:
    """A final Observation with a LOINC code and the value given (``valueQuantity`` or ``component``)."""
    return {
        "resourceType": "Observation",
        "id": oid,
        "meta": {"source": f"urn:rhip:source:fhir:{source}"},
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": effective,
        **value,
    }


def condition(cid: str, source: str, pid: str, code: str, recorded: str | None) -> dict[str, Any]:
    """A diagnosis in ICD-10."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "id": cid,
        "meta": {"source": f"urn:rhip:source:fhir:{source}"},
        "code": {"coding": [{"system": ICD10, "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
    }
    if recorded is not None:
        resource["recordedDate"] = recorded
    return resource


def immunization(iid: str, source: str, pid: str, vaccine: str, when: str, lot: str | None) -> dict[str, Any]:
    """A completed dose of a national-programme vaccine."""
    resource: dict[str, Any] = {
        "resourceType": "Immunization",
        "id": iid,
        "meta": {"source": f"urn:rhip:source:fhir:{source}"},
        "status": "completed",
        "vaccineCode": {"coding": [{"system": NIP, "code": vaccine}]},
        "patient": {"reference": f"Patient/{pid}"},
        "occurrenceDateTime": when,
        "performer": [{"actor": {"reference": f"Organization/org-{source}"}}],
    }
    if lot is not None:
        resource["lotNumber"] = lot
    return resource


def kg(value: float) -> dict[str, Any]:
    """A UCUM kilogram quantity."""
    return {"valueQuantity": {"value": value, "unit": "kg", "system": UCUM, "code": "kg"}}


def build_fixture(platform: Platform) -> None:
    """Store the fixture, each resource arriving on its day (order: patients before what refers to them)."""
    clock = FixedClock(DAY1)
    ctx = cast(SqlFhirRepository, platform.store).ctx
    store = SqlFhirRepository(replace(ctx, clock=clock))
    # A platform run with RHIP_FHIR__VALIDATE_ON_WRITE=false stores what FHIR's invariants would refuse
    # (per-1: a period's start before its end); E2 arrives that way.
    unvalidated = SqlFhirRepository(replace(ctx, clock=clock, validator=None))

    def arrive(moment: datetime, *resources: dict[str, Any]) -> None:
        clock.moment = moment
        for r in resources:
            (unvalidated if r["id"] == "e2" else store).update(r["resourceType"], r["id"], r)

    p1 = patient("p1", A, NAMES[0], "male", "1980-03-01", PHONES[0], id_number("510703", "1980-03-01", "001"))
    p2 = patient(
        "p2", A, NAMES[1], "female", "1990-06-15", PHONES[1], id_number("510703", "1990-06-15", "002")
    )
    # P3: no phone; ID number with a wrong check character.
    p3 = patient(
        "p3", A, NAMES[2], "male", "2024-01-10", None, id_number("510703", "2024-01-10", "003", valid=False)
    )
    # P4: no birth date; marital status coded only in a local system.
    p4 = patient("p4", B, NAMES[3], "female", None, PHONES[2], id_number("510704", "1985-01-01", "004"))
    p4["maritalStatus"] = {"coding": [{"system": "urn:rhip:cs:local-marital:510704H02", "code": "M"}]}
    p5 = patient("p5", B, NAMES[4], "male", "1970-05-20", PHONES[3], id_number("510704", "1970-05-20", "005"))
    arrive(
        DAY1,
        p1,
        p2,
        p3,
        p5,
        encounter("e1", A, "p1", "finished", "2026-10-05T08:00:00+08:00", "2026-10-05T10:00:00+08:00"),
        observation("o1", A, "p1", "29463-7", "2026-10-05T08:30:00+08:00", **kg(70)),
        # O2: weight without a UCUM unit.
        observation(
            "o2", A, "p1", "29463-7", "2026-10-05T08:40:00+08:00", valueQuantity={"value": 70, "unit": "公斤"}
        ),
        # C1: a pregnancy code on a man.
        condition("c1", A, "p1", "O80", "2026-10-05"),
        # I3: arrives four days after the vaccination (same-day upload expected).
        immunization("i3", B, "p5", "1901", "2026-10-01T10:00:00+08:00", "LOT-3"),
    )
    p1_again = {k: v for k, v in p1.items() if k != "telecom"}  # P1 version 2: the phone removed
    arrive(
        DAY2,
        p1_again,
        p4,
        # E2: discharge before admission (stored without validation), and sent five days late.
        encounter("e2", A, "p2", "finished", "2026-10-01T09:00:00+08:00", "2026-09-30T10:00:00+08:00"),
        # C2: prostate cancer on a woman.
        condition("c2", A, "p2", "C61", "2026-10-06"),
        # E3: no service provider.
        encounter(
            "e3",
            B,
            "p4",
            "finished",
            "2026-10-06T07:00:00+08:00",
            "2026-10-06T08:00:00+08:00",
            provider=False,
        ),
        observation(
            "o4",
            B,
            "p4",
            "85354-9",
            "2026-10-06T07:30:00+08:00",
            component=[
                {
                    "code": {"coding": [{"system": LOINC, "code": code}]},
                    "valueQuantity": {"value": v, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
                }
                for code, v in (("8480-6", 120), ("8462-4", 80))
            ],
        ),
        condition("c4", B, "p4", "O80", "2026-10-06"),
    )
    arrive(
        DAY3,
        # O3: a glucose result dated two days after it arrived.
        observation(
            "o3",
            A,
            "p2",
            "1558-6",
            "2026-10-09T08:00:00+08:00",
            valueQuantity={"value": 5.4, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
        ),
        immunization("i1", A, "p3", "1201", "2026-10-07T09:00:00+08:00", "LOT-1"),
        # I2: DT (from 6 years) given to a 32-month-old, without a lot number.
        immunization("i2", A, "p3", "0601", "2026-10-07T09:30:00+08:00", None),
        encounter("e4", B, "p5", "in-progress", "2026-10-07T09:00:00+08:00", None),
        # O5: a heart rate without a value or a reason for its absence.
        observation("o5", B, "p5", "8867-4", "2026-10-07T09:10:00+08:00"),
        # C3: no recorded date.
        condition("c3", B, "p5", "I10", None),
        # An Organization: no rules for its type, so never counted.
        {
            "resourceType": "Organization",
            "id": "org-510703H01",
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": A}],
            "name": "医院甲",
        },
    )
    arrive(
        NOVEMBER,
        patient("p6", A, NAMES[5], "female", "2000-01-01", None, id_number("510703", "2000-01-01", "006")),
    )


def drain(service: QualityService, platform: Platform) -> CatchUp:
    """Catch up until every event in the outbox is processed.

    On PostgreSQL the outbox holds events back while an older transaction is open anywhere on the cluster
    (another test's): a catch-up may end early and the next one continues.
    """
    with platform.db.read() as conn:
        last = int(conn.execute(select(func.max(outbox.outbox.c.id))).scalar_one())
    total = CatchUp()
    deadline = time.monotonic() + 60
    while True:
        done = service.catch_up()
        total.events += done.events
        total.scored += done.scored
        if service.repository.position(CONSUMER).id >= last:
            return total
        assert time.monotonic() < deadline, "the outbox did not deliver every event"
        time.sleep(0.05)
