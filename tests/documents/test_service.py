"""The document registry: CDA documents checked, stored, registered and extracted in one transaction; found,
retrieved and replaced through the standard DocumentReference searches."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rhip.bootstrap.container import Platform
from rhip.core.errors import RhipError
from rhip.documents.bulk import import_documents
from rhip.documents.cda.errors import CdaRejected
from rhip.documents.model import DocumentConflict, DocumentQuery, DocumentReceipt, ReplacementRefused
from rhip.documents.service import DocumentService, RegistryConfig

from .conftest import (
    DOCUMENT_CODES,
    GOLDEN,
    ListSink,
    count,
    document_id,
    ex_small_documents,
    fhir_get,
    golden,
    new_version,
    search_ids,
    transaction,
    with_confidentiality,
)

ORG = "urn:oid:2.16.156.10011.1.5"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
TYPES = sorted(p.stem for p in GOLDEN.glob("*.xml"))


def test_a_document_is_registered_with_its_metadata_bytes_and_extracted_resources(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("C0002")
    receipt = registry.submit(raw, sender="510703H01", channel="cda")
    ref = fhir_get(docs_platform, f"DocumentReference/{receipt.document_reference_id}")
    assert ref["masterIdentifier"] == {"system": "urn:oid:2.16.156.10011.1.1", "value": document_id(raw)}
    assert ref["status"] == "current" and ref["docStatus"] == "final"
    assert ref["type"]["coding"] == [{"system": DOCUMENT_CODES, "code": "C0002", "display": "门（急）诊病历"}]
    assert ref["category"][0]["coding"][0]["code"] == "emr"
    assert ref["subject"] == {"reference": f"Patient/{receipt.patient_id}"}
    assert ref["date"].startswith("20") and ref["date"].endswith("+08:00")
    assert ref["securityLabel"][0]["coding"][0] == {
        "system": CONFIDENTIALITY,
        "code": "N",
        "display": "normal",
    }
    assert ref["meta"]["source"] == "urn:rhip:source:cda:510703H01"
    org_author, practitioner_author = ref["author"]
    assert org_author["identifier"] == {"system": ORG, "value": "510703H01"}
    assert practitioner_author["reference"].startswith("Practitioner/")
    assert ref["custodian"]["identifier"] == {"system": ORG, "value": "510703H01"}
    attachment = ref["content"][0]["attachment"]
    assert attachment["contentType"] == "text/xml"
    assert attachment["url"] == f"Binary/{receipt.binary_id}"
    assert attachment["size"] == len(raw)
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(raw).digest()).decode()
    assert attachment["title"] == "门（急）诊病历" and attachment["creation"]
    assert ref["content"][0]["format"]["code"] == "urn:oid:2.16.156.10011.2.1.1.22"
    assert ref["context"]["encounter"][0]["reference"].startswith("Encounter/")
    assert ref["context"]["period"]["start"]
    binary = fhir_get(docs_platform, f"Binary/{receipt.binary_id}")
    assert base64.b64decode(binary["data"]) == raw  # the original bytes, unchanged
    assert binary["contentType"] == "text/xml"
    assert binary["securityContext"] == {"reference": f"DocumentReference/{receipt.document_reference_id}"}
    assert receipt.extracted and all(r.split("/")[0] != "Patient" for r in receipt.extracted)
    for extracted in receipt.extracted:
        resource = fhir_get(docs_platform, extracted)
        assert resource["meta"]["source"] == "urn:rhip:source:cda:510703H01"
        subject = resource.get("subject") or resource.get("patient")
        assert subject == {"reference": f"Patient/{receipt.patient_id}"}
    patient = fhir_get(docs_platform, f"Patient/{receipt.patient_id}")
    org_id = org_author["reference"].split("/")[1]
    assert patient["managingOrganization"] == {"reference": f"Organization/{org_id}"}
    assert any(i["system"] == "urn:oid:2.16.156.10011.1.3" for i in patient["identifier"])
    organization = fhir_get(docs_platform, f"Organization/{org_id}")
    assert organization["identifier"] == [{"system": ORG, "value": "510703H01"}]


@pytest.mark.parametrize("code", TYPES)
def test_every_golden_type_is_registered(
    code: str, registry: DocumentService, docs_platform: Platform
) -> None:
    receipt = registry.submit(golden(code), sender="test", channel="cda")
    ref = fhir_get(docs_platform, f"DocumentReference/{receipt.document_reference_id}")
    assert ref["type"]["coding"][0]["code"] == code
    assert ref["category"][0]["coding"][0]["code"] == ("emr" if code.startswith("C") else "ehr")
    assert receipt.extracted, f"{code}: nothing extracted"


def test_submitting_a_document_again_creates_nothing(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("C0053")
    first = registry.submit(raw, sender="a", channel="cda")
    before = {t: count(docs_platform, t) for t in ("DocumentReference", "Binary", "Patient", "Condition")}
    again = registry.submit(raw, sender="a", channel="cda")
    assert again.document_reference_id == first.document_reference_id
    assert again.binary_id == first.binary_id and again.patient_id == first.patient_id
    assert {t: count(docs_platform, t) for t in before} == before


def test_the_same_id_with_other_bytes_is_refused_and_kept(
    registry: DocumentService, sink: ListSink, docs_platform: Platform
) -> None:
    raw = golden("C0002")
    registry.submit(raw, sender="a", channel="cda")
    changed = raw.replace(b"</ClinicalDocument>", b"<!-- amended --></ClinicalDocument>")
    with pytest.raises(DocumentConflict) as caught:
        registry.submit(changed, sender="510703H01", channel="hl7v3")
    assert caught.value.code == "RHIP-DOC-0002" and caught.value.http_status == 409
    assert [(k.channel, k.sender, k.raw, k.reason_code) for k in sink.kept] == [
        ("hl7v3", "510703H01", changed, "RHIP-DOC-0002")
    ]
    assert count(docs_platform, "DocumentReference") == 1


def test_a_malformed_document_is_kept_with_its_bytes_and_raised(
    registry: DocumentService, sink: ListSink
) -> None:
    raw = b"<ClinicalDocument xmlns='urn:hl7-org:v3'><id root='1.2'/>"
    with pytest.raises(CdaRejected):
        registry.submit(raw, sender="his", channel="cda")
    assert sink.kept[0].raw == raw and sink.kept[0].reason_code.startswith("RHIP-CDA-")
    assert sink.kept[0].content_type == "text/xml"


def test_a_document_without_a_template_is_refused(registry: DocumentService, sink: ListSink) -> None:
    raw = golden("C0002").replace(b'<templateId root="2.16.156.10011.2.1.1.22"/>', b"", 1)
    with pytest.raises(RhipError) as caught:
        registry.submit(raw, sender="his", channel="cda")
    assert caught.value.code in ("RHIP-CDA-0005", "RHIP-CDA-0006")
    assert len(sink.kept) == 1


def test_a_new_version_in_the_set_supersedes_the_current_one(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("C0032")
    v1 = registry.submit(raw, sender="a", channel="cda")
    v2 = registry.submit(new_version(raw, "C0032-second", 2), sender="a", channel="cda")
    assert v2.replaced == f"DocumentReference/{v1.document_reference_id}"
    old = fhir_get(docs_platform, f"DocumentReference/{v1.document_reference_id}")
    new = fhir_get(docs_platform, f"DocumentReference/{v2.document_reference_id}")
    assert old["status"] == "superseded" and new["status"] == "current"
    assert new["relatesTo"] == [
        {"code": "replaces", "target": {"reference": f"DocumentReference/{v1.document_reference_id}"}}
    ]
    assert new["subject"] == old["subject"]  # the same patient, found again
    assert old["meta"]["versionId"] == "2" and old["content"] == new["content"][:0] + old["content"]
    assert search_ids(docs_platform, "DocumentReference", [("status", "current")]) == [
        v2.document_reference_id
    ]
    relates = [("relatesto", f"DocumentReference/{v1.document_reference_id}")]
    assert search_ids(docs_platform, "DocumentReference", relates) == [v2.document_reference_id]


def test_a_related_document_rplc_replaces_its_parent(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("HSDB04.01")
    v1 = registry.submit(raw, sender="a", channel="cda")
    replacement = new_version(raw, "HSDB04.01-corrected", 1, parent=document_id(raw))
    v2 = registry.submit(replacement, sender="a", channel="cda")
    assert v2.replaced == f"DocumentReference/{v1.document_reference_id}"
    assert fhir_get(docs_platform, f"DocumentReference/{v1.document_reference_id}")["status"] == "superseded"
    # Replacing the superseded one again is refused: it is no longer current.
    with pytest.raises(ReplacementRefused):
        registry.submit(
            new_version(raw, "HSDB04.01-third", 1, parent=document_id(raw)), sender="a", channel="cda"
        )


def test_versions_in_one_batch_chain_up(registry: DocumentService, docs_platform: Platform) -> None:
    raw = golden("C0053")
    v3 = new_version(raw, "C0053-v3", 3)
    v2 = new_version(raw, "C0053-v2", 2)
    outcomes = registry.submit_many([(v3, "a"), (raw, "a"), (v2, "a")], channel="cda")
    assert all(isinstance(o, DocumentReceipt) for o in outcomes)
    r3, r1, r2 = outcomes
    assert (
        isinstance(r1, DocumentReceipt)
        and isinstance(r2, DocumentReceipt)
        and isinstance(r3, DocumentReceipt)
    )
    assert r2.replaced == f"DocumentReference/{r1.document_reference_id}"
    assert r3.replaced == f"DocumentReference/{r2.document_reference_id}"
    statuses = {
        r.document_reference_id: fhir_get(docs_platform, f"DocumentReference/{r.document_reference_id}")[
            "status"
        ]
        for r in (r1, r2, r3)
    }
    assert statuses == {
        r1.document_reference_id: "superseded",
        r2.document_reference_id: "superseded",
        r3.document_reference_id: "current",
    }


def test_a_late_older_version_is_registered_superseded(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("C0032")
    newer = registry.submit(new_version(raw, "C0032-v2", 2), sender="a", channel="cda")
    older = registry.submit(raw, sender="a", channel="cda")
    assert older.replaced is None
    assert (
        fhir_get(docs_platform, f"DocumentReference/{older.document_reference_id}")["status"] == "superseded"
    )
    assert fhir_get(docs_platform, f"DocumentReference/{newer.document_reference_id}")["status"] == "current"


@pytest.mark.parametrize(
    ("code", "display"), [("R", "restricted"), ("V", "very restricted"), ("N", "normal")]
)
def test_confidentiality_codes_become_security_labels(
    code: str, display: str, registry: DocumentService, docs_platform: Platform
) -> None:
    receipt = registry.submit(with_confidentiality(golden("HSDB03.02"), code), sender="a", channel="cda")
    ref = fhir_get(docs_platform, f"DocumentReference/{receipt.document_reference_id}")
    assert ref["securityLabel"] == [
        {"coding": [{"system": CONFIDENTIALITY, "code": code, "display": display}]}
    ]
    found = search_ids(docs_platform, "DocumentReference", [("security-label", f"{CONFIDENTIALITY}|{code}")])
    assert found == [receipt.document_reference_id]


def test_one_bad_document_does_not_block_its_batch(
    registry: DocumentService, sink: ListSink, docs_platform: Platform
) -> None:
    documents = [(golden(c), c) for c in ("C0002", "C0007", "HSDB03.01")]
    documents.insert(1, (b"not xml", "broken"))
    outcomes = registry.submit_many(documents, channel="cda")
    assert [type(o).__name__ for o in outcomes] == [
        "DocumentReceipt",
        "CdaRejected",
        "DocumentReceipt",
        "DocumentReceipt",
    ]
    assert count(docs_platform, "DocumentReference") == 3
    assert [k.sender for k in sink.kept] == ["broken"]


def test_the_same_document_twice_in_a_batch_is_registered_once(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("HSDB04.02")
    first, second = registry.submit_many([(raw, "a"), (raw, "b")], channel="cda")
    assert first == second
    assert count(docs_platform, "DocumentReference") == 1


def test_documents_of_one_patient_share_the_patient_visit_and_institution(
    registry: DocumentService, docs_platform: Platform
) -> None:
    front_page, discharge = golden("C0032"), golden("C0053")  # one inpatient stay at 510700F01
    separate = registry.submit(front_page, sender="a", channel="cda")
    together = registry.submit(discharge, sender="a", channel="cda")
    assert separate.patient_id == together.patient_id
    assert count(docs_platform, "Organization") == 1 and count(docs_platform, "Patient") == 1
    assert count(docs_platform, "Encounter") == 1


def test_registered_institution_and_patient_are_reused_not_overwritten(
    registry: DocumentService, docs_platform: Platform
) -> None:
    org = {
        "resourceType": "Organization",
        "id": "org-510703H01",
        "identifier": [{"system": ORG, "value": "510703H01"}],
        "name": "registered name",
        "type": [{"coding": [{"system": "urn:rhip:cs:institution-kind", "code": "county-hospital"}]}],
    }
    status, _ = transaction(
        docs_platform,
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [{"resource": org, "request": {"method": "PUT", "url": "Organization/org-510703H01"}}],
        },
    )
    assert status == 200
    raw = golden("C0002")
    card = next(v for s, v in _identifiers(raw) if s == "2.16.156.10011.1.3")
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:rhip:mrn:510703H01", "value": "MRN-1"},
            {"system": "urn:oid:2.16.156.10011.1.3", "value": card},
        ],
        "name": [{"text": "registered"}],
        "managingOrganization": {"reference": "Organization/org-510703H01"},
    }
    # The institution registered this person twice (a registration error): the document still goes in.
    for _ in range(2):
        status, _ = transaction(
            docs_platform,
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{"resource": patient, "request": {"method": "POST", "url": "Patient"}}],
            },
        )
        assert status == 200
    receipt = registry.submit(raw, sender="a", channel="cda")
    ids = sorted(search_ids(docs_platform, "Patient", []))
    assert receipt.patient_id == ids[0] and len(ids) == 2
    assert fhir_get(docs_platform, "Organization/org-510703H01")["name"] == "registered name"
    assert fhir_get(docs_platform, f"Patient/{receipt.patient_id}")["name"] == [{"text": "registered"}]
    ref = fhir_get(docs_platform, f"DocumentReference/{receipt.document_reference_id}")
    assert ref["author"][0]["reference"] == "Organization/org-510703H01"
    assert ref["context"]["facilityType"]["coding"][0]["code"] == "county-hospital"
    assert ref["context"]["practiceSetting"]["text"]  # the department of the visit
    kind = [("facility", "urn:rhip:cs:institution-kind|county-hospital")]
    assert search_ids(docs_platform, "DocumentReference", kind) == [receipt.document_reference_id]


def _identifiers(raw: bytes) -> list[tuple[str, str]]:
    import re

    return [
        (m.group(1).decode(), m.group(2).decode())
        for m in re.finditer(rb'<id root="([0-9.]+)" extension="([^"]+)"', raw)
    ]


def test_standard_searches_find_documents(registry: DocumentService, docs_platform: Platform) -> None:
    receipts = {
        c: registry.submit(golden(c), sender="a", channel="cda")
        for c in ("C0002", "C0032", "C0053", "HSDB04.01")
    }
    c0002 = receipts["C0002"].document_reference_id
    patient = receipts["C0032"].patient_id

    def found(*params: tuple[str, str]) -> set[str]:
        return set(search_ids(docs_platform, "DocumentReference", list(params)))

    by_code = {c: r.document_reference_id for c, r in receipts.items()}
    assert found(("type", f"{DOCUMENT_CODES}|C0002")) == {c0002}
    assert found(("patient", f"Patient/{patient}")) == {by_code["C0032"], by_code["C0053"]}
    assert found(("patient.identifier", "urn:oid:2.16.156.10011.1.3|" + _card(golden("C0002")))) == {c0002}
    assert found(("author.identifier", f"{ORG}|510700F01")) == {by_code["C0032"], by_code["C0053"]}
    assert found(("author:Organization.identifier", f"{ORG}|510703H01")) == {c0002}
    assert found(("status", "current")) == set(by_code.values())
    assert found(("identifier", f"urn:oid:2.16.156.10011.1.1|{document_id(golden('C0002'))}")) == {c0002}
    ref = fhir_get(docs_platform, f"DocumentReference/{c0002}")
    day = ref["date"][:10]
    assert c0002 in found(("date", day))
    assert c0002 not in found(("date", f"lt{day}"))
    assert found(("type", f"{DOCUMENT_CODES}|C0053"), ("date", f"ge{day}")) <= {by_code["C0053"]}


def _card(raw: bytes) -> str:
    return next(v for s, v in _identifiers(raw) if s == "2.16.156.10011.1.3")


def test_query_and_retrieve_answer_the_v3_document_services(registry: DocumentService) -> None:
    raw = golden("C0032")
    receipt = registry.submit(raw, sender="a", channel="hl7v3")
    registry.submit(golden("C0053"), sender="a", channel="hl7v3")
    card = _card(raw)
    found = registry.query(DocumentQuery(patient_identifiers=(("urn:oid:2.16.156.10011.1.3", card),)))
    assert {s.type_code for s in found} == {"C0032", "C0053"}
    assert found[0].date >= found[1].date  # newest first
    only = registry.query(
        DocumentQuery(patient_identifiers=(("urn:oid:2.16.156.10011.1.3", card),), type_codes=("C0032",))
    )
    assert [s.document_reference_id for s in only] == [receipt.document_reference_id]
    summary = only[0]
    assert summary.document_id == f"2.16.156.10011.1.1^{document_id(raw)}"
    assert summary.author_organization == "510700F01" and summary.status == "current"
    assert (
        summary.confidentiality == "N"
        and summary.size == len(raw)
        and summary.patient_id == receipt.patient_id
    )
    assert registry.query(DocumentQuery(author_organization="510700F01", type_codes=("C0002",))) == []
    for key in (receipt.document_reference_id, summary.document_id, document_id(raw)):
        content, again = registry.retrieve(key)
        assert content == raw and again == summary
    with pytest.raises(RhipError) as caught:
        registry.retrieve("2.16.156.10011.1.1^no-such-document")
    assert caught.value.code == "RHIP-DOC-0004"


def test_superseded_documents_are_left_out_of_queries_unless_asked(registry: DocumentService) -> None:
    raw = golden("C0032")
    registry.submit(raw, sender="a", channel="cda")
    registry.submit(new_version(raw, "C0032-v2", 2), sender="a", channel="cda")
    card = _card(raw)
    current = registry.query(DocumentQuery(patient_identifiers=(("urn:oid:2.16.156.10011.1.3", card),)))
    every = registry.query(
        DocumentQuery(patient_identifiers=(("urn:oid:2.16.156.10011.1.3", card),), include_superseded=True)
    )
    assert [s.status for s in current] == ["current"] and sorted(s.status for s in every) == [
        "current",
        "superseded",
    ]


def test_the_binary_read_gives_the_original_bytes(registry: DocumentService, docs_platform: Platform) -> None:
    """MHD ITI-68: the attachment url read with the document's own media type gives the bytes themselves."""
    from rhip.fhir.rest.messages import FhirRequest

    raw = golden("HSDB03.01")
    receipt = registry.submit(raw, sender="a", channel="cda")
    native = docs_platform.fhir.handle(
        FhirRequest("GET", f"Binary/{receipt.binary_id}", [], {"accept": "text/xml"})
    )
    assert (native.status, native.content_type, native.body) == (200, "text/xml", raw)
    as_json = fhir_get(docs_platform, f"Binary/{receipt.binary_id}")
    assert base64.b64decode(as_json["data"]) == raw


def test_exclusive_mode_registers_the_same_way(docs_platform: Platform, sink: ListSink) -> None:
    bulk = DocumentService(docs_platform.fhir, RegistryConfig(exclusive=True), sink)
    outcomes = bulk.submit_many([(golden(c), c) for c in TYPES], channel="cda")
    assert all(isinstance(o, DocumentReceipt) for o in outcomes)
    again = bulk.submit_many([(golden(c), c) for c in TYPES], channel="cda")

    def ids(receipts: Sequence[object]) -> list[tuple[str, str, str]]:
        return [
            (r.document_reference_id, r.binary_id, r.patient_id)
            for r in receipts
            if isinstance(r, DocumentReceipt)
        ]

    assert ids(again) == ids(outcomes)
    assert count(docs_platform, "DocumentReference") == len(TYPES)


def test_import_reads_zips_and_folders(registry: DocumentService, sink: ListSink, tmp_path: Path) -> None:
    archive = tmp_path / "510700F01.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for code in ("C0032", "C0053"):
            out.writestr(f"{code}.xml", golden(code))
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "HSDB03.01.xml").write_bytes(golden("HSDB03.01"))
    (folder / "broken.xml").write_bytes(b"<oops")
    (folder / "notes.txt").write_text("not a document")
    done: list[int] = []
    counts = import_documents(registry, [archive, folder], batch_size=2, progress=done.append)
    assert (counts.files, counts.documents, counts.registered, counts.rejected) == (3, 4, 3, 1)
    assert counts.extracted > 0 and dict(counts.reasons) == {"RHIP-CDA-0001": 1}
    assert len(counts.patient_ids) == 2  # the inpatient's, and the child's of the immunization report
    assert sum(done) == 4
    assert sink.kept[0].sender.endswith("broken.xml")
    again = import_documents(registry, [archive])
    assert (again.registered, again.extracted) == (2, 0)


def test_every_document_of_the_small_region_is_registered(docs_platform: Platform, sink: ListSink) -> None:
    documents = ex_small_documents()
    bulk = DocumentService(docs_platform.fhir, RegistryConfig(exclusive=True), sink)
    outcomes = []
    for start in range(0, len(documents), 50):
        outcomes += bulk.submit_many(documents[start : start + 50], channel="cda")
    refused = [o for o in outcomes if not isinstance(o, DocumentReceipt)]
    # The synthetic region writes a few documents whose patient has no usable identifier at all.
    assert len(refused) <= len(documents) // 50, [getattr(o, "code", o) for o in refused]
    assert all(k.reason_code in ("RHIP-CDA-0013", "RHIP-DOC-0001") for k in sink.kept)
    assert count(docs_platform, "DocumentReference") == len(documents) - len(refused)


def test_a_document_the_store_refuses_is_kept_and_its_batch_goes_in(
    docs_platform: Platform, sink: ListSink
) -> None:
    """An extracted resource the FHIR validator refuses fails the batch's transaction; each document is
    then registered alone, so only that one is refused (and kept)."""
    from rhip.documents.cda.extract import extract

    def extractor(doc: Any, ctx: Any) -> list[dict[str, Any]]:
        resources = extract(doc, ctx)
        if doc.header.code == "C0007":
            resources[0]["status"] = "not-a-status"
        return resources

    service = DocumentService(docs_platform.fhir, RegistryConfig(), sink, extractor=extractor)
    outcomes = service.submit_many([(golden(c), c) for c in ("C0002", "C0007", "C0053")], channel="cda")
    assert [type(o).__name__ for o in outcomes] == ["DocumentReceipt", "ValidationFailed", "DocumentReceipt"]
    assert [(k.sender, k.reason_code) for k in sink.kept] == [("C0007", "RHIP-FHIR-0004")]
    assert count(docs_platform, "DocumentReference") == 2


def test_a_concurrent_registration_leaves_nothing_behind(
    registry: DocumentService, docs_platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two senders, one document: the one whose look-up missed the other's registration gets its receipt,
    and what its transaction created besides (the Binary, the extracted resources) is deleted."""
    from rhip.documents import queries

    raw = golden("C0002")
    first = registry.submit(raw, sender="a", channel="cda")
    before = {t: count(docs_platform, t) for t in ("DocumentReference", "Binary", "Observation", "Condition")}
    monkeypatch.setattr(queries, "registered", lambda fhir, tokens: [])  # the race: the look-up saw nothing
    second = registry.submit(raw, sender="b", channel="cda")
    assert second.document_reference_id == first.document_reference_id
    assert second.binary_id == first.binary_id
    assert {t: count(docs_platform, t) for t in before} == before


def test_registry_values() -> None:
    from rhip.documents import registry as reg

    assert reg.document_identifier(("1.2.3", "")) == {"system": "urn:ietf:rfc:3986", "value": "urn:oid:1.2.3"}
    assert reg.set_identifier(("1.2.3", "A")) == {"system": "urn:rhip:cda-set:1.2.3", "value": "A"}
    assert reg.as_instant("2024-03") == "2024-03-01T00:00:00+08:00"
    assert reg.as_instant("2024-03-05T10:00:00+08:00") == "2024-03-05T10:00:00+08:00"
    assert reg.confidentiality_label("X")["coding"][0]["code"] == "N"
    assert reg.token({"system": "s", "value": "a,b|c"}) == "s|a\\,b\\|c"
    assert reg.criteria(("identifier", "s|a b&c")) == "identifier=s|a%20b%26c"


# -- review fixes: replacements stay with their owner, numbers, rejects, zone --------------------------


def _other_patient(raw: bytes) -> bytes:
    """The document about another patient (other ID card, health card and visit numbers)."""
    return (
        raw.replace(b"510781198610113487", b"510781199001011234")
        .replace(b"5107816018723255243", b"5107810000000000001")
        .replace(b"ZY2025091400000520040", b"ZY2025091400000999999")
        .replace(b"648798370065", b"648798379999")
    )


def _other_institution(raw: bytes) -> bytes:
    """The document as another hospital wrote it (author and custodian)."""
    return raw.replace(b"510700F01", b"510725H01")


def test_a_new_version_of_another_institution_and_patient_is_refused(
    registry: DocumentService, docs_platform: Platform, sink: ListSink
) -> None:
    raw = golden("C0053")
    first = registry.submit(raw, sender="a", channel="cda")
    intruder = new_version(_other_patient(_other_institution(raw)), "C0053-intruder", 2)
    with pytest.raises(ReplacementRefused):
        registry.submit(intruder, sender="b", channel="cda")
    rplc = new_version(
        _other_patient(_other_institution(raw)), "C0053-intruder-2", 1, parent=document_id(raw)
    )
    with pytest.raises(ReplacementRefused):
        registry.submit(rplc, sender="b", channel="cda")
    assert fhir_get(docs_platform, f"DocumentReference/{first.document_reference_id}")["status"] == "current"
    assert [r.reason_code for r in sink.kept] == ["RHIP-DOC-0003", "RHIP-DOC-0003"]


def test_a_replacement_for_another_patient_of_the_same_institution_is_refused(
    registry: DocumentService, docs_platform: Platform
) -> None:
    raw = golden("C0053")
    first = registry.submit(raw, sender="a", channel="cda")
    other = new_version(_other_patient(raw), "C0053-other-patient", 1, parent=document_id(raw))
    with pytest.raises(ReplacementRefused, match="another patient"):
        registry.submit(other, sender="a", channel="cda")
    by_set = new_version(_other_patient(raw), "C0053-other-patient-v2", 2)
    with pytest.raises(ReplacementRefused, match="another patient"):
        registry.submit(by_set, sender="a", channel="cda")
    assert fhir_get(docs_platform, f"DocumentReference/{first.document_reference_id}")["status"] == "current"
    # In one batch too: the second version names another patient.
    raw2 = golden("C0032")
    outcomes = registry.submit_many(
        [(raw2, "a"), (new_version(_other_patient(raw2), "C0032-x", 2), "a")], channel="cda"
    )
    assert isinstance(outcomes[0], DocumentReceipt) and isinstance(outcomes[1], ReplacementRefused)
    status = fhir_get(docs_platform, f"DocumentReference/{outcomes[0].document_reference_id}")["status"]
    assert status == "current"


def test_an_oversized_number_refuses_its_document_not_the_batch(
    registry: DocumentService, sink: ListSink, docs_platform: Platform
) -> None:
    lab = golden("C0007")
    at = lab.index(b'xsi:type="PQ" value="') + len(b'xsi:type="PQ" value="')
    huge = lab[:at] + b"123456789012345678901234" + lab[lab.index(b'"', at) :]
    version = golden("C0053").replace(b'<versionNumber value="1"/>', b'<versionNumber value="\xc2\xb2"/>')
    outcomes = registry.submit_many([(golden("C0002"), "a"), (huge, "lab"), (version, "b")], channel="cda")
    assert [type(o).__name__ for o in outcomes] == ["DocumentReceipt", "CdaRejected", "CdaRejected"]
    assert sorted((k.sender, k.reason_code) for k in sink.kept) == [
        ("b", "RHIP-CDA-0016"),
        ("lab", "RHIP-CDA-0020"),
    ]
    assert count(docs_platform, "DocumentReference") == 1


def test_an_unexpected_failure_refuses_only_its_document_and_is_kept(
    docs_platform: Platform, sink: ListSink
) -> None:
    from rhip.documents.cda.extract import extract

    def extractor(doc: Any, ctx: Any) -> list[dict[str, Any]]:
        if doc.header.code == "C0007":
            raise OverflowError("boom")
        return extract(doc, ctx)

    service = DocumentService(docs_platform.fhir, RegistryConfig(), sink, extractor=extractor)
    outcomes = service.submit_many([(golden(c), c) for c in ("C0002", "C0007", "C0053")], channel="cda")
    assert [type(o).__name__ for o in outcomes] == ["DocumentReceipt", "CdaRejected", "DocumentReceipt"]
    assert [(k.sender, k.reason_code) for k in sink.kept] == [("C0007", "RHIP-CDA-0020")]
    assert count(docs_platform, "DocumentReference") == 2


def test_a_value_json_cannot_carry_refuses_only_its_document(docs_platform: Platform, sink: ListSink) -> None:
    """The backstop behind number(): a value orjson cannot write fails the batch, then only its document."""
    from rhip.documents.cda.extract import extract

    def extractor(doc: Any, ctx: Any) -> list[dict[str, Any]]:
        resources = extract(doc, ctx)
        if doc.header.code == "C0007":
            resources[0]["valueInteger"] = 2**70
        return resources

    service = DocumentService(docs_platform.fhir, RegistryConfig(), sink, extractor=extractor)
    outcomes = service.submit_many([(golden(c), c) for c in ("C0002", "C0007")], channel="cda")
    assert [type(o).__name__ for o in outcomes] == ["DocumentReceipt", "CdaRejected"]
    assert [(k.sender, k.reason_code) for k in sink.kept] == [("C0007", "RHIP-CDA-0020")]


@pytest.mark.parametrize(("channel", "kept"), [("cda", 1), ("hl7v3", 0)])
def test_server_errors_are_kept_for_a_bulk_import(
    docs_platform: Platform, sink: ListSink, channel: str, kept: int
) -> None:
    from rhip.core.errors import StorageUnavailable

    def extractor(doc: Any, ctx: Any) -> list[dict[str, Any]]:
        raise StorageUnavailable("the store is away")

    service = DocumentService(docs_platform.fhir, RegistryConfig(), sink, extractor=extractor)
    with pytest.raises(StorageUnavailable):
        service.submit(golden("C0002"), sender="his", channel=channel)
    assert len(sink.kept) == kept


def test_retrieve_by_the_bare_extension_gives_that_document_only(registry: DocumentService) -> None:
    raw = golden("C0032")
    first = registry.submit(raw, sender="a", channel="cda")
    registry.submit(new_version(raw, "C0032-v2", 2), sender="a", channel="cda")
    # The second version carries the first one's id as its setId: still the first one is retrieved.
    content, summary = registry.retrieve(document_id(raw))
    assert content == raw and summary.document_reference_id == first.document_reference_id
    # Another root with the same extension (another hospital's numbering): the bare extension is ambiguous.
    other = _other_patient(_other_institution(golden("C0053"))).replace(
        f'<id root="2.16.156.10011.1.1" extension="{document_id(golden("C0053"))}"'.encode(),
        f'<id root="2.16.156.10011.1.99" extension="{document_id(raw)}"'.encode(),
        1,
    )
    registry.submit(other, sender="b", channel="cda")
    with pytest.raises(RhipError) as caught:
        registry.retrieve(document_id(raw))
    assert caught.value.code == "RHIP-DOC-0006" and caught.value.http_status == 400
    assert registry.retrieve(f"2.16.156.10011.1.1^{document_id(raw)}")[0] == raw


def test_a_date_only_document_is_dated_in_the_configured_zone(
    docs_platform: Platform, sink: ListSink
) -> None:
    from zoneinfo import ZoneInfo

    from rhip.documents import registry as reg

    assert reg.as_instant("2025-01-15", ZoneInfo("Europe/Berlin")) == "2025-01-15T00:00:00+01:00"
    assert reg.as_instant("2025-07-15", ZoneInfo("Europe/Berlin")) == "2025-07-15T00:00:00+02:00"
    raw = golden("C0053").replace(
        b'<effectiveTime value="20250919151700"/>', b'<effectiveTime value="20250919"/>', 1
    )
    service = DocumentService(docs_platform.fhir, RegistryConfig(timezone="Europe/Berlin"), sink)
    receipt = service.submit(raw, sender="a", channel="cda")
    ref = fhir_get(docs_platform, f"DocumentReference/{receipt.document_reference_id}")
    assert ref["date"] == "2025-09-19T00:00:00+02:00"
