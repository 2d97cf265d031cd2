"""The clinician workbench's pure parts: the search box's reading of a query, the break-the-glass cookie,
and the shaping of a record's resources (no region needed)."""

from __future__ import annotations

from datetime import date

import pytest
from starlette.requests import Request

from rhip.security.principal import Principal, Role
from rhip.web.portal.clinician_glass import GLASS_SECONDS, clean_reason, glass_cookie, glass_reason
from rhip.web.portal.clinician_search import group_people, query_params
from rhip.web.portal.core import Viewer
from rhip.web.portal.record_charts import bp_figure, lab_figure
from rhip.web.portal.record_shape import (
    local_time,
    merge_encounters,
    shape_follow_ups,
    shape_labs,
    shape_summary,
    shape_vitals,
)


@pytest.mark.parametrize(
    ("query", "kind", "params"),
    [
        (
            "11010519491231002x",
            "id-number",
            [("identifier", "urn:oid:2.16.156.10011.1.3|11010519491231002X")],
        ),
        (
            "110105194912310021",
            "id-number",
            [("identifier", "urn:oid:2.16.156.10011.1.3|110105194912310021")],
        ),
        ("138 0013 8000", "phone", [("phone", "13800138000")]),
        (
            "5107036977366757604",
            "health-card",
            [("identifier", "urn:oid:2.16.156.10011.1.19|5107036977366757604")],
        ),
        ("Zhang Wei", "pinyin", [("pinyin", "zhang wei")]),
        ("xi'an", "pinyin", [("pinyin", "xian")]),
        ("张伟", "name", [("name", "张伟")]),
        ("张 wei", "name", [("name", "张 wei")]),
    ],
)
def test_the_query_shape_decides_the_search(query: str, kind: str, params: list[tuple[str, str]]) -> None:
    assert query_params(query) == (kind, params)


def test_records_of_one_person_are_one_row() -> None:
    ident = [{"system": "urn:oid:2.16.156.10011.1.3", "value": "110105194912310021"}]
    rows = group_people(
        [
            {
                "id": "a",
                "name": [{"text": "张伟"}],
                "identifier": ident,
                "managingOrganization": {"reference": "Organization/o1"},
            },
            {
                "id": "b",
                "name": [{"text": "张伟"}],
                "identifier": ident,
                "managingOrganization": {"reference": "Organization/o2"},
            },
            {"id": "c", "name": [{"family": "李", "given": ["娜"]}]},
        ],
        {"o1": "一院", "o2": "二院"},
    )
    assert [(r["id"], r["name"], r["records"], r["institutions"]) for r in rows] == [
        ("a", "张伟", 2, ["一院", "二院"]),
        ("c", "李娜", 1, []),
    ]


def _viewer(role: Role = Role.CLINICIAN, name: str = "doc") -> Viewer:
    return Viewer(Principal(subject=f"user:{name}", role=role, scopes=frozenset()), "zh-CN", "t", None)


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request({"type": "http", "headers": [(b"cookie", header.encode())]})


def test_the_glass_cookie_holds_the_reason_for_its_clinician_patient_and_time() -> None:
    doc = _viewer()
    name, value, max_age = glass_cookie(doc, "p1", "急诊抢救，需既往史", now=1_000_000.0)
    assert max_age == GLASS_SECONDS and name == "rhip_glass_p1" and value.isascii()
    request = _request({name: value})
    assert glass_reason(request, doc, "p1", now=1_000_100.0) == "急诊抢救，需既往史"
    assert glass_reason(request, doc, "p1", now=1_000_000.0 + GLASS_SECONDS + 1) is None  # expired
    name, value, _ = glass_cookie(doc, "p1", "急诊抢救，需既往史")
    request = _request({name: value})
    assert glass_reason(request, doc, "p1") == "急诊抢救，需既往史"
    assert glass_reason(request, _viewer(name="other"), "p1") is None  # another account
    assert glass_reason(_request({"rhip_glass_p2": value}), doc, "p2") is None  # another patient
    assert glass_reason(request, _viewer(Role.PUBLIC_HEALTH, "doc"), "p1") is None  # clinicians only
    tampered = value.rsplit(".", 1)[0] + "." + "0" * 32
    assert glass_reason(_request({name: tampered}), doc, "p1") is None


def test_a_reason_needs_four_characters() -> None:
    assert clean_reason("急诊") is None
    assert clean_reason("  急诊抢救  ") == "急诊抢救"
    assert clean_reason("x" * 501) is None


def test_times_are_shown_in_shanghai() -> None:
    assert local_time("2026-03-01T02:30:00Z") == "2026-03-01 10:30"
    assert local_time("2026-03-01T10:30:00+08:00") == "2026-03-01 10:30"
    assert local_time("2026-03-01") == "2026-03-01"
    assert local_time(None) == ""


def _coded(code: str, display: str = "", system: str = "http://loinc.org") -> dict[str, object]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def test_the_summary_keeps_active_problems_and_recent_medicines() -> None:
    active = {"coding": [{"code": "active"}]}
    resolved = {"coding": [{"code": "resolved"}]}
    summary = shape_summary(
        [
            {"clinicalStatus": active, "code": _coded("I10", "原发性高血压"), "onsetDateTime": "2020-01-01"},
            {"clinicalStatus": active, "code": _coded("I10", "原发性高血压")},
            {"clinicalStatus": resolved, "code": _coded("J06.9", "上呼吸道感染")},
        ],
        [{"code": _coded("penicillin", "青霉素"), "category": ["medication"], "recordedDate": "2025-01-01"}],
        [
            {"medicationCodeableConcept": {"text": "氨氯地平"}, "authoredOn": "2026-05-01T09:00:00+08:00"},
            {"medicationCodeableConcept": {"text": "阿莫西林"}, "authoredOn": "2025-01-01T09:00:00+08:00"},
        ],
        [
            {
                "vaccineCode": {"text": "乙肝疫苗"},
                "occurrenceDateTime": "2026-01-01",
                "protocolApplied": [{"doseNumberPositiveInt": 2}],
            }
        ],
        [],
        today=date(2026, 6, 1),
    )
    assert [p["name"] for p in summary["problems"]] == ["原发性高血压"]
    assert [a["name"] for a in summary["allergies"]] == ["青霉素"]
    assert [m["name"] for m in summary["medications"]] == ["氨氯地平"]
    assert summary["immunizations"] == [{"name": "乙肝疫苗", "dose": 2, "date": "2026-01-01"}]


def test_follow_up_status_says_when_the_next_visit_is_due() -> None:
    visit = {
        "type": [_coded("htn-followup", "高血压患者随访", "urn:x")],
        "period": {"start": "2026-01-10T09:00:00+08:00"},
    }
    older = {**visit, "period": {"start": "2025-10-10T09:00:00+08:00"}}
    rows = shape_follow_ups([visit, older], today=date(2026, 5, 1))
    assert rows == [
        {
            "programme": "htn",
            "visits": 2,
            "last": "2026-01-10",
            "gap": 90,
            "institution": "",
            "due": "2026-04-10",
            "overdue": True,
        }
    ]
    assert not shape_follow_ups([visit], today=date(2026, 2, 1))[0]["overdue"]


def test_vitals_and_labs_drop_repeats_and_chart() -> None:
    bp = {
        "code": _coded("85354-9", "血压"),
        "effectiveDateTime": "2026-01-10T09:00:00+08:00",
        "component": [
            {"code": _coded("8480-6"), "valueQuantity": {"value": 150}},
            {"code": _coded("8462-4"), "valueQuantity": {"value": 95}},
        ],
    }
    vitals = shape_vitals([bp, bp])
    assert vitals["latest"][0]["value"] == "150/95" and len(vitals["pressure"]) == 1
    figure = bp_figure(vitals["pressure"], title="血压", systolic="收缩压", diastolic="舒张压")
    assert figure["data"][0]["y"] == [150] and figure["layout"]["shapes"][0]["y0"] == 140
    glucose = {
        "code": _coded("1558-6", "空腹血糖"),
        "valueQuantity": {"value": 7.2, "unit": "mmol/L"},
        "interpretation": [{"coding": [{"code": "H"}]}],
        "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}],
    }
    labs = shape_labs(
        [
            {**glucose, "effectiveDateTime": "2026-02-01T09:00:00+08:00"},
            {**glucose, "effectiveDateTime": "2026-02-01T09:00:00+08:00"},
            {**glucose, "effectiveDateTime": "2026-01-01T09:00:00+08:00", "valueQuantity": {"value": 5.0}},
        ]
    )
    assert (
        len(labs) == 1
        and labs[0]["latest"] == "7.2"
        and labs[0]["flag"] == "H"
        and labs[0]["range"] == "3.9–6.1"
    )
    assert [p["value"] for p in labs[0]["series"]] == [5.0, 7.2]
    assert lab_figure(labs[0], title="空腹血糖")["layout"]["shapes"][0]["y1"] == 6.1


def test_a_visit_recorded_twice_is_one_row() -> None:
    row = {
        "start": "2026-01-01 09:00",
        "institution": "一院",
        "class_code": "AMB",
        "reason": "",
        "doctor": "王",
    }
    merged = merge_encounters([row, {**row, "reason": "高血压", "doctor": ""}, {**row, "class_code": "IMP"}])
    assert len(merged) == 2 and merged[0]["reason"] == "高血压" and merged[0]["doctor"] == "王"


def test_the_resident_index_groups_records_without_a_shared_id_number() -> None:
    patients = [
        {
            "id": "a",
            "name": [{"text": "黄红英"}],
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.3", "value": "1"}],
        },
        {"id": "b", "name": [{"text": "黄红英"}]},
        {"id": "c", "name": [{"text": "黄红英"}]},
    ]
    rows = group_people(patients, {}, {"a": "m1", "b": "m1"})
    assert [(r["id"], r["records"]) for r in rows] == [("a", 2), ("c", 1)]
