"""The clinician workbench's pure parts: the search box's reading of a query, the break-the-glass cookie,
and the shaping of a record's resources (no region needed)."""

from __future__ import annotations

import json
import stat
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from starlette.requests import Request

from rhip.security.context import acting_as
from rhip.security.principal import Principal, Role
from rhip.web.portal import clinician_glass, record
from rhip.web.portal.clinician_glass import (
    GLASS_SECONDS,
    MAX_GLASS,
    clean_reason,
    cookie_name,
    glass_cookie,
    glass_reason,
    load_key,
    stale_glass,
)
from rhip.web.portal.clinician_search import group_people, query_params
from rhip.web.portal.core import PortalError, Viewer
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


KEY = bytes(range(32))


def _viewer(role: Role = Role.CLINICIAN, name: str = "doc", session: str | None = "s1") -> Viewer:
    principal = Principal(subject=f"user:{name}", role=role, scopes=frozenset(), session=session)
    return Viewer(principal, "zh-CN", "t", None)


def _request(cookies: dict[str, str]) -> Request:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return Request({"type": "http", "headers": [(b"cookie", header.encode())]})


def test_the_glass_cookie_holds_the_reason_for_its_clinician_patient_and_time() -> None:
    doc = _viewer()
    name, value, max_age = glass_cookie(doc, "p1", "急诊抢救，需既往史", key=KEY, now=1_000_000.0)
    assert max_age == GLASS_SECONDS and name == "rhip_glass_p1" and value.isascii()
    request = _request({name: value})
    assert glass_reason(request, doc, "p1", key=KEY, now=1_000_100.0) == "急诊抢救，需既往史"
    expired = 1_000_000.0 + GLASS_SECONDS + 1
    assert glass_reason(request, doc, "p1", key=KEY, now=expired) is None
    name, value, _ = glass_cookie(doc, "p1", "急诊抢救，需既往史", key=KEY)
    request = _request({name: value})
    assert glass_reason(request, doc, "p1", key=KEY) == "急诊抢救，需既往史"
    assert glass_reason(request, _viewer(name="other"), "p1", key=KEY) is None  # another account
    assert glass_reason(request, _viewer(session="s2"), "p1", key=KEY) is None  # an earlier session
    assert glass_reason(request, _viewer(session=None), "p1", key=KEY) is None
    assert glass_reason(_request({"rhip_glass_p2": value}), doc, "p2", key=KEY) is None  # another patient
    assert glass_reason(request, _viewer(Role.PUBLIC_HEALTH, "doc"), "p1", key=KEY) is None  # clinicians only
    assert glass_reason(request, doc, "p1", key=bytes(32)) is None  # another key
    tampered = value.rsplit(".", 1)[0] + "." + "0" * 32
    assert glass_reason(_request({name: tampered}), doc, "p1", key=KEY) is None


@pytest.mark.parametrize("pid", ["a b", "a;b=c", "病人", "", "x" * 65, "a/b"])
def test_a_glass_cookie_is_named_for_fhir_ids_only(pid: str) -> None:
    with pytest.raises(ValueError):
        cookie_name(pid)
    assert glass_reason(_request({}), _viewer(), pid, key=KEY) is None


def test_the_seal_key_is_one_file_every_worker_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    first = load_key(keys)
    path = keys / "portal-seal.key"
    assert len(first) == 32 and path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in keys.iterdir()] == ["portal-seal.key"]  # no temporary file left
    # another worker (or the server after a restart) reads the same key: a cookie of one opens on the other
    doc = _viewer()
    name, value, _ = glass_cookie(doc, "p1", "急诊抢救，需既往史", key=first)
    monkeypatch.setattr(clinician_glass, "_keys", {})
    assert load_key(keys) == first
    assert glass_reason(_request({name: value}), doc, "p1", key=load_key(keys)) == "急诊抢救，需既往史"
    # a key made elsewhere is not replaced
    monkeypatch.setattr(clinician_glass, "_keys", {})
    assert load_key(tmp_path / "other") != first
    path.write_bytes(b"short")
    monkeypatch.setattr(clinician_glass, "_keys", {})
    with pytest.raises(RuntimeError):
        load_key(keys)


def test_a_browser_keeps_at_most_twenty_glass_cookies() -> None:
    doc = _viewer()
    cookies = {}
    for i in range(MAX_GLASS + 5):
        name, value, _ = glass_cookie(doc, f"p{i}", "急诊抢救，需既往史", key=KEY, now=1_000_000.0 + i)
        cookies[name] = value
    request = _request({**cookies, "rhip_lang": "en"})
    expired = stale_glass(request, keep="new")
    assert sorted(n for n, _, _ in expired) == sorted(f"rhip_glass_p{i}" for i in range(6))
    assert all(v == "" and age == 0 for _, v, age in expired)
    kept = stale_glass(request, keep="p0")  # the patient's own cookie is replaced, not counted
    assert sorted(n for n, _, _ in kept) == sorted(f"rhip_glass_p{i}" for i in range(1, 6))
    # only the twenty most recent are honoured
    now = 1_000_100.0
    assert glass_reason(request, doc, "p0", key=KEY, now=now) is None
    assert glass_reason(request, doc, "p4", key=KEY, now=now) is None
    assert glass_reason(request, doc, "p5", key=KEY, now=now) == "急诊抢救，需既往史"


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


def test_chart_text_from_data_is_escaped() -> None:
    evil = '<a href="https://evil">x</a>'
    test = {"name": evil, "unit": "<b>mmol</b>", "series": [{"when": "2026-01-01 09:00", "value": 5.0}]}
    figure = lab_figure(test, title=evil + " & co")
    text = json.dumps(figure, ensure_ascii=False)
    assert "<a" not in text and "<b>" not in text and "https://evil" in text
    assert figure["data"][0]["name"] == '&lt;a href="https://evil"&gt;x&lt;/a&gt;'
    assert figure["layout"]["title"]["text"].endswith("&lt;/a&gt; &amp; co")
    assert figure["layout"]["yaxis"]["title"]["text"] == "&lt;b&gt;mmol&lt;/b&gt;"
    bp = bp_figure([], title="<i>血压</i>", systolic="<b>收缩压", diastolic="舒张压>")
    text = json.dumps(bp, ensure_ascii=False)
    assert "<" not in text and ">" not in text


class FakeRegion:
    """A Portal stand-in for record.person: Patients by id, the index's golden records, searches by
    identifier, and a resident's search of Patients (their scope)."""

    def __init__(
        self, patients: list[dict[str, Any]], golden: dict[str, dict[str, Any]] | None = None
    ) -> None:
        self.patients = {p["id"]: p for p in patients}
        self.golden = golden or {}
        self.searches: list[tuple[str, dict[str, Any]]] = []

    def fhir(
        self, method: str, path: str, query: Any = (), body: Any = None, *, missing_ok: bool = False
    ) -> Any:
        if path.endswith("/$empi-master"):
            pid = path.split("/")[1]
            if pid not in self.golden:
                raise PortalError(404, "error.not_found")
            return self.golden[pid]
        return self.patients.get(path.removeprefix("Patient/"))

    def search(self, resource_type: str, **params: Any) -> list[dict[str, Any]]:
        self.searches.append((resource_type, params))
        if "identifier" in params:
            number = str(params["identifier"]).partition("|")[2]
            return [p for p in self.patients.values() if record.identifier(p, ID_SYSTEM) == number]
        return list(self.patients.values())  # the resident's scope (in this stand-in: everything)


ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"


def _patient(pid: str, number: str = "110105194912310021") -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "identifier": [{"system": ID_SYSTEM, "value": number}]}


def _person(region: FakeRegion, principal: Principal, pid: str) -> record.Person:
    with acting_as(principal):
        return record.person(region, pid)  # type: ignore[arg-type]


def test_a_record_is_never_merged_by_a_shared_id_number() -> None:
    """A newborn registered under the parent's ID number is another person: without the resident index
    (public health may not ask it) the page shows the record asked for only."""
    region = FakeRegion([_patient("parent"), _patient("newborn"), _patient("parent-2")])
    officer = Principal(subject="user:cdc", role=Role.PUBLIC_HEALTH, scopes=frozenset())
    assert _person(region, officer, "parent").records == ("parent",)
    assert not [s for s in region.searches if "identifier" in s[1]]
    # with the index: its links, whatever the ID numbers say
    golden = {"id": "m1", "link": [{"other": {"reference": "Patient/parent-2"}}]}
    region = FakeRegion([_patient("parent"), _patient("newborn"), _patient("parent-2")], {"parent": golden})
    doctor = Principal(subject="user:doc", role=Role.CLINICIAN, scopes=frozenset())
    assert _person(region, doctor, "parent").records == ("parent", "parent-2")
    # the index has no master for it: the record alone
    region = FakeRegion([_patient("parent"), _patient("newborn")])
    assert _person(region, doctor, "parent").records == ("parent",)


def test_a_resident_sees_the_records_linked_to_their_own() -> None:
    region = FakeRegion([_patient("me"), _patient("me-2")])
    alone = Principal(subject="user:r", role=Role.RESIDENT, scopes=frozenset(), patients=("me",))
    assert _person(region, alone, "me").records == ("me", "me-2")
    # a parent with a child bound to the account: the records cannot be told apart, the one asked for only
    parent = Principal(subject="user:r", role=Role.RESIDENT, scopes=frozenset(), patients=("me", "child"))
    region = FakeRegion([_patient("me"), _patient("me-2"), _patient("child")])
    assert _person(region, parent, "me").records == ("me",)
    assert _person(region, parent, "child").records == ("child",)
