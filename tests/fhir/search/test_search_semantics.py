"""End-to-end search semantics through the REST layer, on SQLite and PostgreSQL.

A small fixed region (patients with Chinese and pinyin names, encounters at two institutions, vital signs
and labs, conditions, risk assessments, questionnaires) is loaded once per database; every case compares the
ids a search matches with the ids the FHIR R4 search specification and docs/fhir-api.md say it must match.

Times: values without an offset are read in Asia/Shanghai (UTC+8), so 2024-01-01T07:30:00+08:00 (o4) is on
2024-01-01 for a search without a zone even though it is 2023-12-31 in UTC.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from rhip.bootstrap.container import Platform
from rhip.fhir.rest.messages import FhirRequest, FhirResponse

BASE = "http://localhost/fhir"  # the platform's public base URL (see conftest.py)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ID_CARD = "urn:oid:2.16.156.10011.1.3"  # 居民身份证
HEALTH_RECORD = "urn:oid:2.16.156.10011.1.2"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
TAGS = "urn:example:tags"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
PROFILES = "http://example.org/fhir/StructureDefinition"
QUESTIONNAIRES = "http://example.org/fhir/Questionnaire"
REMOTE_P3 = "http://other.example.org/fhir/Patient/p3"  # Patient p3 of another server: not our p3
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def _blood_pressure(oid: str, subject: str, when: str, systolic: int, diastolic: int, encounter: str) -> Any:
    def component(code: str, display: str, value: int) -> Any:
        return {
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        }

    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {
            "coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure panel"}],
            "text": "血压",
        },
        "subject": {"reference": subject},
        "encounter": {"reference": encounter},
        "effectiveDateTime": when,
        "component": [
            component("8480-6", "Systolic blood pressure", systolic),
            component("8462-4", "Diastolic blood pressure", diastolic),
        ],
    }


def _encounter(eid: str, patient: str, org: str, period: dict[str, str], cls: str = "AMB") -> Any:
    return {
        "resourceType": "Encounter",
        "id": eid,
        "status": "finished" if "end" in period else "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
        "subject": {"reference": f"Patient/{patient}"},
        "serviceProvider": {"reference": f"Organization/{org}"},
        "period": period,
    }


def _observation(oid: str, coding: dict[str, str], subject: Any, **more: Any) -> Any:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": more.pop("status", "final"),
        "code": {"coding": [coding], **({"text": more.pop("text")} if "text" in more else {})},
        "subject": subject,
        **more,
    }


def _quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": value, "unit": unit}
    if code is not None:
        q |= {"system": UCUM, "code": code}
    return q


DATA: list[Any] = [
    {
        "resourceType": "Organization",
        "id": "org1",
        "name": "北京协和医院",
        "alias": ["Peking Union Medical College Hospital"],
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.20", "value": "PUMCH"}],
        "active": True,
    },
    {
        "resourceType": "Organization",
        "id": "org2",
        "name": "朝阳区社区卫生服务中心",
        "partOf": {"reference": "Organization/org1"},
    },
    {
        "resourceType": "Practitioner",
        "id": "pr1",
        "name": [{"text": "刘芳", "family": "刘", "given": ["芳"]}],
        "identifier": [{"system": "urn:example:staff", "value": "D001"}],
    },
    {
        "resourceType": "Practitioner",
        "id": "pr2",
        "name": [{"text": "Chen, Jie", "family": "Chen", "given": ["Jie"]}],
    },
    {
        "resourceType": "Patient",
        "id": "p1",
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">王伟</div>'},
        "active": True,
        "gender": "male",
        "birthDate": "1980-05-12",
        "name": [{"text": "王伟", "family": "王", "given": ["伟"]}, {"family": "Wang", "given": ["Wei"]}],
        "identifier": [
            {
                "system": ID_CARD,
                "value": "110101198005120011",
                "type": {"coding": [{"system": V2_0203, "code": "NI"}], "text": "居民身份证"},
            },
            {"system": HEALTH_RECORD, "value": "HR-0001"},
        ],
        "telecom": [
            {"system": "phone", "value": "13800000001"},
            {"system": "email", "value": "wangwei@example.cn"},
        ],
        "address": [{"city": "北京市", "district": "朝阳区"}],
        "generalPractitioner": [{"reference": "Practitioner/pr1"}],
        "managingOrganization": {"reference": "Organization/org1"},
    },
    {
        "resourceType": "Patient",
        "id": "p2",
        "active": False,
        "gender": "female",
        "birthDate": "1992-11-03",
        "name": [{"text": "李娜", "family": "李", "given": ["娜"]}, {"family": "Li", "given": ["Na"]}],
        "identifier": [{"system": ID_CARD, "value": "110101199211030022"}],
        "telecom": [{"system": "phone", "value": "13900000002"}],
        "generalPractitioner": [{"reference": "Organization/org2"}],
    },
    {
        "resourceType": "Patient",
        "id": "p3",
        "gender": "male",
        "birthDate": "1975",
        "name": [{"text": "张伟", "family": "张", "given": ["伟"]}, {"family": "Zhang", "given": ["Wei"]}],
        "identifier": [{"value": "NOSYS-3"}],
    },
    {
        "resourceType": "Patient",
        "id": "p4",
        "meta": {
            "tag": [{"system": TAGS, "code": "vip"}],
            "profile": [f"{PROFILES}/cn-patient"],
            "security": [{"system": CONFIDENTIALITY, "code": "R"}],
            "source": "http://his.example.cn/fhir",
        },
        "gender": "other",
        "birthDate": "2001-02-28",
        "name": [{"family": "Müller", "given": ["José"]}],
    },
    {
        "resourceType": "Patient",
        "id": "p5",
        "meta": {
            "tag": [{"system": TAGS, "code": "test"}],
            "profile": [f"{PROFILES}/cn-patient-child"],
            "source": "http://lis.example.cn/fhir#abc",
        },
        "gender": "female",
        "birthDate": "1980-05",
        "name": [{"family": "Wangxiao", "given": ["Mei"]}],
    },
    {"resourceType": "Group", "id": "g1", "type": "person", "actual": True},
    _encounter("e1", "p1", "org1", {"start": "2024-03-01T09:00:00+08:00", "end": "2024-03-01T11:00:00+08:00"})
    | {"participant": [{"individual": {"reference": "Practitioner/pr1"}}]},
    _encounter("e2", "p1", "org2", {"start": "2024-02-01", "end": "2024-02-10"}, "IMP"),
    _encounter("e3", "p2", "org1", {"start": "2024-03-10T08:00:00+08:00"}),
    _blood_pressure("o1", "Patient/p1", "2024-03-01T10:00:00+08:00", 150, 95, "Encounter/e1"),
    _blood_pressure("o2", "Patient/p2", "2024-03-15T09:30:00Z", 120, 80, "Encounter/e3"),
    _observation(
        "o3",
        {"system": LOINC, "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"},
        {"reference": "Patient/p1"},
        encounter={"reference": "Encounter/e2"},
        effectivePeriod={"start": "2024-02-01", "end": "2024-02-10"},
        valueQuantity=_quantity(5.6, "mmol/L", "mmol/L"),
    ),
    _observation(
        "o4",
        {"system": LOINC, "code": "8867-4", "display": "Heart rate"},
        {"reference": "Patient/p3"},
        text="心率",
        effectiveDateTime="2024-01-01T07:30:00+08:00",
        valueQuantity=_quantity(72, "beats/minute", "/min"),
    ),
    _observation(
        "o5",
        {"code": "weight-local", "display": "体重"},
        {"reference": "Patient/p2"},
        status="amended",
        effectiveDateTime="2024",
        valueQuantity=_quantity(70, "kg"),
    ),
    _observation(
        "o6",
        {"system": LOINC, "code": "8867-4"},
        {"reference": "Group/g1"},
        dataAbsentReason={
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}
            ]
        },
    ),
    _observation(
        "o7",
        {"system": "urn:example:local", "code": "8867-4"},
        {"reference": f"{BASE}/Patient/p3"},
        status="preliminary",
        effectiveDateTime="2024-03-01T10:00:00.5Z",
        valueQuantity=_quantity(100, "mg", "mg"),
    ),
    _observation(
        "o8",
        {"system": LOINC, "code": "8867-4"},
        {"reference": REMOTE_P3},
        valueQuantity=_quantity(60, "beats/minute", "/min"),
    ),
    _observation(
        "o9",
        {"system": LOINC, "code": "8480-6"},
        {"identifier": {"system": ID_CARD, "value": "110101199211030022"}},
        valueQuantity=_quantity(145, "mmHg", "mm[Hg]"),
    ),
    {
        "resourceType": "Condition",
        "id": "c1",
        "subject": {"reference": "Patient/p1"},
        "encounter": {"reference": "Encounter/e1"},
        "code": {
            "coding": [{"system": ICD10, "code": "I10", "display": "Essential (primary) hypertension"}],
            "text": "高血压",
        },
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "onsetDateTime": "2020-06",
    },
    {
        "resourceType": "Condition",
        "id": "c2",
        "subject": {"reference": "Patient/p2"},
        "code": {"coding": [{"system": ICD10, "code": "E11", "display": "Type 2 diabetes mellitus"}]},
        "onsetPeriod": {"start": "2019-01-01", "end": "2021-12-31"},
    },
    {
        "resourceType": "Condition",
        "id": "c3",
        "subject": {"reference": "Patient/p3"},
        "code": {"coding": [{"system": ICD10, "code": "I10"}]},
    },
    *(
        {
            "resourceType": "RiskAssessment",
            "id": rid,
            "status": "final",
            "subject": {"reference": f"Patient/{pid}"},
            "prediction": [{"probabilityDecimal": probability}],
        }
        for rid, pid, probability in (("r1", "p1", 0.25), ("r2", "p2", 100), ("r3", "p3", 100.4))
    ),
    *(
        {"resourceType": "Questionnaire", "id": qid, "status": "active", "url": url}
        for qid, url in (
            ("q1", f"{QUESTIONNAIRES}/phq-9"),
            ("q2", f"{QUESTIONNAIRES}/phq-9/v2"),
            ("q3", "http://example.org/fhir"),
        )
    ),
]


@pytest.fixture(scope="module")
def plat(module_platform: Platform) -> Platform:
    """The platform with DATA loaded, plus a Practitioner renamed (pr3) and one deleted (pr4)."""
    repo = module_platform.repository
    for resource in DATA:
        repo.update(resource["resourceType"], resource["id"], resource)
    repo.update(
        "Practitioner", "pr3", {"resourceType": "Practitioner", "id": "pr3", "name": [{"family": "Oldname"}]}
    )
    repo.update(
        "Practitioner", "pr3", {"resourceType": "Practitioner", "id": "pr3", "name": [{"family": "Newname"}]}
    )
    repo.update(
        "Practitioner", "pr4", {"resourceType": "Practitioner", "id": "pr4", "name": [{"family": "Gone"}]}
    )
    repo.delete("Practitioner", "pr4")
    return module_platform


# -- helpers --------------------------------------------------------------------------------------


def pairs(query: str) -> list[tuple[str, str]]:
    """``a=1&b=2`` → [("a", "1"), ("b", "2")], values taken literally (no percent-decoding)."""
    out = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            out.append((name, value))
    return out


def request(
    plat: Platform,
    path: str,
    query: str | list[tuple[str, str]] = "",
    headers: Mapping[str, str] | None = None,
) -> FhirResponse:
    items = pairs(query) if isinstance(query, str) else query
    return plat.fhir.handle(FhirRequest("GET", path, items, dict(headers or {}), b"", BASE))


def search(
    plat: Platform,
    path: str,
    query: str | list[tuple[str, str]] = "",
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The searchset Bundle of a successful search."""
    response = request(plat, path, query, headers)
    assert response.body is not None
    body: dict[str, Any] = json.loads(response.body)
    assert response.status == 200, body
    assert body["resourceType"] == "Bundle"
    assert body["type"] == "searchset"
    return body


def entries(bundle: dict[str, Any], mode: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def matched(bundle: dict[str, Any]) -> list[str]:
    """Ids of the matches, in Bundle order."""
    return [r["id"] for r in entries(bundle, "match")]


def included(bundle: dict[str, Any]) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in entries(bundle, "include")}


def ids(plat: Platform, path: str, query: str) -> set[str]:
    """The set of matched ids, checking that none is listed twice."""
    found = matched(search(plat, path, query))
    assert len(found) == len(set(found)), found
    return set(found)


def error(plat: Platform, path: str, query: str, headers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The OperationOutcome of a search that must answer 400."""
    response = request(plat, path, query, headers)
    assert response.body is not None
    body: dict[str, Any] = json.loads(response.body)
    assert response.status == 400, body
    assert body["resourceType"] == "OperationOutcome"
    return body


def follow(plat: Platform, url: str) -> dict[str, Any]:
    """GET a link of a Bundle."""
    parts = urlsplit(url)
    assert url.startswith(BASE + "/")
    return search(plat, parts.path.removeprefix(urlsplit(BASE).path + "/"), parse_qsl(parts.query))


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((lk["url"] for lk in bundle["link"] if lk["relation"] == relation), None)


def cases(*rows: tuple[str, str, set[str]]) -> Any:
    return pytest.mark.parametrize(("path", "query", "expected"), rows, ids=[f"{p}?{q}" for p, q, _ in rows])


ALL_OBS = {f"o{i}" for i in range(1, 10)}
ALL_PATIENTS = {"p1", "p2", "p3", "p4", "p5"}

# -- string ---------------------------------------------------------------------------------------


@cases(
    ("Patient", "name=wang", {"p1", "p5"}),
    ("Patient", "name=WANG", {"p1", "p5"}),
    ("Patient", "name=ｗａｎｇ", {"p1", "p5"}),
    ("Patient", "name=Wangx", {"p5"}),
    ("Patient", "name=王", {"p1"}),
    ("Patient", "name=王伟", {"p1"}),
    ("Patient", "name=伟", {"p1", "p3"}),
    ("Patient", "name=ang", set()),
    ("Patient", "name:exact=Wang", {"p1"}),
    ("Patient", "name:exact=wang", set()),
    ("Patient", "name:exact=Wangx", set()),
    ("Patient", "name:exact=王伟", {"p1"}),
    ("Patient", "name:contains=ang", {"p1", "p3", "p5"}),
    ("Patient", "name:contains=XIAO", {"p5"}),
    ("Patient", "name:contains=伟", {"p1", "p3"}),
    ("Patient", "family=zh", {"p3"}),
    ("Patient", "given=wei", {"p1", "p3"}),
    ("Patient", "name=jose", {"p4"}),
    ("Patient", "name=JOSÉ", {"p4"}),
    ("Patient", "family=muller", {"p4"}),
    ("Patient", "family=Mül", {"p4"}),
    ("Patient", "family:exact=Müller", {"p4"}),
    ("Patient", "family:exact=Muller", set()),
    ("Patient", "address-city=北京", {"p1"}),
    ("Patient", "address=朝阳", {"p1"}),
    ("Patient", "name=wei,na", {"p1", "p2", "p3"}),
    ("Patient", "name=wei&name=zhang", {"p3"}),
    ("Patient", "name:missing=true", set()),
    ("Patient", "name:contains=%", set()),
    ("Patient", "name:contains=_", set()),
    ("Patient", "address:missing=true", {"p2", "p3", "p4", "p5"}),
    ("Practitioner", "name=刘", {"pr1"}),
    ("Practitioner", "name=chen", {"pr2"}),
    ("Practitioner", r"name=chen\, j", {"pr2"}),
    ("Practitioner", r"name=nobody,chen", {"pr2"}),
    # Only current versions are searched: pr3 was renamed from Oldname to Newname, pr4 was deleted.
    ("Practitioner", "name=oldname", set()),
    ("Practitioner", "name=newname", {"pr3"}),
    ("Practitioner", "name=gone", set()),
    ("Practitioner", "_id=pr3,pr4", {"pr3"}),
    ("Organization", "name=北京协和", {"org1"}),
    ("Organization", "name=peking", {"org1"}),
)
def test_string(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


# -- token ----------------------------------------------------------------------------------------


@cases(
    ("Patient", "identifier=110101198005120011", {"p1"}),
    ("Patient", f"identifier={ID_CARD}|110101198005120011", {"p1"}),
    ("Patient", f"identifier={HEALTH_RECORD}|110101198005120011", set()),
    ("Patient", f"identifier={ID_CARD}|", {"p1", "p2"}),
    ("Patient", "identifier=|NOSYS-3", {"p3"}),
    ("Patient", "identifier=|110101198005120011", set()),
    ("Patient", f"identifier:of-type={V2_0203}|NI|110101198005120011", {"p1"}),
    ("Patient", f"identifier:of-type={V2_0203}|NI|110101199211030022", set()),
    ("Patient", "identifier:text=居民身份证", {"p1"}),
    ("Patient", "identifier:missing=true", {"p4", "p5"}),
    ("Patient", "gender=male", {"p1", "p3"}),
    ("Patient", "gender=male,female", {"p1", "p2", "p3", "p5"}),
    ("Patient", "gender:not=male", {"p2", "p4", "p5"}),
    ("Patient", "active=true", {"p1"}),
    ("Patient", "active=false", {"p2"}),
    ("Patient", "active:not=true", {"p2", "p3", "p4", "p5"}),
    ("Patient", "active:missing=true", {"p3", "p4", "p5"}),
    ("Patient", "active:missing=false", {"p1", "p2"}),
    ("Patient", "telecom=13800000001", {"p1"}),
    ("Patient", "phone=13800000001", {"p1"}),
    ("Patient", "email=wangwei@example.cn", {"p1"}),
    ("Patient", "phone=wangwei@example.cn", set()),
    ("Patient", "telecom=phone|13900000002", {"p2"}),
    ("Patient", "telecom=email|13900000002", set()),
    ("Observation", "code=8867-4", {"o4", "o6", "o7", "o8"}),
    ("Observation", f"code={LOINC}|8867-4", {"o4", "o6", "o8"}),
    ("Observation", "code=|weight-local", {"o5"}),
    ("Observation", f"code={LOINC}|", {"o1", "o2", "o3", "o4", "o6", "o8", "o9"}),
    ("Observation", f"code:not={LOINC}|8867-4", {"o1", "o2", "o3", "o5", "o7", "o9"}),
    ("Observation", f"code={LOINC}|8480-6", {"o9"}),
    ("Observation", "code:text=heart", {"o4"}),
    ("Observation", "code:text=心率", {"o4"}),
    ("Observation", "code:text=体重", {"o5"}),
    ("Observation", "code:text=blood pressure", {"o1", "o2"}),
    ("Observation", "code:text=BLOOD", {"o1", "o2"}),
    ("Observation", "code:text=血压", {"o1", "o2"}),
    ("Observation", "combo-code=8480-6", {"o1", "o2", "o9"}),
    ("Observation", "status=final", {"o1", "o2", "o3", "o4", "o6", "o8", "o9"}),
    ("Observation", "status:not=final", {"o5", "o7"}),
    ("Observation", "status=amended,preliminary", {"o5", "o7"}),
    ("Observation", "category=vital-signs", {"o1", "o2"}),
    ("Condition", "code=I10", {"c1", "c3"}),
    ("Condition", "code:text=高血压", {"c1"}),
    ("Condition", "clinical-status=active", {"c1"}),
    ("Organization", "identifier=PUMCH", {"org1"}),
)
def test_token(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


# -- resource parameters --------------------------------------------------------------------------


@cases(
    ("Patient", "_id=p1", {"p1"}),
    ("Patient", "_id=p1,p2,nonexistent", {"p1", "p2"}),
    ("Patient", "_id=p1&_id=p2", set()),
    ("Patient", "_id=p1&gender=female", set()),
    ("Patient", "_tag=vip", {"p4"}),
    ("Patient", f"_tag={TAGS}|vip", {"p4"}),
    ("Patient", f"_tag={TAGS}|", {"p4", "p5"}),
    ("Patient", "_tag:not=vip", {"p1", "p2", "p3", "p5"}),
    ("Patient", "_security=R", {"p4"}),
    ("Patient", f"_security={CONFIDENTIALITY}|R", {"p4"}),
    ("Patient", f"_profile={PROFILES}/cn-patient", {"p4"}),
    ("Patient", f"_profile:below={PROFILES}", {"p4", "p5"}),
    ("Patient", f"_profile:above={PROFILES}/cn-patient/extra", {"p4"}),
    ("Patient", "_profile:missing=true", {"p1", "p2", "p3"}),
    ("Patient", "_source=http://his.example.cn/fhir", {"p4"}),
    ("Patient", "_source=http://lis.example.cn/fhir#abc", {"p5"}),
)
def test_resource_parameters(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


def test_last_updated(plat: Platform) -> None:
    stamps = {r["id"]: r["meta"]["lastUpdated"] for r in entries(search(plat, "Patient"), "match")}
    assert set(stamps) == ALL_PATIENTS
    assert ids(plat, "Patient", "_lastUpdated=lt2000-01-01") == set()
    assert ids(plat, "Patient", "_lastUpdated=gt2000-01-01") == ALL_PATIENTS
    year = stamps["p1"][:4]
    assert ids(plat, "Patient", f"_lastUpdated={year}") | ids(plat, "Patient", f"_lastUpdated=gt{year}") == (
        ALL_PATIENTS
    )
    # lastUpdated carries milliseconds: eq matches that millisecond, gt what was written after it.
    third = stamps["p3"]
    assert ids(plat, "Patient", f"_lastUpdated={third}") == {p for p, s in stamps.items() if s == third}
    assert ids(plat, "Patient", f"_lastUpdated=gt{third}") == {p for p, s in stamps.items() if s > third}
    assert ids(plat, "Patient", f"_lastUpdated=le{third}") == {p for p, s in stamps.items() if s <= third}


# -- date -----------------------------------------------------------------------------------------


@cases(
    # Patient.birthDate: p1 1980-05-12, p2 1992-11-03, p3 1975, p4 2001-02-28, p5 1980-05
    ("Patient", "birthdate=1980", {"p1", "p5"}),
    ("Patient", "birthdate=1980-05", {"p1", "p5"}),
    ("Patient", "birthdate=1980-05-12", {"p1"}),
    ("Patient", "birthdate=eq1980-05-12", {"p1"}),
    ("Patient", "birthdate=ne1980-05-12", {"p2", "p3", "p4", "p5"}),
    ("Patient", "birthdate=gt1980-05-12", {"p2", "p4", "p5"}),
    ("Patient", "birthdate=ge1980-05-12", {"p1", "p2", "p4", "p5"}),
    ("Patient", "birthdate=lt1980-05-12", {"p3", "p5"}),
    ("Patient", "birthdate=le1980-05-12", {"p1", "p3", "p5"}),
    ("Patient", "birthdate=sa1980-05-12", {"p2", "p4"}),
    ("Patient", "birthdate=eb1980-05-12", {"p3"}),
    ("Patient", "birthdate=ge1980&birthdate=lt1993", {"p1", "p2", "p5"}),
    ("Patient", "birthdate=1975,2001-02", {"p3", "p4"}),
    ("Patient", "birthdate:missing=false", ALL_PATIENTS),
    # Observation.effective (UTC): o1 2024-03-01T02:00:00Z, o2 2024-03-15T09:30:00Z, o3 Shanghai days
    # 2024-02-01..10, o4 2023-12-31T23:30:00Z, o5 the year 2024 in Shanghai, o7 2024-03-01T10:00:00.5Z
    ("Observation", "date=2024-03-01", {"o1", "o7"}),
    ("Observation", "date=2024-03-01T10:00:00+08:00", {"o1"}),
    ("Observation", "date=2024-03-01T02:00:00Z", {"o1"}),
    ("Observation", "date=2024-03-01T10:00", {"o1"}),
    ("Observation", "date=2024-03-01T10:00:00Z", {"o7"}),
    ("Observation", "date=2024-01-01", {"o4"}),
    ("Observation", "date=2023-12-31", set()),
    ("Observation", "date=2023-12-31T23:30:00Z", {"o4"}),
    ("Observation", "date=2023", set()),
    ("Observation", "date=2024", {"o1", "o2", "o3", "o4", "o5", "o7"}),
    ("Observation", "date=2024-02", {"o3"}),
    ("Observation", "date=2024-02-05", set()),
    ("Observation", "date=ne2024-02-05", {"o1", "o2", "o3", "o4", "o5", "o7"}),
    ("Observation", "date=gt2024-02-05", {"o1", "o2", "o3", "o5", "o7"}),
    ("Observation", "date=ge2024-02-05", {"o1", "o2", "o3", "o5", "o7"}),
    ("Observation", "date=lt2024-02-05", {"o3", "o4", "o5"}),
    ("Observation", "date=le2024-02-05", {"o3", "o4", "o5"}),
    ("Observation", "date=sa2024-02-05", {"o1", "o2", "o7"}),
    ("Observation", "date=eb2024-02-05", {"o4"}),
    ("Observation", "date=sa2024-01-31", {"o1", "o2", "o3", "o7"}),
    ("Observation", "date=eb2024-02-11", {"o3", "o4"}),
    ("Observation", "date=gt2024-03-15T09:30:00Z", {"o5"}),
    ("Observation", "date=ge2024-03-15T09:30:00Z", {"o2", "o5"}),
    ("Observation", "date=lt2024", set()),
    ("Observation", "date=lt2024-01-01T00:00:00Z", {"o4", "o5"}),
    ("Observation", "date=ge2024-03-01&date=lt2024-04", {"o1", "o2", "o5", "o7"}),
    ("Observation", "date:missing=true", {"o6", "o8", "o9"}),
    # Encounter.period: e1 2024-03-01 09:00-11:00 (+08:00), e2 2024-02-01..10, e3 from 2024-03-10T08:00+08:00 on
    ("Encounter", "date=2024-03-01", {"e1"}),
    ("Encounter", "date=2024-03", {"e1"}),
    ("Encounter", "date=2024-02", {"e2"}),
    ("Encounter", "date=2024-03-12", set()),
    ("Encounter", "date=gt2030", {"e3"}),
    ("Encounter", "date=lt2024-03-10", {"e1", "e2"}),
    ("Encounter", "date=ge2024-03-10", {"e3"}),
    ("Encounter", "date=sa2024-02-20", {"e1", "e3"}),
    ("Encounter", "date=eb2024-02-20", {"e2"}),
    ("Encounter", "date=ne2024-03", {"e2", "e3"}),
    # Condition onset: c1 2020-06, c2 2019-01-01..2021-12-31, c3 none
    ("Condition", "onset-date=2020", {"c1"}),
    ("Condition", "onset-date=2020-06-15", set()),
    ("Condition", "onset-date=lt2019-06", {"c2"}),
    ("Condition", "onset-date=eq2019", set()),
    ("Condition", "onset-date=ne2020", {"c2"}),
    ("Condition", "onset-date=ge2021", {"c2"}),
    ("Condition", "onset-date:missing=true", {"c3"}),
)
def test_date(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


def test_date_approximately(plat: Platform) -> None:
    # ap: within 10% of the gap between now and the date; how far that reaches depends on today, but
    # exact and overlapping values match, and values decades away do not.
    found = ids(plat, "Patient", "birthdate=ap1980-05-12")
    assert {"p1", "p5"} <= found
    assert not found & {"p2", "p4"}


# -- number and quantity --------------------------------------------------------------------------


@cases(
    # RiskAssessment probability: r1 0.25, r2 100, r3 100.4
    ("RiskAssessment", "probability=100", {"r2", "r3"}),
    ("RiskAssessment", "probability=100.0", {"r2"}),
    ("RiskAssessment", "probability=1e2", {"r2", "r3"}),
    ("RiskAssessment", "probability=0.25", {"r1"}),
    ("RiskAssessment", "probability=0.2", set()),
    ("RiskAssessment", "probability=0.25,100.0", {"r1", "r2"}),
    ("RiskAssessment", "probability=gt99", {"r2", "r3"}),
    ("RiskAssessment", "probability=ge100", {"r2", "r3"}),
    ("RiskAssessment", "probability=lt100", {"r1"}),
    ("RiskAssessment", "probability=le0.25", {"r1"}),
    ("RiskAssessment", "probability=ne100", {"r1"}),
    ("RiskAssessment", "probability=ap100", {"r2", "r3"}),
    ("RiskAssessment", "probability=ap90", set()),
    ("RiskAssessment", "probability=sa0.25", {"r2", "r3"}),
    ("RiskAssessment", "probability=eb100", {"r1"}),
    ("RiskAssessment", "probability=gt0.1&probability=lt100", {"r1"}),
    ("RiskAssessment", "probability:missing=false", {"r1", "r2", "r3"}),
    # Observation.valueQuantity: o3 5.6 mmol/L, o4 72 /min, o5 70 kg (unit only), o7 100 mg, o8 60 /min,
    # o9 145 mm[Hg]; o1 and o2 have values in components only.
    ("Observation", "value-quantity=5.6", {"o3"}),
    ("Observation", f"value-quantity=5.6|{UCUM}|mmol/L", {"o3"}),
    ("Observation", "value-quantity=5.6||mmol/L", {"o3"}),
    ("Observation", f"value-quantity=5.6|{UCUM}|mg", set()),
    ("Observation", "value-quantity=gt50", {"o4", "o5", "o7", "o8", "o9"}),
    ("Observation", "value-quantity=gt50||kg", {"o5"}),
    ("Observation", f"value-quantity=lt80|{UCUM}|/min", {"o4", "o8"}),
    ("Observation", "value-quantity=ge72||/min", {"o4"}),
    ("Observation", "value-quantity=70||kg", {"o5"}),
    ("Observation", f"value-quantity=70|{UCUM}|kg", set()),
    ("Observation", "value-quantity=le5.6", {"o3"}),
    ("Observation", "value-quantity=ne72", {"o3", "o5", "o7", "o8", "o9"}),
    ("Observation", "value-quantity=ap75", {"o4", "o5"}),
    ("Observation", "value-quantity=sa100", {"o9"}),
    ("Observation", "value-quantity=eb60", {"o3"}),
    ("Observation", "value-quantity=100,145", {"o7", "o9"}),
    ("Observation", "value-quantity:missing=true", {"o1", "o2", "o6"}),
    ("Observation", "component-value-quantity=gt140", {"o1"}),
    ("Observation", "component-value-quantity=80", {"o2"}),
    ("Observation", "combo-value-quantity=gt140", {"o1", "o9"}),
    ("Observation", "combo-value-quantity=72", {"o4"}),
)
def test_number_and_quantity(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


# -- reference and uri ----------------------------------------------------------------------------


@cases(
    ("Observation", "subject=Patient/p1", {"o1", "o3"}),
    ("Observation", "subject=p1", {"o1", "o3"}),
    ("Observation", "subject:Patient=p1", {"o1", "o3"}),
    ("Observation", f"subject={BASE}/Patient/p1", {"o1", "o3"}),
    ("Observation", "subject=Patient/p1,Patient/p2", {"o1", "o2", "o3", "o5"}),
    ("Observation", "subject=Group/g1", {"o6"}),
    ("Observation", "subject:Group=g1", {"o6"}),
    ("Observation", "subject:Device=p1", set()),
    ("Observation", "patient=p1", {"o1", "o3"}),
    ("Observation", "patient=Patient/p1", {"o1", "o3"}),
    ("Observation", "patient=g1", set()),
    # patient is subject where it is a Patient: the Group subject (o6) and the identifier-only subject (o9)
    # give it no value.
    ("Observation", "patient:missing=true", {"o6", "o9"}),
    ("Observation", "encounter=e1", {"o1"}),
    ("Observation", "encounter=Encounter/e2", {"o3"}),
    ("Observation", "encounter:missing=true", {"o4", "o5", "o6", "o7", "o8", "o9"}),
    ("Observation", "encounter:missing=false", {"o1", "o2", "o3"}),
    ("Observation", f"subject:identifier={ID_CARD}|110101199211030022", {"o9"}),
    ("Observation", "subject:identifier=110101199211030022", {"o9"}),
    ("Observation", f"subject:identifier={ID_CARD}|110101198005120011", set()),
    ("Patient", "general-practitioner=Practitioner/pr1", {"p1"}),
    ("Patient", "general-practitioner=pr1", {"p1"}),
    ("Patient", "general-practitioner:Organization=org2", {"p2"}),
    ("Patient", "general-practitioner:Practitioner=org2", set()),
    ("Patient", "general-practitioner:missing=true", {"p3", "p4", "p5"}),
    ("Patient", "organization=org1", {"p1"}),
    ("Encounter", "service-provider=org1", {"e1", "e3"}),
    ("Encounter", "practitioner=pr1", {"e1"}),
    ("Encounter", "practitioner:missing=true", {"e2", "e3"}),
    ("Encounter", "participant=Practitioner/pr1", {"e1"}),
    ("Encounter", "patient=p1", {"e1", "e2"}),
    ("Organization", "partof=org1", {"org2"}),
    ("Organization", "partof:missing=true", {"org1"}),
    ("Questionnaire", f"url={QUESTIONNAIRES}/phq-9", {"q1"}),
    ("Questionnaire", "url=http://example.org", set()),
    ("Questionnaire", f"url:below={QUESTIONNAIRES}/phq-9", {"q1", "q2"}),
    ("Questionnaire", "url:below=http://example.org/fhir", {"q1", "q2", "q3"}),
    ("Questionnaire", f"url:above={QUESTIONNAIRES}/phq-9/v2", {"q1", "q2", "q3"}),
    ("Questionnaire", f"url:above={QUESTIONNAIRES}/phq-9", {"q1", "q3"}),
)
def test_reference_and_uri(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


@cases(
    # o8's subject is Patient/p3 *of another server*: it is no reference to this server's Patient/p3 (o4, and
    # o7 by its absolute URL on this server's base, are).
    ("Observation", "subject=Patient/p3", {"o4", "o7"}),
    ("Observation", "patient=p3", {"o4", "o7"}),
    ("Observation", f"subject={BASE}/Patient/p3", {"o4", "o7"}),
    ("Observation", f"subject={REMOTE_P3}", {"o8"}),
    ("Patient/p3/Observation", "", {"o4", "o7"}),
)
def test_references_to_another_server_are_not_local(
    plat: Platform, path: str, query: str, expected: set[str]
) -> None:
    assert ids(plat, path, query) == expected


def test_include_does_not_follow_a_reference_to_another_server(plat: Platform) -> None:
    bundle = search(plat, "Observation", "_id=o8&_include=Observation:subject")
    assert matched(bundle) == ["o8"]
    assert included(bundle) == set()


# -- composite ------------------------------------------------------------------------------------


@cases(
    ("Observation", f"code-value-quantity={LOINC}|2339-0$5.6", {"o3"}),
    ("Observation", f"code-value-quantity={LOINC}|2339-0$gt5", {"o3"}),
    ("Observation", "code-value-quantity=2339-0$lt5", set()),
    ("Observation", f"code-value-quantity={LOINC}|8480-6$gt140", {"o9"}),
    ("Observation", f"code-value-quantity={LOINC}|8867-4$72|{UCUM}|/min", {"o4"}),
    ("Observation", f"component-code-value-quantity={LOINC}|8480-6$gt140", {"o1"}),
    ("Observation", "component-code-value-quantity=8480-6$gt100", {"o1", "o2"}),
    ("Observation", "component-code-value-quantity=8462-4$ge80", {"o1", "o2"}),
    # The code and the value must be those of the same component: 150 is o1's systolic, not its diastolic.
    ("Observation", "component-code-value-quantity=8462-4$150", set()),
    ("Observation", "component-code-value-quantity=8462-4$gt100", set()),
    ("Observation", f"combo-code-value-quantity={LOINC}|8480-6$gt140", {"o1", "o9"}),
    ("Observation", f"combo-code-value-quantity={LOINC}|8480-6$gt140,{LOINC}|2339-0$5.6", {"o1", "o3", "o9"}),
    ("Observation", f"combo-code-value-quantity=8480-6$150|{UCUM}|mm[Hg]", {"o1"}),
    ("Observation", "combo-code-value-quantity=8480-6$150||mg", set()),
)
def test_composite(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


# -- chains and _has ------------------------------------------------------------------------------


@cases(
    ("Observation", "subject:Patient.name=王", {"o1", "o3"}),
    ("Observation", "subject.name=李", {"o2", "o5"}),
    ("Observation", "subject.name=wang", {"o1", "o3"}),
    ("Observation", "subject.name=王&subject.name=wei", {"o1", "o3"}),
    ("Observation", "patient.name=li", {"o2", "o5"}),
    ("Observation", "subject:Patient.gender=female", {"o2", "o5"}),
    ("Observation", "subject:Patient.birthdate=gt1990", {"o2", "o5"}),
    ("Observation", f"subject.identifier={ID_CARD}|110101198005120011", {"o1", "o3"}),
    ("Observation", "encounter.service-provider.name=北京协和", {"o1", "o2"}),
    ("Observation", "encounter.service-provider.name=peking", {"o1", "o2"}),
    ("Observation", "encounter.service-provider.name=朝阳", {"o3"}),
    ("Observation", "encounter.service-provider:Organization.name=朝阳", {"o3"}),
    ("Observation", "subject.general-practitioner.name=刘", {"o1", "o3"}),
    ("Observation", "encounter.class=IMP", {"o3"}),
    ("Observation", "subject:Patient._id=p1", {"o1", "o3"}),
    ("Observation", "subject:Patient.active:missing=false", {"o1", "o2", "o3", "o5"}),
    ("Patient", "general-practitioner.name=朝阳", {"p2"}),
    ("Patient", "general-practitioner:Practitioner.name=刘", {"p1"}),
    ("Encounter", "subject:Patient.name=李&service-provider.name=北京", {"e3"}),
    ("Condition", "encounter.date=2024-03-01", {"c1"}),
    # A modifier of the chained parameter applies on the target: Observations of patients not male.
    ("Observation", "subject:Patient.gender:not=male", {"o2", "o5"}),
)
def test_chain(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


@cases(
    ("Patient", f"_has:Observation:patient:code={LOINC}|85354-9", {"p1", "p2"}),
    ("Patient", "_has:Observation:patient:code=8480-6", set()),
    ("Patient", "_has:Observation:patient:combo-code=8480-6", {"p1", "p2"}),
    ("Patient", "_has:Observation:subject:date=2024-01-01", {"p3"}),
    ("Patient", "_has:Condition:patient:code=I10", {"p1", "p3"}),
    ("Patient", "_has:Observation:patient:_id=o1", {"p1"}),
    ("Patient", "_has:Condition:patient:code=I10,E11", {"p1", "p2", "p3"}),
    ("Patient", "_has:Condition:patient:code=I10&_has:Observation:patient:code=85354-9", {"p1"}),
    ("Patient", "_has:RiskAssessment:subject:probability=gt99", {"p2", "p3"}),
    ("Encounter", "_has:Condition:encounter:code=I10", {"e1"}),
    ("Group", "_has:Observation:subject:code=8867-4", {"g1"}),
    ("Group", "_has:Observation:patient:code=8867-4", set()),
    ("Patient", "_has:Encounter:patient:_has:Condition:encounter:code=I10", {"p1"}),
    ("Organization", "_has:Encounter:service-provider:_has:Observation:encounter:code=2339-0", {"org2"}),
    # Patients with an Observation whose code is not the blood pressure panel.
    ("Patient", f"_has:Observation:patient:code:not={LOINC}|85354-9", {"p1", "p2", "p3"}),
)
def test_has(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("Observation", "encounter.service-provider.partof.name=北京"),  # three levels
        ("Observation", "code.name=x"),  # not a reference
        ("Patient", "_has:Encounter:patient:_has:Observation:encounter:_has:Condition:encounter:code=I10"),
        ("Patient", "_has:Observation:code:code=8480-6"),
        ("Patient", "_has:Nonsense:patient:code=8480-6"),
    ],
)
def test_chains_refused(plat: Platform, path: str, query: str) -> None:
    error(plat, path, query)


# -- _include / _revinclude -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "matches", "includes"),
    [
        (
            "Observation",
            "code=85354-9&_include=Observation:patient",
            {"o1", "o2"},
            {"Patient/p1", "Patient/p2"},
        ),
        (
            "Observation",
            f"code={LOINC}|8867-4&_include=Observation:subject",
            {"o4", "o6", "o8"},
            {"Patient/p3", "Group/g1"},
        ),
        # Observation:patient is Observation.subject where it is a Patient: the Group is not included.
        (
            "Observation",
            f"code={LOINC}|8867-4&_include=Observation:patient",
            {"o4", "o6", "o8"},
            {"Patient/p3"},
        ),
        (
            "Observation",
            f"code={LOINC}|8867-4&_include=Observation:subject:Group",
            {"o4", "o6", "o8"},
            {"Group/g1"},
        ),
        (
            "Observation",
            "code=85354-9&_include=Observation:*",
            {"o1", "o2"},
            {"Patient/p1", "Patient/p2", "Encounter/e1", "Encounter/e3"},
        ),
        ("Patient", "_id=p1&_include=Patient:*", {"p1"}, {"Practitioner/pr1", "Organization/org1"}),
        (
            "Patient",
            "_id=p1,p2&_include=Patient:general-practitioner:Organization",
            {"p1", "p2"},
            {"Organization/org2"},
        ),
        # Without :iterate an include applies to the matches only.
        (
            "Observation",
            "_id=o3&_include=Observation:encounter&_include=Encounter:service-provider",
            {"o3"},
            {"Encounter/e2"},
        ),
        (
            "Observation",
            "_id=o3&_include=Observation:encounter&_include:iterate=Encounter:service-provider",
            {"o3"},
            {"Encounter/e2", "Organization/org2"},
        ),
        (
            "Observation",
            "_id=o3&_include=Observation:encounter&_include:iterate=Encounter:service-provider"
            "&_include:iterate=Organization:partof",
            {"o3"},
            {"Encounter/e2", "Organization/org2", "Organization/org1"},
        ),
        ("Patient", "_id=p1&_revinclude=Observation:patient", {"p1"}, {"Observation/o1", "Observation/o3"}),
        ("Patient", "_id=p1&_revinclude=Observation:*", {"p1"}, {"Observation/o1", "Observation/o3"}),
        (
            "Patient",
            "_id=p1&_revinclude=Observation:patient&_revinclude=Condition:patient",
            {"p1"},
            {"Observation/o1", "Observation/o3", "Condition/c1"},
        ),
        (
            "Patient",
            "_id=p1&_revinclude=Encounter:patient&_revinclude:iterate=Observation:encounter",
            {"p1"},
            {"Encounter/e1", "Encounter/e2", "Observation/o1", "Observation/o3"},
        ),
        ("Group", "_id=g1&_revinclude=Observation:patient", {"g1"}, set()),
        ("Group", "_id=g1&_revinclude=Observation:subject", {"g1"}, {"Observation/o6"}),
        ("Organization", "_id=org1&_revinclude=Organization:partof", {"org1"}, {"Organization/org2"}),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_include(plat: Platform, path: str, query: str, matches: set[str], includes: set[str]) -> None:
    bundle = search(plat, path, query)
    assert set(matched(bundle)) == matches
    assert included(bundle) == includes
    assert not entries(bundle, "outcome"), entries(bundle, "outcome")
    # Included resources are not matches: the total counts the matches only.
    assert bundle.get("total", len(matches)) == len(matches)


# -- _sort ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "order"),
    [
        ("Patient", "_sort=birthdate", ["p3", "p5", "p1", "p2", "p4"]),
        ("Patient", "_sort=_id", ["p1", "p2", "p3", "p4", "p5"]),
        ("Patient", "_sort=-_id", ["p5", "p4", "p3", "p2", "p1"]),
        ("Patient", "_sort=gender,-birthdate", ["p2", "p5", "p1", "p3", "p4"]),
        ("Patient", "_sort=-gender,birthdate", ["p4", "p3", "p1", "p5", "p2"]),
        ("Patient", "_sort=family&_id=p4,p5", ["p4", "p5"]),
        ("Patient", "_sort=-family&_id=p4,p5", ["p5", "p4"]),
        ("RiskAssessment", "_sort=-probability", ["r3", "r2", "r1"]),
        ("Questionnaire", "_sort=url", ["q3", "q1", "q2"]),
        ("Observation", f"code={LOINC}|8867-4&_sort=value-quantity", ["o8", "o4", "o6"]),
        ("Observation", f"code={LOINC}|8867-4&_sort=-value-quantity", ["o4", "o8", "o6"]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_sort(plat: Platform, path: str, query: str, order: list[str]) -> None:
    assert matched(search(plat, path, query)) == order


@pytest.mark.parametrize(
    ("query", "first"),
    [("_sort=active", ["p2", "p1"]), ("_sort=-active", ["p1", "p2"])],
)
def test_sort_puts_resources_without_the_value_last(plat: Platform, query: str, first: list[str]) -> None:
    found = matched(search(plat, "Patient", query))
    assert found[:2] == first
    assert set(found[2:]) == {"p3", "p4", "p5"}


@pytest.mark.parametrize(("query", "descending"), [("_sort=date", False), ("_sort=-date", True)])
def test_sort_by_date(plat: Platform, query: str, descending: bool) -> None:
    found = matched(search(plat, "Observation", query))
    assert len(found) == len(ALL_OBS)
    # Among point-in-time values the order is chronological; resources without a date come last.
    points = ["o4", "o1", "o7", "o2"]
    assert [o for o in found if o in points] == (points[::-1] if descending else points)
    assert set(found[-3:]) == {"o6", "o8", "o9"}


def test_sort_by_last_updated(plat: Platform) -> None:
    for query, descending in (("_sort=_lastUpdated", False), ("_sort=-_lastUpdated", True)):
        stamps = [r["meta"]["lastUpdated"] for r in entries(search(plat, "Patient", query), "match")]
        assert len(stamps) == len(ALL_PATIENTS)
        assert stamps == sorted(stamps, reverse=descending)


# -- paging, _count, _total -----------------------------------------------------------------------


def _all_pages(plat: Platform, path: str, query: str) -> tuple[list[str], list[dict[str, Any]]]:
    bundle = search(plat, path, query)
    pages = [bundle]
    found = matched(bundle)
    while (url := link(bundle, "next")) is not None:
        assert len(pages) < 20, "paging does not end"
        bundle = follow(plat, url)
        pages.append(bundle)
        found += matched(bundle)
    return found, pages


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("_count=2", ALL_OBS),
        ("_count=1&status=final", ALL_OBS - {"o5", "o7"}),
        ("_count=3", ALL_OBS),
        ("_count=4&code:not=85354-9", ALL_OBS - {"o1", "o2"}),
        ("_count=2&_sort=-date", ALL_OBS),
        ("_count=2&_sort=value-quantity&status=final", ALL_OBS - {"o5", "o7"}),
    ],
)
def test_paging_visits_every_match_once(plat: Platform, query: str, expected: set[str]) -> None:
    count = int(dict(pairs(query))["_count"])
    found, pages = _all_pages(plat, "Observation", query)
    assert sorted(found) == sorted(expected)
    assert all(len(matched(p)) == count for p in pages[:-1])
    assert 1 <= len(matched(pages[-1])) <= count
    # Every page link keeps the search's own parameters.
    for page in pages:
        for relation in ("self", "next", "previous"):
            url = link(page, relation)
            if url is not None:
                assert set(pairs(query)) <= set(parse_qsl(urlsplit(url).query))


def test_sorted_paging_keeps_the_order(plat: Platform) -> None:
    everything = matched(search(plat, "Observation", "_sort=-date,_id"))
    found, _ = _all_pages(plat, "Observation", "_sort=-date,_id&_count=2")
    assert found == everything


def test_previous_link_returns_the_page_before(plat: Platform) -> None:
    first = search(plat, "Observation", "_count=3")
    next_url = link(first, "next")
    assert next_url is not None
    second = follow(plat, next_url)
    previous = link(second, "previous")
    assert previous is not None
    assert matched(follow(plat, previous)) == matched(first)


def test_includes_follow_the_page(plat: Platform) -> None:
    found, pages = _all_pages(plat, "Observation", "code=85354-9&_include=Observation:patient&_count=1")
    assert sorted(found) == ["o1", "o2"]
    subjects = {"o1": "Patient/p1", "o2": "Patient/p2"}
    for page in pages:
        (match,) = matched(page)
        assert included(page) == {subjects[match]}


def test_total(plat: Platform) -> None:
    # The whole result on the first page: the total is given.
    assert search(plat, "Observation", "status=final")["total"] == 7
    # _total=accurate asks for it when there are several pages.
    bundle = search(plat, "Observation", "status=final&_count=2&_total=accurate")
    assert bundle["total"] == 7
    assert len(matched(bundle)) == 2
    assert search(plat, "Patient", "_count=1&_total=accurate&gender=male")["total"] == 2


def test_count_caps_the_page(plat: Platform) -> None:
    assert len(matched(search(plat, "Observation", "_count=4"))) == 4
    assert len(matched(search(plat, "Observation", "_count=5000"))) == len(ALL_OBS)
    body = error(plat, "Observation", "_count=-1")
    assert body["issue"][0]["expression"] == ["_count"]


# -- _summary and _elements -----------------------------------------------------------------------


def test_summary_count(plat: Platform) -> None:
    bundle = search(plat, "Observation", "status=final&_summary=count")
    assert bundle["total"] == 7
    assert entries(bundle, "match") == []


def _p1(plat: Platform, query: str) -> dict[str, Any]:
    (patient,) = entries(search(plat, "Patient", f"_id=p1&{query}"), "match")
    return patient


def test_summary_true(plat: Platform) -> None:
    patient = _p1(plat, "_summary=true")
    assert SUBSETTED in patient["meta"]["tag"]
    # Summary elements of R4 Patient are kept; generalPractitioner and text are not summary elements.
    assert {"id", "name", "gender", "birthDate", "identifier", "active"} <= set(patient)
    assert "generalPractitioner" not in patient
    assert "text" not in patient


def test_summary_text(plat: Platform) -> None:
    patient = _p1(plat, "_summary=text")
    assert SUBSETTED in patient["meta"]["tag"]
    assert patient["text"]["div"].endswith("王伟</div>")
    assert patient["id"] == "p1"
    assert not {"name", "gender", "birthDate", "identifier"} & set(patient)


def test_summary_data(plat: Platform) -> None:
    patient = _p1(plat, "_summary=data")
    assert SUBSETTED in patient["meta"]["tag"]
    assert "text" not in patient
    assert {"name", "gender", "generalPractitioner", "managingOrganization"} <= set(patient)


def test_summary_false_is_the_whole_resource(plat: Platform) -> None:
    patient = _p1(plat, "_summary=false")
    assert SUBSETTED not in patient["meta"].get("tag", [])
    assert {"text", "name", "generalPractitioner"} <= set(patient)


def test_elements(plat: Platform) -> None:
    patient = _p1(plat, "_elements=birthDate,gender")
    assert SUBSETTED in patient["meta"]["tag"]
    assert patient["birthDate"] == "1980-05-12"
    assert patient["gender"] == "male"
    assert patient["id"] == "p1"
    assert not {"name", "identifier", "telecom", "text"} & set(patient)
    # Mandatory elements stay: Observation.status and Observation.code are 1..1.
    bundle = search(plat, "Observation", "_id=o3&_elements=subject")
    (obs,) = entries(bundle, "match")
    assert {"status", "code", "subject"} <= set(obs)
    assert not {"valueQuantity", "encounter", "effectivePeriod"} & set(obs)
    assert SUBSETTED in obs["meta"]["tag"]


# -- compartments ---------------------------------------------------------------------------------


@cases(
    ("Patient/p1/Observation", "", {"o1", "o3"}),
    ("Patient/p1/Observation", "code=2339-0", {"o3"}),
    ("Patient/p1/Observation", "code=8867-4", set()),
    ("Patient/p2/Observation", "", {"o2", "o5"}),
    ("Patient/p1/Condition", "", {"c1"}),
    ("Patient/p1/Encounter", "", {"e1", "e2"}),
    ("Patient/p1/Encounter", "date=2024-02", {"e2"}),
    ("Patient/p2/RiskAssessment", "", {"r2"}),
    ("Patient/p4/Observation", "", set()),
)
def test_compartment(plat: Platform, path: str, query: str, expected: set[str]) -> None:
    assert ids(plat, path, query) == expected


# -- POST _search ---------------------------------------------------------------------------------


def test_post_search(plat: Platform) -> None:
    response = plat.fhir.handle(
        FhirRequest(
            "POST",
            "Observation/_search",
            [("status", "final")],
            {"content-type": "application/x-www-form-urlencoded"},
            b"code=2339-0",
            BASE,
        )
    )
    assert response.status == 200
    assert response.body is not None
    assert matched(json.loads(response.body)) == ["o3"]


# -- unknown and invalid parameters ---------------------------------------------------------------


def test_unknown_parameter_is_ignored_and_reported_by_default(plat: Platform) -> None:
    for headers in ({}, {"prefer": "handling=lenient"}):
        bundle = search(plat, "Observation", f"nonsense=1&code={LOINC}|2339-0", headers)
        assert matched(bundle) == ["o3"]
        (outcome,) = entries(bundle, "outcome")
        assert outcome["resourceType"] == "OperationOutcome"
        assert any("nonsense" in issue["diagnostics"] for issue in outcome["issue"])
        assert all(issue["severity"] in ("warning", "information") for issue in outcome["issue"])
        # The self link holds only the parameters that were used.
        self_url = link(bundle, "self")
        assert self_url is not None
        assert "nonsense" not in self_url
        assert ("code", f"{LOINC}|2339-0") in parse_qsl(urlsplit(self_url).query)


@pytest.mark.parametrize(
    "query", ["nonsense=1&code=2339-0", "subject.nonsense=1", "_has:Observation:patient:x=1"]
)
def test_unknown_parameter_is_an_error_when_strict(plat: Platform, query: str) -> None:
    path = "Patient" if query.startswith("_has") else "Observation"
    body = error(plat, path, query, {"prefer": "handling=strict"})
    issue = body["issue"][0]
    assert issue["severity"] == "error"
    assert issue["details"]["coding"][0]["code"] == "RHIP-FHIR-0012"


def test_strict_handling_of_a_valid_search(plat: Platform) -> None:
    bundle = search(plat, "Observation", "code=2339-0", {"prefer": "handling=strict"})
    assert matched(bundle) == ["o3"]
    assert entries(bundle, "outcome") == []


def test_unknown_resource_type(plat: Platform) -> None:
    response = request(plat, "Nonsense", "name=x")
    assert response.status == 404
    assert response.body is not None
    assert json.loads(response.body)["resourceType"] == "OperationOutcome"


def test_unknown_parameter_strict_names_it(plat: Platform) -> None:
    body = error(plat, "Observation", "nonsense=1", {"prefer": "handling=strict"})
    assert body["issue"][0]["expression"] == ["nonsense"]


@pytest.mark.parametrize(
    ("path", "query", "name"),
    [
        ("Patient", "birthdate=2024-02-30", "birthdate"),
        ("Patient", "birthdate=2024-03-01T10:00:00+25:00", "birthdate"),
        ("RiskAssessment", "probability=many", "probability"),
        ("Observation", "value-quantity=x||mg", "value-quantity"),
        ("Patient", "name=", "name"),
        ("Patient", "name:sounds-like=wang", "name:sounds-like"),
        ("Patient", "gender:missing=maybe", "gender:missing"),
        ("Observation", "subject:Patient=Group/g1", "subject:Patient"),
        ("Patient", "_sort=nonsense", "_sort"),
        ("Patient", "_summary=maybe", "_summary"),
    ],
)
def test_invalid_values_are_400_naming_the_parameter(
    plat: Platform, path: str, query: str, name: str
) -> None:
    # Even without handling=strict: a known parameter used wrongly is an error.
    body = error(plat, path, query)
    issue = body["issue"][0]
    assert issue["expression"] == [name]
    assert issue["details"]["coding"][0]["code"] == "RHIP-FHIR-0001"


@pytest.mark.parametrize(
    "query",
    [
        "code:in=http://loinc.org/vs/LG33055-1",
        "code:not-in=http://loinc.org/vs/LG33055-1",
        "code:above=8480-6",
        "code:below=8480-6",
    ],
)
def test_terminology_modifiers_are_not_supported(plat: Platform, query: str) -> None:
    body = error(plat, "Observation", query)
    assert body["issue"][0]["details"]["coding"][0]["code"] == "RHIP-FHIR-0013"


def test_missing_on_a_composite_is_refused(plat: Platform) -> None:
    body = error(plat, "Observation", "code-value-quantity:missing=true")
    assert "code-value-quantity" in json.dumps(body)
