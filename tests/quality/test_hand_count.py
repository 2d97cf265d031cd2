"""The report's figures equal a count by hand of the fixture's defects (tests/quality/fixture.py).

The fixture is scored the way a server scores it: the outbox consumer reads what the store announced. Every
expected number below is written out with the resources behind it. SQLite always, PostgreSQL when
RHIP_TEST_DATABASE_URL is set. Legend: "7/6" = 7 checks applied, 6 passed.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.quality import build_quality
from rhip.bootstrap.settings import Settings
from rhip.db import outbox
from rhip.db.migrate import upgrade
from rhip.exchange.rejects import RejectStore
from rhip.quality.report import month_period
from rhip.quality.service import CONSUMER, QualityService
from rhip.quality.xlsx import SHEETS, write_report

from .fixture import NAMES, PHONES, A, B, build_fixture, drain

# -- institution A (510703H01), 13 resource versions --------------------------------------------------------
# completeness: P1v1 7/7, P1v2 7/6 (phone removed), P2 7/7, P3 7/6 (no phone), E1 5/5, E2 5/5, O1 4/4, O2 4/4,
#   O3 4/4, C1 3/3, C2 3/3, I1 4/4, I2 4/3 (no lot number)                                        -> 64/61
# validity: P1v1 6/6, P1v2 5/5 (no phone to check), P2 6/6, P3 5/4 (ID check character), E1 3/3, E2 3/3,
#   O1 4/4, O2 4/3 (weight not in UCUM kg), O3 4/3 (dated after arrival), C1 3/3, C2 3/3, I1 2/2, I2 2/2  -> 50/47
# consistency: E1 1/1, E2 1/0 (discharge before admission), C1 1/0 (O80 on a man), C2 1/0 (C61 on a woman),
#   I1 1/1 (MMR at 32 months), I2 1/0 (DT at 32 months)                                                  -> 6/2
# timeliness: E1, O1, O2, O3, C1, C2, I1, I2 on time; E2 123 h late                                      -> 9/8
A_FAMILIES = {
    "completeness": (64, 61),
    "validity": (50, 47),
    "consistency": (6, 2),
    "timeliness": (9, 8),
}
# -- institution B (510704H02), 9 resource versions ---------------------------------------------------------
# completeness: P4 7/6 (no birth date), P5 7/7, E3 5/4 (no service provider), E4 4/4 (in progress: no end
#   needed), O4 4/4, O5 4/3 (no value), C3 3/2 (no recorded date), C4 3/3, I3 4/4                         -> 41/37
# validity: P4 5/4 (marital status only in a local code system; no birth date to check), P5 6/6, E3 2/2,
#   E4 3/3, O4 3/3, O5 3/3, C3 1/1, C4 2/2, I3 2/2                                                        -> 27/26
# consistency: E3 1/1, C4 1/1 (O80 on a woman), I3 1/1 (HepA-L on an adult)                              -> 3/3
# timeliness: E3, E4, O4, O5, C4 on time; I3 98 h after the vaccination (24 h allowed); C3 has no date   -> 6/5
B_FAMILIES = {
    "completeness": (41, 37),
    "validity": (27, 26),
    "consistency": (3, 3),
    "timeliness": (6, 5),
}
REGION_FAMILIES = {
    f: (A_FAMILIES[f][0] + B_FAMILIES[f][0], A_FAMILIES[f][1] + B_FAMILIES[f][1]) for f in A_FAMILIES
}


@pytest.fixture
def scored(database_url: str, tmp_path: Path) -> Iterator[tuple[Platform, QualityService]]:
    """The fixture stored and scored by the outbox consumer."""
    settings = Settings(database_url=database_url, log_format="text")  # type: ignore[arg-type]
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings, empi=False, exchange=False)
    try:
        build_fixture(platform)
        service = build_quality(platform)
        drain(service, platform)
        yield platform, service
    finally:
        platform.close()


def families(report: dict[str, object]) -> dict[str, tuple[int, int]]:
    rows = report["families"]
    assert isinstance(rows, list)
    return {f["family"]: (f["checked"], f["passed"]) for f in rows}


def test_family_figures_match_the_hand_count(scored: tuple[Platform, QualityService]) -> None:
    _, service = scored
    a = service.report(month_period("2026-10", A)).as_dict()
    b = service.report(month_period("2026-10", B)).as_dict()
    region = service.report(month_period("2026-10", None)).as_dict()
    assert families(a) == A_FAMILIES
    assert families(b) == B_FAMILIES
    assert families(region) == REGION_FAMILIES
    assert (a["resources"], b["resources"], region["resources"]) == (13, 9, 22)  # P6 arrived in November
    # Rates: passed / checked, four places.
    rates = {f["family"]: f["rate"] for f in a["families"]}
    assert rates == {
        "completeness": round(61 / 64, 4),
        "validity": 0.94,
        "consistency": round(2 / 6, 4),
        "timeliness": round(8 / 9, 4),
    }
    november = service.report(month_period("2026-11", None)).as_dict()
    assert november["resources"] == 1
    assert families(november) == {"completeness": (7, 6), "validity": (5, 5)}  # P6: no phone to check


def test_rule_figures_and_trend(scored: tuple[Platform, QualityService]) -> None:
    _, service = scored
    a = service.report(month_period("2026-10", A)).as_dict()
    rules = {r["rule"]: (r["checked"], r["passed"]) for r in a["rules"]}
    assert rules["C-PAT-PHONE"] == (4, 2)  # P1v1, P1v2 (removed), P2, P3 (none)
    assert rules["V-PAT-IDNUMBER"] == (4, 3)  # P3's check character
    assert rules["V-OBS-UNIT-WEIGHT"] == (2, 1)  # O1 in kg, O2 in 公斤
    assert rules["V-OBS-EFFECTIVE"] == (3, 2)  # O3 after its arrival
    assert rules["K-CON-PREGNANCY-SEX"] == (1, 0)  # C1
    assert rules["K-CON-MALE-CANCER-SEX"] == (1, 0)  # C2
    assert rules["K-ENC-END-AFTER-START"] == (2, 1)  # E1 fine, E2 reversed
    assert rules["K-IMM-DT-AGE"] == (1, 0)  # I2
    assert rules["K-IMM-LIVE-8M-AGE"] == (1, 1)  # I1
    assert rules["C-IMM-LOT"] == (2, 1)  # I2
    assert rules["T-ENC"] == (2, 1)  # E2
    assert "K-IMM-BCG-AGE" not in rules  # no BCG given: never applicable, never counted
    labels = {r["rule"]: r["label_zh"] for r in a["rules"]}
    assert labels["K-CON-PREGNANCY-SEX"] == "妊娠相关诊断（O00–O99）与性别一致"
    # Day by day (arrival in Asia/Shanghai): day 1 P1v1, P2, P3, E1, O1, O2, C1; day 2 P1v2, E2, C2; day 3 O3, I1, I2.
    days = {d["day"]: d for d in a["days"]}
    assert [(d, days[d]["resources"]) for d in sorted(days)] == [
        ("2026-10-05", 7),
        ("2026-10-06", 3),
        ("2026-10-07", 3),
    ]
    # Day 1 completeness: P1v1 7/7, P2 7/7, P3 7/6, E1 5/5, O1 4/4, O2 4/4, C1 3/3 = 37/36.
    assert days["2026-10-05"]["completeness"] == round(36 / 37, 4)
    # Day 2 consistency: E2 1/0, C2 1/0.
    assert days["2026-10-06"]["consistency"] == 0.0
    # Day 3 validity: O3 4/3, I1 2/2, I2 2/2 = 8/7.
    assert days["2026-10-07"]["validity"] == round(7 / 8, 4)
    # Delay buckets (event to arrival): none P1v1 P1v2 P2 P3; <=1h O3 (future), C1, C2 (dates count from the end
    # of their day); <=24h E1, O1, O2, I1, I2; <=168h E2.
    assert {d["bucket"]: d["resources"] for d in a["delays"]} == {
        "<=1h": 3,
        "<=24h": 5,
        "<=168h": 1,
        "none": 4,
    }


def test_worst_fields_and_examples_carry_no_personal_data(scored: tuple[Platform, QualityService]) -> None:
    _, service = scored
    a = service.report(month_period("2026-10", A)).as_dict()
    worst = [(w["resource_type"], w["element"], w["checked"], w["failed"]) for w in a["worst_fields"]]
    # Two failures each: the ICD-10 code (V-CON-ICD10 2/2, pregnancy 1/0, male cancer 1/0) and the phone
    # (C-PAT-PHONE 4/2, V-PAT-PHONE 2/2); then one each, by type and field.
    assert worst[:2] == [
        ("Condition", "Condition.code.coding.where(system='urn:oid:2.16.156.10011.2.3.3.11').code", 4, 2),
        ("Patient", "Patient.telecom.where(system='phone').value", 6, 2),
    ]
    assert [(t, e, c) for t, e, c, _ in worst[2:]] == [
        ("Encounter", "Encounter.period.end", 4),  # C-ENC-END 2/2, K-ENC-END-AFTER-START 2/1
        ("Immunization", "Immunization.lotNumber", 2),
        ("Immunization", "Immunization.vaccineCode.coding.where(system='urn:rhip:cs:nip-vaccine').code", 2),
        ("Observation", "Observation.effective", 9),  # C 3/3, V-OBS-EFFECTIVE 3/2, after birth 3/3
        ("Observation", "Observation.value", 3),  # unit weight 2/1, unit mmol 1/1
        ("Patient", "Patient.identifier.where(system='urn:oid:2.16.156.10011.1.3').value", 4),
    ]
    examples = {(e["rule"], e["resource_type"], e["id"], e["version"], e["day"]) for e in a["examples"]}
    assert ("C-PAT-PHONE", "Patient", "p1", 2, "2026-10-06") in examples
    assert ("V-PAT-IDNUMBER", "Patient", "p3", 1, "2026-10-05") in examples
    assert ("K-CON-PREGNANCY-SEX", "Condition", "c1", 1, "2026-10-05") in examples
    assert ("T-ENC", "Encounter", "e2", 1, "2026-10-06") in examples
    # One example per failed check (at most 3 per day and rule): completeness P1v2, P3, I2; validity P3, O2, O3;
    # consistency E2, C1, C2, I2; timeliness E2.
    assert len(examples) == 3 + 3 + 4 + 1
    text = orjson.dumps(service.report(month_period("2026-10", None)).as_dict()).decode()
    for secret in (*NAMES, *PHONES, "19800301", "四川省"):
        assert secret not in text


def test_scoring_is_idempotent(scored: tuple[Platform, QualityService]) -> None:
    platform, service = scored
    before = service.report(month_period("2026-10", None)).as_dict()
    assert service.catch_up().events == 0  # nothing new
    with platform.db.write() as conn:  # the position lost: every event is read again
        outbox.advance(conn, CONSUMER, outbox.START)
    again = drain(service, platform)
    assert again.events > 0 and again.scored == 0
    assert service.report(month_period("2026-10", None)).as_dict() == before


def test_spreadsheet_cells_match(scored: tuple[Platform, QualityService], tmp_path: Path) -> None:
    _, service = scored
    path = tmp_path / "quality.xlsx"
    write_report(service.report(month_period("2026-10", None)), path)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == list(SHEETS.values())
    summary = {row[0]: row[1:] for row in book[SHEETS["summary"]].iter_rows(values_only=True) if row[0]}
    assert summary["范围 Scope"][0] == "全区域 Region"
    assert summary["质控资源数 Resources scored"][0] == 22
    assert summary["完整性 Completeness"][:4] == (105, 98, 7, round(98 / 105, 4))
    assert summary["一致性 Consistency"][:4] == (9, 5, 4, round(5 / 9, 4))
    assert summary["及时性 Timeliness"][:3] == (15, 13, 2)
    rules = {row[0]: row for row in book[SHEETS["rules"]].iter_rows(min_row=2, values_only=True)}
    assert rules["C-OBS-VALUE"][6:9] == (5, 4, 1)  # O1–O4 have values; O5 none
    assert rules["V-PAT-MARITAL"][6:9] == (6, 5, 1)  # P4's local code
    institutions = {
        row[0]: row for row in book[SHEETS["institutions"]].iter_rows(min_row=2, values_only=True)
    }
    assert institutions[A][1:4] == (64 + 50 + 6 + 9, 61 + 47 + 2 + 8, 11)
    assert institutions[B][1:4] == (41 + 27 + 3 + 6, 37 + 26 + 3 + 5, 6)
    days = list(book[SHEETS["days"]].iter_rows(min_row=2, values_only=True))
    assert [(d[0], d[1]) for d in days] == [("2026-10-05", 9), ("2026-10-06", 7), ("2026-10-07", 6)]


def test_refused_messages_count_against_their_sender(scored: tuple[Platform, QualityService]) -> None:
    platform, service = scored
    rejects = RejectStore(platform.db)
    for sender in (A, A, B):  # kept by the exchange when a door refused them: never in the store
        rejects.record(
            channel="mllp", sender=sender, raw=b"MSH|...", reason_code="RHIP-V2-0010", reason="bad"
        )
    month = datetime.now(ZoneInfo("Asia/Shanghai")).strftime("%Y-%m")
    counted = {who: service.report(month_period(month, who)).rejected for who in (A, B, None)}
    assert counted == {A: 2, B: 1, None: 3}
    assert service.report(month_period("2026-10", A)).rejected == 0  # none were refused in October
