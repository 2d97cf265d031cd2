"""MHD ITI-65 Provide Document Bundle: completed by the registry's hook, then run as one FHIR transaction."""

from __future__ import annotations

import base64
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.documents.fhir_api import register
from rhip.documents.mhd import PROVIDE_PROFILES
from rhip.documents.service import DocumentService
from rhip.fhir.rest.extensions import BundleHook, Extensions

from .conftest import ListSink, count, document_id, fhir_get, golden, search_ids, transaction

COMPREHENSIVE = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Comprehensive.ProvideBundle"
MINIMAL = "https://profiles.ihe.net/ITI/MHD/StructureDefinition/IHE.MHD.Minimal.ProvideBundle"
LIST_TYPES = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
ID_CARD = "urn:oid:2.16.156.10011.1.3"


@pytest.fixture
def mhd(settings: Settings, sink: ListSink) -> Iterator[Platform]:
    """A platform whose FHIR API has the registry's Provide Document Bundle hooks."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    extensions = Extensions()
    plat = build_platform(settings, empi=False, extensions=extensions, exchange=False)
    register(extensions, DocumentService(plat.fhir), sink)
    try:
        yield plat
    finally:
        plat.close()


def sha1(raw: bytes) -> str:
    return base64.b64encode(hashlib.sha1(raw).digest()).decode()


def a_patient(platform: Platform, card: str = "110101199001011234") -> str:
    """A Patient on the server (MHD documents name a known patient); its reference."""
    status, body = transaction(
        platform,
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "resource": {
                        "resourceType": "Patient",
                        "identifier": [{"system": ID_CARD, "value": card}],
                    },
                    "request": {"method": "POST", "url": "Patient"},
                }
            ],
        },
    )
    assert status == 200, body
    return str(body["entry"][0]["response"]["location"].rsplit("/_history", 1)[0])


def provide(
    raw: bytes,
    patient: str,
    *,
    code: str = "C0002",
    profile: str = COMPREHENSIVE,
    master: str | None = None,
    content_type: str = "text/xml",
    attachment: dict[str, Any] | None = None,
    relates_to: str | None = None,
    tag: str = "1",
) -> dict[str, Any]:
    """A Provide Document Bundle: SubmissionSet, one DocumentReference and its Binary."""
    doc_url, binary_url = (
        f"urn:uuid:00000000-0000-4000-8000-00000000d0c{tag}",
        f"urn:uuid:00000000-0000-4000-8000-00000000b1{tag}0",
    )
    reference: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:oid:2.16.156.10011.1.1", "value": master or document_id(raw)},
        "status": "current",
        "type": {"coding": [{"system": "urn:oid:2.16.156.10011.2.4", "code": code}]},
        "subject": {"reference": patient},
        "content": [{"attachment": {"contentType": content_type, "url": binary_url, **(attachment or {})}}],
    }
    if relates_to:
        reference["relatesTo"] = [{"code": "replaces", "target": {"reference": relates_to}}]
    submission = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": LIST_TYPES, "code": "submissionset"}]},
        "subject": {"reference": patient},
        "extension": [
            {
                "url": "https://profiles.ihe.net/ITI/MHD/StructureDefinition/ihe-sourceId",
                "valueIdentifier": {"value": "urn:oid:1.2.3.4"},
            }
        ],
        "entry": [{"item": {"reference": doc_url}}],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "meta": {"profile": [profile]},
        "entry": [
            {
                "fullUrl": f"urn:uuid:00000000-0000-4000-8000-0000000051{tag}0",
                "resource": submission,
                "request": {"method": "POST", "url": "List"},
            },
            {
                "fullUrl": doc_url,
                "resource": reference,
                "request": {"method": "POST", "url": "DocumentReference"},
            },
            {
                "fullUrl": binary_url,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": content_type,
                    "data": base64.b64encode(raw).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            },
        ],
    }


def locations(body: dict[str, Any]) -> list[str]:
    return [e["response"]["location"].rsplit("/_history", 1)[0] for e in body["entry"]]


def test_the_header_fills_what_the_source_left_out_and_must_agree(mhd: Platform) -> None:
    patient = a_patient(mhd)
    bundle = provide(golden("C0032"), patient)
    del bundle["entry"][1]["resource"]["type"]
    status, body = transaction(mhd, bundle)
    assert status == 200, body
    ref = fhir_get(mhd, locations(body)[1])
    assert ref["type"]["coding"][0]["code"] == "C0032" and ref["date"].endswith("+08:00")
    assert ref["securityLabel"][0]["coding"][0]["code"] == "N"
    assert ref["content"][0]["format"]["code"] == "urn:oid:2.16.156.10011.2.1.1.52"
    status, body = transaction(mhd, provide(golden("C0053"), patient, tag="2"))  # says C0002
    assert status == 400 and "C0053" in str(body)


def test_a_cda_document_is_checked_hashed_and_extracted(mhd: Platform) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002")
    status, body = transaction(mhd, provide(raw, patient))
    assert status == 200, body
    where = locations(body)
    assert [w.split("/")[0] for w in where[:3]] == [
        "List",
        "DocumentReference",
        "Binary",
    ]  # the client's, in order
    assert len(where) > 3  # then the extracted resources
    ref = fhir_get(mhd, where[1])
    attachment = ref["content"][0]["attachment"]
    assert attachment == {"contentType": "text/xml", "url": where[2], "size": len(raw), "hash": sha1(raw)}
    assert ref["securityLabel"][0]["coding"][0]["code"] == "N" and ref["date"]
    assert ref["meta"]["source"] == "urn:rhip:source:mhd:510703H01"
    binary = fhir_get(mhd, where[2])
    assert base64.b64decode(binary["data"]) == raw
    assert binary["securityContext"] == {"reference": where[1]}
    for extracted in where[3:]:
        resource = fhir_get(mhd, extracted)
        assert (resource.get("subject") or resource.get("patient")) == {"reference": patient}
    submission = fhir_get(mhd, where[0])
    assert submission["entry"][0]["item"] == {"reference": where[1]}


def test_a_document_that_is_not_cda_is_registered_without_extraction(mhd: Platform) -> None:
    patient = a_patient(mhd)
    raw = "转诊单（扫描件说明）".encode()
    status, body = transaction(mhd, provide(raw, patient, master="urn:uuid:1f0e", content_type="text/plain"))
    assert status == 200, body
    assert len(body["entry"]) == 3
    ref = fhir_get(mhd, locations(body)[1])
    assert ref["content"][0]["attachment"]["hash"] == sha1(raw)


def test_a_wrong_hash_is_refused_and_kept(mhd: Platform, sink: ListSink) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002")
    bundle = provide(raw, patient, attachment={"hash": sha1(b"other")})
    sent = orjson.dumps(bundle)
    status, body = transaction(mhd, bundle)
    assert status == 400
    assert body["issue"][0]["details"]["coding"][0]["code"] == "RHIP-DOC-0005" or "RHIP-DOC-0005" in str(body)
    assert [(k.channel, k.sender, k.reason_code) for k in sink.kept] == [
        ("mhd", "urn:oid:1.2.3.4", "RHIP-DOC-0005")
    ]
    assert sink.kept[0].raw == sent and sink.kept[0].content_type == "application/fhir+json"
    assert count(mhd, "DocumentReference") == 0 and count(mhd, "Binary") == 0


def test_an_invalid_cda_is_refused(mhd: Platform, sink: ListSink) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002").replace(b'codeSystem="2.16.156.10011.2.4"', b'codeSystem="1.2.3"', 1)
    status, body = transaction(mhd, provide(raw, patient, master="x-1"))
    assert status == 400 and "RHIP-CDA-0008" in str(body)
    assert sink.kept[0].reason_code == "RHIP-CDA-0008"
    assert count(mhd, "DocumentReference") == 0


def test_a_refusal_by_the_store_is_kept_too(mhd: Platform, sink: ListSink) -> None:
    """The hook passes; the transaction then fails (an unknown patient): the Bundle goes to the rejects."""
    bundle = provide(golden("C0002"), "Patient?identifier=urn:oid:2.16.156.10011.1.3|none")
    bundle["entry"][1]["resource"]["meta"] = {"tag": [{"code": "t"}]}
    sent = orjson.dumps(bundle)
    status, _ = transaction(mhd, bundle)
    assert status == 400
    assert len(sink.kept) == 1 and sink.kept[0].channel == "mhd"
    assert sink.kept[0].raw == sent  # as the client sent it, not as the hook completed it


def test_a_repeated_submission_registers_nothing_new(mhd: Platform) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002")
    first_status, first = transaction(mhd, provide(raw, patient))
    again_status, again = transaction(mhd, provide(raw, patient))
    assert first_status == again_status == 200
    assert locations(again)[1:3] == locations(first)[1:3]  # the same DocumentReference and Binary
    assert count(mhd, "DocumentReference") == 1 and count(mhd, "Binary") == 1
    assert count(mhd, "Observation") == len([w for w in locations(first) if w.startswith("Observation/")])


def test_the_same_id_with_other_content_is_a_conflict(mhd: Platform) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002")
    assert transaction(mhd, provide(raw, patient))[0] == 200
    changed = raw.replace(b"</ClinicalDocument>", b"<!-- v2 --></ClinicalDocument>")
    status, body = transaction(mhd, provide(changed, patient))
    assert status == 409 and "RHIP-DOC-0002" in str(body)


def test_relates_to_replaces_supersedes_the_old_document(mhd: Platform) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002")
    _, first = transaction(mhd, provide(raw, patient))
    old = locations(first)[1]
    replacement = raw.replace(document_id(raw).encode(), b"C0002-amended", 1)
    status, body = transaction(mhd, provide(replacement, patient, relates_to=old, tag="2", profile=MINIMAL))
    assert status == 200, body
    new = locations(body)[1]
    assert fhir_get(mhd, old)["status"] == "superseded"
    assert fhir_get(mhd, new)["relatesTo"][0]["target"] == {"reference": old}
    assert search_ids(mhd, "DocumentReference", [("status", "current")]) == [new.split("/")[1]]
    # The superseded one cannot be replaced again.
    third = replacement.replace(b"C0002-amended", b"C0002-third")
    status, body = transaction(mhd, provide(third, patient, relates_to=old, tag="3"))
    assert status == 409 and "RHIP-DOC-0003" in str(body)


def test_a_bundle_without_the_profile_is_an_ordinary_transaction(mhd: Platform) -> None:
    patient = a_patient(mhd)
    bundle = provide(golden("C0002"), patient)
    del bundle["meta"]
    status, body = transaction(mhd, bundle)
    assert status == 200 and len(body["entry"]) == 3
    ref = fhir_get(mhd, locations(body)[1])
    assert "hash" not in ref["content"][0]["attachment"]


def test_a_provide_bundle_needs_a_submission_set(mhd: Platform) -> None:
    bundle = provide(golden("C0002"), a_patient(mhd))
    bundle["entry"] = bundle["entry"][1:]
    status, body = transaction(mhd, bundle)
    assert status == 400 and "SubmissionSet" in str(body)


def test_a_profile_claimed_with_its_version_selects_the_hook(mhd: Platform) -> None:
    bundle = provide(golden("C0002"), a_patient(mhd), profile=f"{COMPREHENSIVE}|4.2.2")
    status, body = transaction(mhd, bundle)
    assert status == 200 and "hash" in fhir_get(mhd, locations(body)[1])["content"][0]["attachment"]
    with pytest.raises(ValueError, match="without a version"):
        BundleHook(f"{COMPREHENSIVE}|4.2.2", lambda b: b)


def test_the_platform_wires_the_hooks_to_the_rejects_store(settings: Settings) -> None:
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings, empi=False)
    try:
        assert set(PROVIDE_PROFILES) <= set(plat.fhir.extensions.bundle_hooks)
        bundle = provide(golden("C0002"), a_patient(plat), attachment={"size": 1})
        assert transaction(plat, bundle)[0] == 400
        assert plat.exchange is not None
        kept = plat.exchange.rejects.list(channel="mhd")
        assert [(r.reason_code, r.sender) for r in kept] == [("RHIP-DOC-0005", "urn:oid:1.2.3.4")]
    finally:
        plat.close()


def test_every_provide_profile_has_a_hook(mhd: Platform) -> None:
    assert set(mhd.fhir.extensions.bundle_hooks) == set(PROVIDE_PROFILES)
    with pytest.raises(ValueError, match="registered twice"):
        register(mhd.fhir.extensions, DocumentService(mhd.fhir))


# -- over HTTP, with a real FHIR client ------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(mhd: Platform) -> Iterator[str]:
    """The platform's web application on a free port (uvicorn in a thread); its FHIR base URL."""
    import uvicorn

    from rhip.web.app import create_app

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(platform=mhd), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/fhir"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.integration
def test_fhirpy_posts_a_provide_bundle_and_finds_the_document(served: str, mhd: Platform) -> None:
    from fhirpy import SyncFHIRClient

    client = SyncFHIRClient(served, requests_config={"timeout": 30})
    patient = client.resource("Patient", identifier=[{"system": ID_CARD, "value": "110101199001011234"}])
    patient.save()
    raw = golden("C0002")
    response = client.execute("", method="post", data=provide(raw, f"Patient/{patient.id}"))
    assert response["type"] == "transaction-response"
    found = (
        client.resources("DocumentReference")
        .search(patient=f"Patient/{patient.id}", type="urn:oid:2.16.156.10011.2.4|C0002", status="current")
        .fetch_all()
    )
    assert len(found) == 1
    attachment = found[0]["content"][0]["attachment"]
    assert attachment["hash"] == sha1(raw) and attachment["size"] == len(raw)
    binary = client.reference(reference=attachment["url"]).to_resource()
    assert base64.b64decode(binary["data"]) == raw
    import httpx

    native = httpx.get(f"{served}/{attachment['url']}", headers={"Accept": "text/xml"}, timeout=30)
    assert native.status_code == 200 and native.content == raw
    assert native.headers["content-type"].startswith("text/xml")


# -- review fixes ------------------------------------------------------------------------------------------


def test_a_replacement_of_another_patient_or_institution_is_refused(mhd: Platform, sink: ListSink) -> None:
    raw = golden("C0002")
    imported = DocumentService(mhd.fhir).submit(raw, sender="his", channel="cda")
    old = f"DocumentReference/{imported.document_reference_id}"
    owner = f"Patient/{imported.patient_id}"
    amended = raw.replace(document_id(raw).encode(), b"C0002-amended", 1)
    # Another patient: the subject is not the replaced document's.
    status, body = transaction(mhd, provide(amended, a_patient(mhd), relates_to=old, tag="2"))
    assert status == 409 and "RHIP-DOC-0003" in str(body) and "another patient" in str(body)
    # Another institution: the CDA's author is another hospital.
    foreign = amended.replace(b"510703H01", b"510725H01")
    status, body = transaction(mhd, provide(foreign, owner, relates_to=old, tag="3"))
    assert status == 409 and "another institution" in str(body)
    assert fhir_get(mhd, old)["status"] == "current"
    assert [k.reason_code for k in sink.kept] == ["RHIP-DOC-0003", "RHIP-DOC-0003"]
    # The owner's own replacement goes in.
    status, body = transaction(mhd, provide(amended, owner, relates_to=old, tag="4"))
    assert status == 200, body
    assert fhir_get(mhd, old)["status"] == "superseded"


def test_the_master_identifier_is_the_cda_document_id(mhd: Platform, sink: ListSink) -> None:
    patient = a_patient(mhd)
    raw = golden("C0002")
    status, body = transaction(mhd, provide(raw, patient, master="another-id"))
    assert status == 400 and "RHIP-DOC-0005" in str(body) and "masterIdentifier" in str(body)
    bundle = provide(raw, patient)
    del bundle["entry"][1]["resource"]["masterIdentifier"]
    status, body = transaction(mhd, bundle)
    assert status == 200, body
    ref = fhir_get(mhd, locations(body)[1])
    assert ref["masterIdentifier"] == {"system": "urn:oid:2.16.156.10011.1.1", "value": document_id(raw)}
    assert {"url": "urn:rhip:ext:document-version", "valueInteger": 1} in ref["extension"]
    assert any(i["system"].startswith("urn:rhip:cda-set:") for i in ref["identifier"])


def test_a_document_imported_then_provided_is_registered_once(mhd: Platform) -> None:
    raw = golden("C0007")
    imported = DocumentService(mhd.fhir).submit(raw, sender="his", channel="cda")
    observations = count(mhd, "Observation")
    status, body = transaction(mhd, provide(raw, f"Patient/{imported.patient_id}", code="C0007"))
    assert status == 200, body
    assert locations(body)[1] == f"DocumentReference/{imported.document_reference_id}"
    assert count(mhd, "DocumentReference") == 1 and count(mhd, "Observation") == observations


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b["entry"].append({"resource": "x"}),
        lambda b: b["entry"][1]["resource"].update(content=["x"]),
        lambda b: b["entry"][1]["resource"].update(relatesTo=[{"code": "replaces", "target": "x"}]),
        lambda b: b["entry"][1]["resource"].update(type="x"),
        lambda b: b["entry"][1]["resource"].update(context={"encounter": ["x"]}),
        lambda b: b["entry"][0]["resource"]["extension"][0].update(valueIdentifier="x"),
    ],
)
def test_a_malformed_provide_bundle_is_a_400_and_kept(mhd: Platform, sink: ListSink, damage: Any) -> None:
    bundle = provide(golden("C0002"), a_patient(mhd))
    damage(bundle)
    if isinstance(bundle["entry"][0]["resource"]["extension"][0]["valueIdentifier"], str):
        bundle["entry"][1]["resource"]["content"] = "x"  # refused, with a sender that is no Identifier
    status, body = transaction(mhd, bundle)
    assert status == 400 and "RHIP-DOC-0005" in str(body), body
    assert len(sink.kept) == 1 and sink.kept[0].reason_code == "RHIP-DOC-0005"
    assert count(mhd, "DocumentReference") == 0


def test_an_unexpected_failure_while_preparing_is_a_refusal(
    mhd: Platform, sink: ListSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rhip.documents.mhd as mhd_module

    def broken(*_: Any) -> None:
        raise KeyError("surprise")

    monkeypatch.setattr(mhd_module, "complete", broken)
    status, body = transaction(mhd, provide(golden("C0002"), a_patient(mhd)))
    assert status == 400 and "RHIP-DOC-0005" in str(body)
    assert [k.reason_code for k in sink.kept] == ["RHIP-DOC-0005"]
