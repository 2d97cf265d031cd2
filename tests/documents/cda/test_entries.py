"""Entry readers on small hand-made bodies: what each kind of entry becomes, and the edge cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rhip.documents.cda import ExtractContext, extract, read_document, transaction_entries, visit_encounter

GOLDEN = Path(__file__).parent / "golden"
HEAD, _, _ = (GOLDEN / "C0002-synthetic.xml").read_bytes().partition(b"<component><structuredBody>")
CTX = ExtractContext(patient_ref="Patient/p", encounter_ref="Encounter/e", source="urn:rhip:source:cda:t")
DE = 'codeSystem="2.16.156.10011.2.2.1"'


def document(*sections: str, code: str = "C0002", template: str = "2.16.156.10011.2.1.1.22") -> bytes:
    """The synthetic C0002 header (retyped as ``code``) over a body of the given sections."""
    head = HEAD.replace(b'code="C0002"', f'code="{code}"'.encode()).replace(
        b"2.16.156.10011.2.1.1.22", template.encode()
    )
    body = "".join(f"<component><section>{s}</section></component>" for s in sections)
    return (
        head + f"<component><structuredBody>{body}</structuredBody></component></ClinicalDocument>".encode()
    )


def obs(element: str, name: str, value: str, extra: str = "") -> str:
    """An entry with one observation of a data element."""
    return (
        f'<entry><observation classCode="OBS" moodCode="EVN"><code code="{element}" {DE} displayName="{name}"/>'
        f"{extra}{value}</observation></entry>"
    )


def resources(data: bytes) -> list[dict[str, Any]]:
    """What extraction gives."""
    return extract(read_document(data), CTX)


def test_no_known_allergy() -> None:
    for words in ("无", "否认药物及食物过敏史"):
        (allergy,) = resources(
            document(obs("DE02.10.022.00", "过敏史", f'<value xsi:type="ST">{words}</value>'))
        )
        assert allergy["resourceType"] == "AllergyIntolerance"
        assert allergy["code"]["coding"][0]["code"] == "716186003"
        assert "clinicalStatus" not in allergy
        assert allergy["patient"] == {"reference": "Patient/p"}


def test_medication_taken_is_a_statement_and_prescribed_a_request() -> None:
    def drug(mood: str, ids: str = "") -> str:
        return (
            f'<entry><substanceAdministration classCode="SBADM" moodCode="{mood}">{ids}<text>口服，每次1片</text>'
            '<statusCode code="active"/><effectiveTime xsi:type="IVL_TS"><low value="20250301"/></effectiveTime>'
            '<doseQuantity value="5" unit="mg"/><consumable><manufacturedProduct><manufacturedLabeledDrug>'
            '<code code="C09AA02" codeSystem="2.16.840.1.113883.6.73"/><name>依那普利片 5mg</name>'
            "</manufacturedLabeledDrug></manufacturedProduct></consumable></substanceAdministration></entry>"
        )

    taken, prescribed, numbered = resources(
        document(drug("EVN") + drug("INT") + drug("EVN", '<id root="2.16.156.10011.1.20" extension="CF1"/>'))
    )
    assert taken["resourceType"] == "MedicationStatement"
    assert (taken["status"], taken["effectiveDateTime"], taken["context"]) == (
        "active",
        "2025-03-01",
        {"reference": "Encounter/e"},
    )
    assert taken["dosage"][0]["doseAndRate"][0]["doseQuantity"] == {
        "value": 5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg",
    }  # fmt: skip
    assert (prescribed["resourceType"], prescribed["intent"], prescribed["authoredOn"]) == (
        "MedicationRequest", "order", "2025-03-01",
    )  # fmt: skip
    assert numbered["resourceType"] == "MedicationRequest"
    assert {"system": "urn:oid:2.16.156.10011.1.20", "value": "CF1"} in numbered["identifier"]


def test_blood_pressure_pairs_by_time() -> None:
    def bp(element: str, value: int, when: str) -> str:
        return obs(
            element,
            "",
            f'<value xsi:type="PQ" value="{value}" unit="mm[Hg]"/>',
            f'<effectiveTime value="{when}"/>',
        )

    morning, evening = "202503010800", "202503012000"
    out = resources(
        document(
            bp("DE04.10.174.00", 150, morning) + bp("DE04.10.176.00", 95, morning)
            + bp("DE04.10.174.00", 138, evening) + bp("DE04.10.176.00", 86, evening)
        )
    )  # fmt: skip
    assert [o["code"]["coding"][0]["code"] for o in out] == ["85354-9", "85354-9"]
    assert [[c["valueQuantity"]["value"] for c in o["component"]] for o in out] == [[150, 95], [138, 86]]
    assert out[1]["effectiveDateTime"] == "2025-03-01T20:00:00+08:00"
    assert out[1]["identifier"][0]["value"] == "component/section/entry[3]"


def test_unregistered_type_uses_the_shared_readers() -> None:
    dx = (
        '<entry><organizer classCode="CLUSTER" moodCode="EVN"><statusCode code="completed"/>'
        f'<component><observation classCode="OBS" moodCode="EVN"><code code="DE05.01.024.00" {DE}/>'
        '<value xsi:type="CD" code="J06.9" codeSystem="2.16.156.10011.2.3.3.11" displayName="急性上呼吸道感染"/>'
        "</observation></component></organizer></entry>"
    )
    (condition,) = resources(document(dx, code="C0004", template="2.16.156.10011.2.1.1.24"))
    assert condition["code"]["coding"][0]["code"] == "J06.9"
    assert condition["code"]["text"] == "急性上呼吸道感染"


def test_patient_type_and_complaint_reach_the_encounter() -> None:
    data = document(
        obs(
            "DE02.01.060.00",
            "患者类型代码",
            '<value xsi:type="CD" code="2" codeSystem="2.16.156.10011.2.3.1.271"/>',
        ),
        obs("DE04.01.119.00", "主诉", '<value xsi:type="ST">发热2天</value>'),
    )
    doc = read_document(data)
    encounter = visit_encounter(doc, CTX, extract(doc, CTX))
    assert encounter is not None
    assert encounter["class"]["code"] == "EMER"
    assert encounter["reasonCode"] == [{"text": "发热2天"}]


def test_transaction_entries() -> None:
    doc = read_document((GOLDEN / "C0007-synthetic.xml").read_bytes())
    entries = transaction_entries(doc, CTX)
    first, *rest = entries
    assert first["request"] == {
        "method": "PUT",
        "url": "Encounter?identifier=urn%3Arhip%3Avisit%3A510781H01%7CMZ2025101400000350003",
    }
    assert all(e["request"]["method"] == "POST" and "ifNoneExist" in e["request"] for e in rest)
    report = next(e for e in rest if e["resource"]["resourceType"] == "DiagnosticReport")
    results = {e["fullUrl"] for e in rest if e["resource"]["resourceType"] == "Observation"}
    assert {r["reference"] for r in report["resource"]["result"]} == results
    assert len({e["fullUrl"] for e in entries}) == len(entries)
