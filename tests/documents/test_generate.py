"""Generating every shared-document type from the FHIR store: the synthetic FHIR of real visits, stored through
the FHIR service, then read back by the generator (rhip.documents.generate) and its FHIR operation $cda.

The visits come from a small synthetic region (the same parameters as var/ex-small). What the generator does
not produce — an imaging report with its order, an allergy, a family history, a blood type — is added here.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from lxml import etree

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.cda.errors import DocumentContentMissing, UnknownDocumentType, WrongDocumentSubject
from rhip.cda.schema import validate
from rhip.cda.write import RENDERERS
from rhip.core.errors import ResourceNotFound
from rhip.db.migrate import upgrade
from rhip.documents.generate import RepositoryReader, generate
from rhip.fhir.rest.messages import FhirRequest
from rhip.synth.run import Options, synthesize
from rhip.xmlsafe import parse_xml

NS = {"v3": "urn:hl7-org:v3"}
NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
REFERRAL = "3457005"


def _load(folder: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for path in sorted(folder.glob("*.ndjson"))
        for line in path.read_bytes().splitlines()
    ]


def _patient_of(resource: dict[str, Any]) -> str:
    ref = (resource.get("subject") or resource.get("patient") or {}).get("reference", "")
    return ref.partition("/")[2] if ref.startswith("Patient/") else ""


def _pick(resources: list[dict[str, Any]]) -> dict[str, str]:
    """An Encounter id for each kind of visit a document type is made from."""
    encounters = [r for r in resources if r["resourceType"] == "Encounter"]
    kinds = {e["id"]: (e["class"]["code"], e["type"][0]["coding"][0]["code"]) for e in encounters}
    lab_visits = {
        r["encounter"]["reference"].partition("/")[2]
        for r in resources
        if r["resourceType"] == "DiagnosticReport" and r.get("encounter")
    }
    referrals = [
        r["encounter"]["reference"].partition("/")[2]
        for r in resources
        if r["resourceType"] == "ServiceRequest"
        and any(c.get("code") == REFERRAL for cat in r.get("category", ()) for c in cat.get("coding", ()))
    ]
    notifiable = [
        r["encounter"]["reference"].partition("/")[2]
        for r in resources
        if r["resourceType"] == "Condition"
        and any(c.get("system") == "urn:rhip:cs:notifiable-disease" for c in r["code"].get("coding", ()))
    ]

    def first(test: Any) -> str:
        found = sorted(eid for eid, kind in kinds.items() if test(eid, kind))
        assert found, "the synthetic region lacks a visit the test needs"
        return str(found[0])

    return {
        "outpatient": first(lambda e, k: k == ("AMB", "outpatient") and e in lab_visits),
        "inpatient": first(lambda e, k: k[0] == "IMP" and e in lab_visits),
        "htn": first(lambda e, k: k[1] == "htn-followup"),
        "dm": first(lambda e, k: k[1] == "dm-followup"),
        "immunization": first(lambda e, k: k[1] == "immunization"),
        "referral": sorted(referrals)[0],
        "notifiable": sorted(notifiable)[0],
    }


def _extras(patient: str, encounter: str, org: str) -> list[dict[str, Any]]:
    """An imaging report with its result and order, an allergy, a family history and a blood type."""
    subject = {"reference": f"Patient/{patient}"}
    visit = {"reference": f"Encounter/{encounter}"}
    return [
        {
            "resourceType": "ServiceRequest",
            "id": "order-ct-1",
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.24", "value": "SQ2025000001"}],
            "status": "completed",
            "intent": "order",
            "code": {"text": "胸部CT平扫"},
            "subject": subject,
            "encounter": visit,
        },
        {
            "resourceType": "Observation",
            "id": "obs-ct-1",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "imaging",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": "http://loinc.org", "code": "24627-2", "display": "胸部CT"}],
                "text": "胸部CT",
            },
            "subject": subject,
            "encounter": visit,
            "valueString": "右肺下叶见斑片状高密度影。",
        },
        {
            "resourceType": "DiagnosticReport",
            "id": "rep-ct-1",
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.32", "value": "JC2025000001"}],
            "basedOn": [{"reference": "ServiceRequest/order-ct-1"}],
            "status": "final",
            "category": [
                {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}],
                    "text": "放射",
                }
            ],
            "code": {"coding": [{"system": "http://loinc.org", "code": "24627-2"}], "text": "胸部CT平扫"},
            "subject": subject,
            "encounter": visit,
            "issued": "2025-03-04T11:30:00+08:00",
            "performer": [{"reference": f"Organization/{org}"}],
            "result": [{"reference": "Observation/obs-ct-1"}],
            "conclusion": "右肺下叶肺炎。",
        },
        {
            "resourceType": "AllergyIntolerance",
            "id": "allergy-extra-1",
            "clinicalStatus": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                        "code": "active",
                    }
                ]
            },
            "category": ["medication"],
            "code": {"text": "青霉素类"},
            "patient": subject,
        },
        {
            "resourceType": "FamilyMemberHistory",
            "id": "fmh-extra-1",
            "status": "completed",
            "patient": subject,
            "relationship": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "FTH"}],
                "text": "父亲",
            },
            "condition": [{"code": {"text": "原发性高血压"}}],
        },
        {
            "resourceType": "Observation",
            "id": "obs-abo-1",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "882-1"}], "text": "ABO+Rh血型"},
            "subject": subject,
            "valueCodeableConcept": {"text": "A型 Rh阳性"},
        },
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, dict[str, str]]]:
    """A platform holding the chosen visits' patients with everything they have, and the registry they use."""
    out = tmp_path_factory.mktemp("region")
    synthesize(
        Options(out=out, people=300, seed=1, start=date(2025, 1, 1), years=1, workers=1, formats=("fhir",))
    )
    resources = _load(out / "fhir")
    visits = _pick(resources)
    by_id = {r["id"]: r for r in resources}
    patients = {_patient_of(by_id[e]) for e in visits.values()}
    wanted = [r for r in resources if r["id"] in patients or _patient_of(r) in patients]
    referenced = {
        ref for r in wanted for ref in _references(r) if ref.split("/")[0] in ("Organization", "Practitioner")
    }
    wanted += [r for r in resources if f"{r['resourceType']}/{r['id']}" in referenced]
    # The roles at the patients' own institutions: a document without a named physician finds one there.
    homes = {by_id[p]["managingOrganization"]["reference"] for p in patients}
    roles = [
        r
        for r in resources
        if r["resourceType"] == "PractitionerRole" and r["organization"]["reference"] in homes
    ]
    staff = {r["practitioner"]["reference"] for r in roles}
    wanted += roles + [
        r for r in resources if f"Practitioner/{r['id']}" in staff and r["resourceType"] == "Practitioner"
    ]
    outpatient = by_id[visits["outpatient"]]
    wanted += _extras(
        _patient_of(outpatient),
        outpatient["id"],
        outpatient["serviceProvider"]["reference"].partition("/")[2],
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('db')}/rhip.db"
    settings = Settings(database_url=url, log_format="text")
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    platform = build_platform(settings, empi=False)
    unique = {f"{r['resourceType']}/{r['id']}": r for r in wanted}
    entries = [{"resource": r, "request": {"method": "PUT", "url": key}} for key, r in unique.items()]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    answer = platform.fhir.handle(
        FhirRequest("POST", "", body=orjson.dumps(bundle), headers={"content-type": "application/fhir+json"})
    )
    assert answer.status == 200, answer.body
    assert platform.parser is not None  # bootstrap registered $cda and $html (rhip.documents.fhir_operations)
    visits["patient"] = _patient_of(outpatient)
    try:
        yield platform, visits
    finally:
        platform.close()


def _references(resource: Any) -> Iterator[str]:
    if isinstance(resource, dict):
        for key, value in resource.items():
            if key == "reference" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(resource, list):
        for item in resource:
            yield from _references(item)


def reader(store: tuple[Platform, dict[str, str]]) -> RepositoryReader:
    platform, _ = store
    assert platform.parser is not None
    return RepositoryReader(platform.repository, platform.parser)


# Which visit each encounter-level type is generated from.
SOURCES = {
    "C0001": "inpatient",
    "C0002": "outpatient",
    "C0006": "outpatient",
    "C0007": "outpatient",
    "C0032": "inpatient",
    "C0053": "inpatient",
    "HSDC00.05": "referral",
    "HSDB04.01": "htn",
    "HSDB04.02": "dm",
    "HSDB03.01": "immunization",
    "HSDB03.02": "notifiable",
}


def test_every_type_has_a_source() -> None:
    assert set(SOURCES) | {"HSDA00.01"} == set(RENDERERS)


@pytest.mark.parametrize("code", sorted(SOURCES))
def test_each_type_is_generated_from_an_encounter_and_is_valid_cda(
    store: tuple[Platform, dict[str, str]], code: str
) -> None:
    platform, visits = store
    encounter_id = visits[SOURCES[code]]
    document = generate(reader(store), code, encounter_id=encounter_id, document_id=f"T-{code}", now=NOW)
    root = parse_xml(document)
    assert validate(root) == []
    assert root.xpath("string(/v3:ClinicalDocument/v3:code/@code)", namespaces=NS) == code
    assert root.xpath("string(/v3:ClinicalDocument/v3:id/@extension)", namespaces=NS) == f"T-{code}"
    encounter = platform.repository.read("Encounter", encounter_id).resource()
    patient = platform.repository.read(
        "Patient", encounter["subject"]["reference"].partition("/")[2]
    ).resource()
    name = root.xpath("string(//v3:recordTarget/v3:patientRole/v3:patient/v3:name)", namespaces=NS)
    assert name == patient["name"][0]["text"]
    custodian = root.xpath(
        "string(//v3:custodian//v3:representedCustodianOrganization/v3:name)", namespaces=NS
    )
    assert custodian and custodian == encounter["serviceProvider"].get("display", custodian)
    assert root.xpath("count(//v3:structuredBody/v3:component/v3:section/v3:entry)", namespaces=NS) >= 1


def test_personal_health_record_is_generated_from_a_patient(store: tuple[Platform, dict[str, str]]) -> None:
    _, visits = store
    document = generate(reader(store), "HSDA00.01", patient_id=visits["patient"], now=NOW)
    root = parse_xml(document)
    assert validate(root) == []
    assert not root.xpath("//v3:componentOf", namespaces=NS)
    # No generalPractitioner: the author is someone with a role at the patient's institution.
    assert root.xpath("string(//v3:author//v3:assignedPerson/v3:name)", namespaces=NS)
    assert root.xpath("string(//v3:author//v3:id/@extension)", namespaces=NS)
    assert root.xpath("//v3:observation[v3:code/@code='DE02.10.022.00']/v3:value/text()", namespaces=NS) == [
        "青霉素类（药物）"
    ]
    assert root.xpath("//v3:observation[v3:code/@code='DE04.50.001.00']/v3:value/@code", namespaces=NS) == [
        "1"
    ]
    assert root.xpath("//v3:observation[v3:code/@code='DE02.10.103.00']/v3:value/text()", namespaces=NS) == [
        "父亲：原发性高血压"
    ]


def test_exam_report_carries_the_report_order_and_findings(store: tuple[Platform, dict[str, str]]) -> None:
    _, visits = store
    root = parse_xml(generate(reader(store), "C0006", encounter_id=visits["outpatient"], now=NOW))
    role = "//v3:recordTarget/v3:patientRole"
    assert root.xpath(f"{role}/v3:id[@root='2.16.156.10011.1.32']/@extension", namespaces=NS) == [
        "JC2025000001"
    ]
    assert root.xpath(f"{role}/v3:id[@root='2.16.156.10011.1.24']/@extension", namespaces=NS) == [
        "SQ2025000001"
    ]
    impression = root.xpath("//v3:observation[v3:code/@code='DE04.50.132.00']/v3:value/text()", namespaces=NS)
    assert impression == ["右肺下叶肺炎。"]


def test_lab_report_lists_the_report_results(store: tuple[Platform, dict[str, str]]) -> None:
    _, visits = store
    rows = reader(store).search("DiagnosticReport", [("encounter", f"Encounter/{visits['outpatient']}")])
    lab = next(r for r in rows if r["category"][0]["coding"][0]["code"] == "LAB")
    root = parse_xml(
        generate(reader(store), "C0007", encounter_id=visits["outpatient"], report_id=lab["id"], now=NOW)
    )
    items = root.xpath("//v3:observation[v3:code/@code='DE04.30.019.00']", namespaces=NS)
    assert len(items) == len(lab["result"])


def test_referral_names_the_receiving_institution(store: tuple[Platform, dict[str, str]]) -> None:
    _, visits = store
    root = parse_xml(generate(reader(store), "HSDC00.05", encounter_id=visits["referral"], now=NOW))
    received = root.xpath("string(//v3:informationRecipient//v3:receivedOrganization/v3:name)", namespaces=NS)
    assert received


def test_immunization_report_finds_the_doses_of_the_visit(store: tuple[Platform, dict[str, str]]) -> None:
    _, visits = store
    root = parse_xml(generate(reader(store), "HSDB03.01", encounter_id=visits["immunization"], now=NOW))
    assert root.xpath("count(//v3:substanceAdministration)", namespaces=NS) >= 1


@pytest.mark.parametrize(
    ("code", "kwargs", "error"),
    [
        ("C0099", {"encounter_id": "x"}, UnknownDocumentType),
        ("HSDA00.01", {"encounter_id": "x"}, WrongDocumentSubject),
        ("C0002", {"patient_id": "x"}, WrongDocumentSubject),
        ("C0002", {"encounter_id": "no-such-visit"}, ResourceNotFound),
    ],
)
def test_bad_requests_are_refused_with_their_code(
    store: tuple[Platform, dict[str, str]], code: str, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        generate(reader(store), code, **kwargs)


def test_a_visit_without_what_the_type_needs_is_refused(store: tuple[Platform, dict[str, str]]) -> None:
    _, visits = store
    with pytest.raises(DocumentContentMissing, match="examination"):
        generate(reader(store), "C0006", encounter_id=visits["htn"])
    with pytest.raises(DocumentContentMissing, match="destination"):
        generate(reader(store), "HSDC00.05", encounter_id=visits["htn"])


# -- the FHIR operations -----------------------------------------------------------------------------
def _get(platform: Platform, path: str, **query: str) -> Any:
    return platform.fhir.handle(FhirRequest("GET", path, query=list(query.items())))


def test_cda_operation_answers_xml(store: tuple[Platform, dict[str, str]]) -> None:
    platform, visits = store
    answer = _get(platform, f"Encounter/{visits['outpatient']}/$cda", type="C0002")
    assert answer.status == 200
    assert answer.content_type == "application/xml"
    assert answer.headers["content-type"] == "application/xml"
    assert validate(parse_xml(answer.body)) == []
    on_patient = _get(platform, f"Patient/{visits['patient']}/$cda", type="HSDA00.01")
    assert on_patient.status == 200
    assert b"HSDA00.01" in on_patient.body


@pytest.mark.parametrize(
    ("path", "query", "status", "rhip_code"),
    [
        ("Encounter/{outpatient}/$cda", {}, 400, "RHIP-FHIR-0001"),
        ("Encounter/{outpatient}/$cda", {"type": "C0099"}, 400, "RHIP-CDA-0050"),
        ("Encounter/{outpatient}/$cda", {"type": "C0002", "colour": "red"}, 400, "RHIP-FHIR-0001"),
        ("Patient/{patient}/$cda", {"type": "C0002"}, 400, "RHIP-CDA-0053"),
        ("Encounter/{htn}/$cda", {"type": "C0006"}, 422, "RHIP-CDA-0051"),
        ("Encounter/nothing-here/$cda", {"type": "C0002"}, 404, "RHIP-FHIR-0002"),
    ],
)
def test_cda_operation_errors_are_operation_outcomes(
    store: tuple[Platform, dict[str, str]], path: str, query: dict[str, str], status: int, rhip_code: str
) -> None:
    platform, visits = store
    answer = _get(platform, path.format(**visits), **query)
    assert answer.status == status
    outcome = orjson.loads(answer.body)
    assert outcome["resourceType"] == "OperationOutcome"
    assert rhip_code in answer.body.decode()


def test_html_operation_renders_a_stored_document(store: tuple[Platform, dict[str, str]]) -> None:
    platform, visits = store
    document = generate(reader(store), "C0002", encounter_id=visits["outpatient"], now=NOW)
    data = base64.b64encode(document).decode()
    binary = {"resourceType": "Binary", "id": "cda-bin-1", "contentType": "text/xml", "data": data}
    platform.repository.update("Binary", "cda-bin-1", binary)
    reference = {
        "resourceType": "DocumentReference",
        "id": "cda-ref-1",
        "status": "current",
        "subject": {"reference": f"Patient/{visits['patient']}"},
        "content": [{"attachment": {"contentType": "text/xml", "url": "Binary/cda-bin-1"}}],
    }
    platform.repository.update("DocumentReference", "cda-ref-1", reference)
    for path in ("DocumentReference/cda-ref-1/$html", "Binary/cda-bin-1/$html"):
        answer = _get(platform, path, lang="en")
        assert answer.status == 200, answer.body
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src" not in answer.headers["content-security-policy"]
        page = answer.body.decode()
        assert page.startswith("<!DOCTYPE html>") and "Document date" in page
        assert etree.fromstring(answer.body, etree.HTMLParser()) is not None


def test_html_operation_refuses_what_is_not_cda(store: tuple[Platform, dict[str, str]]) -> None:
    platform, _ = store
    pdf = {"resourceType": "Binary", "id": "pdf-1", "contentType": "application/pdf", "data": "JVBERi0="}
    platform.repository.update("Binary", "pdf-1", pdf)
    answer = _get(platform, "Binary/pdf-1/$html")
    assert answer.status == 422
    assert b"RHIP-CDA-0061" in answer.body
