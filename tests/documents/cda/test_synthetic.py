"""Every CDA document of the synthetic region reads, extracts, and gives back the FHIR data it was made from.

The synthetic FHIR (``var/ex-small/fhir``) is the ground truth the documents were rendered from
(docs/synthetic-data.md); each document type carries part of a visit, and what it carries must come back
unchanged: same codes, values, units, times, ranges, numbers. Skipped when var/ex-small is absent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest

from rhip.documents.cda import (
    CdaDocument,
    CdaRejected,
    ExtractContext,
    extract,
    read_document,
    visit_encounter,
)
from rhip.documents.cda import errors as e

from .truth import (
    EX_SMALL,
    Resource,
    Truth,
    condition_facts,
    documents,
    immunization_facts,
    medication_facts,
    observation_facts,
)

pytestmark = pytest.mark.skipif(not (EX_SMALL / "cda").is_dir(), reason="var/ex-small is absent (rhip synth)")
CONTEXT = ExtractContext(
    patient_ref="urn:uuid:p",
    encounter_ref="urn:uuid:e",
    organization_ref="urn:uuid:o",
    practitioner_ref="urn:uuid:a",
)
Facts = Callable[[Resource], tuple[Any, ...]]


def _kind(o: Resource) -> str:
    return str(o.get("category", [{}])[0].get("coding", [{}])[0].get("code", ""))


def vitals(rs: list[Resource]) -> list[Resource]:
    """The vital-sign Observations."""
    return [o for o in rs if _kind(o) == "vital-signs"]


def labs(rs: list[Resource]) -> list[Resource]:
    """The laboratory Observations."""
    return [o for o in rs if _kind(o) == "laboratory"]


def measured(rs: list[Resource]) -> list[Resource]:
    """Vital signs and laboratory results (not the follow-up findings the truth has no resource for)."""
    return [o for o in rs if _kind(o) in ("vital-signs", "laboratory")]


def everything(rs: list[Resource]) -> list[Resource]:
    """All of them."""
    return rs


def notifiable(rs: list[Resource]) -> list[Resource]:
    """The Conditions of notifiable cases."""
    return [c for c in rs if any("notifiable" in str(c2.get("system")) for c2 in c["code"]["coding"])]


# What each document type carries of its visit: resource type → which of the visit's resources.
CARRIED: dict[str, dict[str, Callable[[list[Resource]], list[Resource]]]] = {
    "C0002": {"Condition": everything, "Observation": measured, "MedicationRequest": everything},
    "C0007": {"Condition": everything},  # and the first report's results: test_lab_report
    "C0032": {"Condition": everything, "Observation": vitals},
    "C0053": {"Condition": everything, "Observation": labs, "MedicationRequest": everything},
    "HSDC00.05": {"Condition": everything, "Observation": measured, "MedicationRequest": everything},
    "HSDB04.01": {"Condition": everything, "Observation": measured, "MedicationRequest": everything},
    "HSDB04.02": {"Condition": everything, "Observation": measured, "MedicationRequest": everything},
    "HSDB03.02": {"Condition": notifiable, "Observation": vitals},
    "HSDB03.01": {},
}
FACTS: dict[str, Facts] = {
    "Condition": condition_facts,
    "Observation": observation_facts,
    "MedicationRequest": medication_facts,
}
# Condition.clinicalStatus a C0053 出院情况 can give back (好转 stands for remission and inactive alike).
SAME_STATUS = {
    "resolved": {"resolved"},
    "remission": {"remission", "inactive"},
    "active": {"active", "recurrence"},
}


@cache
def truth(institution: str) -> Truth:
    """The institution's ground truth (read once)."""
    return Truth(institution)


@cache
def read_all() -> tuple[list[tuple[str, str, CdaDocument, list[Resource]]], list[tuple[str, CdaRejected]]]:
    """Every document read and extracted, and the ones refused."""
    done, refused = [], []
    for institution, name, raw in documents():
        try:
            doc = read_document(raw)
        except CdaRejected as exc:
            refused.append((name, exc))
            continue
        done.append((institution, name, doc, extract(doc, CONTEXT)))
    return done, refused


def encounter_of(name: str) -> str:
    """The encounter id in ``<code>-<encounter id>.xml``."""
    return name.removesuffix(".xml").split("-", 1)[1]


def of_kind(rs: list[Resource], kind: str) -> list[Resource]:
    """The resources of one type."""
    return [r for r in rs if r["resourceType"] == kind]


def test_every_document_reads_and_extracts() -> None:
    done, refused = read_all()
    assert len(done) > 150
    assert {doc.header.code for _, _, doc, _ in done} == set(CARRIED)
    for _inst, name, doc, resources in done:
        assert resources, name
        assert doc.header.document_id.extension == name.removesuffix(".xml")
    # The synthetic writer leaves patientRole without an id when the patient has none of the ids the
    # document type asks for (and no ID card): such a document cannot be linked and is refused.
    for name, exc in refused:
        assert exc.code == e.PATIENT_ID, (name, exc)
    assert len(refused) <= 2


def test_extraction_gives_back_the_ground_truth() -> None:
    done, _ = read_all()
    compared: Counter[str] = Counter()
    for institution, name, doc, resources in done:
        visit = encounter_of(name)
        for kind, carried in CARRIED[doc.header.code].items():
            facts = FACTS[kind]
            got = Counter(
                facts(r)
                for r in (measured if kind == "Observation" else everything)(of_kind(resources, kind))
            )
            want = Counter(facts(r) for r in carried(truth(institution).of(visit, kind)))
            assert got == want, (name, kind, got - want, want - got)
            compared[kind] += sum(want.values())
    assert (
        compared["Condition"] > 100 and compared["Observation"] > 300 and compared["MedicationRequest"] > 100
    )


def test_discharge_state_gives_the_principal_diagnosis_status() -> None:
    done, _ = read_all()
    checked = 0
    for institution, name, doc, resources in done:
        if doc.header.code != "C0053":
            continue
        truth_conditions = {
            condition_facts(c): c for c in truth(institution).of(encounter_of(name), "Condition")
        }
        for condition in of_kind(resources, "Condition"):
            if "clinicalStatus" in condition:
                expected = truth_conditions[condition_facts(condition)]["clinicalStatus"]["coding"][0]["code"]
                assert expected in SAME_STATUS[condition["clinicalStatus"]["coding"][0]["code"]], name
                checked += 1
    assert checked > 20


def test_lab_report() -> None:
    done, _ = read_all()
    checked = 0
    for institution, name, doc, resources in done:
        if doc.header.code != "C0007":
            continue
        t = truth(institution)
        report = t.of(encounter_of(name), "DiagnosticReport")[0]
        wanted_ids = {r["reference"].removeprefix("Observation/") for r in report["result"]}
        results = [o for o in t.of(encounter_of(name), "Observation") if o["id"] in wanted_ids]
        got_obs = of_kind(resources, "Observation")
        assert Counter(map(observation_facts, got_obs)) == Counter(map(observation_facts, results)), name
        assert {o.get("issued") for o in got_obs} == {o["issued"] for o in results}
        (got,) = of_kind(resources, "DiagnosticReport")
        assert [i for i in got["identifier"] if i["system"].endswith(".1.33")] == report["identifier"]
        assert (got["issued"], got["effectiveDateTime"], got["code"]["text"]) == (
            report["issued"], report["effectiveDateTime"], report["code"]["text"],
        )  # fmt: skip
        assert len(got["result"]) == len(report["result"])
        checked += 1
    assert checked >= 1


def test_referral() -> None:
    done, _ = read_all()
    checked = 0
    for institution, name, doc, resources in done:
        if doc.header.code != "HSDC00.05":
            continue
        (want,) = truth(institution).of(encounter_of(name), "ServiceRequest")
        (got,) = of_kind(resources, "ServiceRequest")
        assert (got["status"], got["intent"]) == (want["status"], want["intent"])
        assert (
            "Organization/org-" + got["performer"][0]["identifier"]["value"]
            == want["performer"][0]["reference"]
        )
        assert got["performer"][0]["display"] == want["performer"][0]["display"]
        assert [c["coding"] for c in got["reasonCode"]] == [c["coding"] for c in want["reasonCode"]]
        # The document says when it was written (the end of the visit), not when the order was made.
        assert got["authoredOn"][:10] == want["authoredOn"][:10]
        checked += 1
    assert checked > 10


def test_immunization_report() -> None:
    done, _ = read_all()
    checked = 0
    for institution, _name, doc, resources in done:
        if doc.header.code != "HSDB03.01":
            continue
        given = {(immunization_facts(i)): i for i in truth(institution).immunizations}
        for got in of_kind(resources, "Immunization"):
            want = given[immunization_facts(got)]
            assert (got["recorded"], got["lotNumber"], got["primarySource"]) == (
                want["recorded"], want["lotNumber"], want["primarySource"],
            )  # fmt: skip
            checked += 1
    assert checked >= 1


def test_visit_encounter() -> None:
    done, _ = read_all()
    checked = Counter[str]()
    emergencies_unsaid = 0
    for institution, name, doc, resources in done:
        want = truth(institution).encounters.get(encounter_of(name))
        got = visit_encounter(doc, CONTEXT, resources)
        if doc.header.code == "HSDB03.01":
            assert got is None  # the report names no visit
            continue
        assert want is not None and got is not None, name
        assert got["identifier"][1] == want["identifier"][0]
        assert got["identifier"][0]["system"] == f"urn:rhip:visit:{institution}"
        assert got["period"] == want["period"], name
        if (want["class"]["code"], got["class"]["code"]) == ("EMER", "AMB"):
            # Only an emergency department's name or a 患者类型 entry says 急诊; a township centre's
            # 全科医疗科 does not, and the synthetic writer writes no 患者类型.
            assert "急诊" not in got["location"][0]["location"]["display"]
            emergencies_unsaid += 1
        else:
            assert got["class"]["code"] == want["class"]["code"], name
        assert got["location"][0]["location"]["display"] == want["location"][0]["location"]["display"]
        assert (
            got["participant"][0]["individual"]["display"] == want["participant"][0]["individual"]["display"]
        )
        dispo = want.get("hospitalization", {}).get("dischargeDisposition")
        if dispo:
            assert got["hospitalization"]["dischargeDisposition"]["coding"] == dispo["coding"]
        if doc.header.code == "C0032":
            admit = want["hospitalization"].get("admitSource", {}).get("text")
            assert got["hospitalization"].get("admitSource", {}).get("text") == admit
        if doc.header.code == "C0053":
            assert [r["coding"] for r in got["reasonCode"]] == [r["coding"] for r in want["reasonCode"]]
        if doc.header.code.startswith("HSDB04"):
            assert got["type"] == want["type"]
        checked[doc.header.code] += 1
    assert len(checked) == len(CARRIED) - 1
    assert emergencies_unsaid < sum(checked.values()) // 10
