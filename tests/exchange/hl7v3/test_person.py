"""Persons through v3 are the platform's Patients: the master patient index, merges and cross-referencing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from rhip.bootstrap.adapters import EmpiPatientMerger, EmpiPersonLinks
from rhip.bootstrap.container import Platform
from rhip.empi import queries
from rhip.exchange.hl7v3.service import V3Service
from rhip.fhir.rest.messages import FhirRequest
from rhip.synth import hl7v3 as synth
from rhip.xmlsafe import parse_xml

from .helpers import HL7, FixedClock, ack_of, counter_uuids, detail_text, send

SENT = datetime(2025, 3, 1, 1, 0, tzinfo=UTC)
ID_CARD = "urn:oid:2.16.156.10011.1.3"


def org(code: str, name: str) -> dict[str, Any]:
    """An institution as the synthetic FHIR has it."""
    return {"resourceType": "Organization", "id": f"org-{code}", "name": name,
            "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": code}]}  # fmt: skip


def person(code: str, mrn: str, id_card: str, name: str = "张伟", **extra: Any) -> dict[str, Any]:
    """A source Patient as the synthetic FHIR has it."""
    family, given = name[0], name[1:]
    return {
        "resourceType": "Patient",
        "identifier": [
            {"system": f"urn:rhip:mrn:{code}", "value": mrn},
            {"system": ID_CARD, "value": id_card},
        ],
        "name": [{"use": "official", "text": name, "family": family, "given": [given]}],
        "gender": "male",
        "birthDate": "1980-05-06",
        "telecom": [{"system": "phone", "value": "13900001111", "use": "mobile"}],
        **extra,
    }


def register(
    service: V3Service, patient: dict[str, Any], institution: dict[str, Any], message_id: str
) -> None:
    """Send a person register and expect an AA."""
    body = synth.patient_register(patient, institution, message_id=message_id, sent=SENT, sender_device="HIS")
    answer = send(service, body)
    assert ack_of(answer) == ("AA", ""), answer.body


def search(platform: Platform, rtype: str, **params: str) -> list[dict[str, Any]]:
    """Search the FHIR store."""
    response = platform.fhir.handle(FhirRequest("GET", rtype, query=list(params.items())))
    return [e["resource"] for e in orjson.loads(response.body or b"{}").get("entry", [])]


def empi_service(platform: Platform, **kw: Any) -> V3Service:
    """A v3 service wired to the platform's resident index, as bootstrap wires it."""
    assert platform.empi is not None
    return V3Service(
        platform.fhir,
        merger=EmpiPatientMerger(platform.empi),
        persons=EmpiPersonLinks(platform.empi),
        clock=FixedClock(),
        new_uuid=counter_uuids(),
        **kw,
    )


def test_a_person_registered_through_v3_is_the_same_master_person_as_through_fhir(platform: Platform) -> None:
    service = empi_service(platform)
    register(
        service,
        person("510704104X01", "A-1", "510704198005061234"),
        org("510704104X01", "魏城镇卫生院"),
        "m1",
    )
    register(
        service, person("510704105X01", "B-7", "510704198005061234"), org("510704105X01", "另一卫生院"), "m2"
    )
    fhir_patient = person("510703H01", "H-3", "510704198005061234")
    created = platform.fhir.handle(
        FhirRequest(
            "POST",
            "Patient",
            body=orjson.dumps(fhir_patient),
            headers={"content-type": "application/fhir+json"},
        )
    )
    assert created.status == 201
    patients = search(platform, "Patient", identifier=f"{ID_CARD}|510704198005061234")
    assert len(patients) == 3
    v3 = [p for p in patients if p["meta"].get("source", "").startswith("urn:rhip:source:v3:")]
    assert len(v3) == 2
    assert {p["managingOrganization"]["reference"].split("/")[0] for p in v3} == {"Organization"}
    assert platform.empi is not None
    masters = {queries.master_of(platform.empi, p["id"])["id"] for p in patients}
    assert len(masters) == 1, "v3 and FHIR records of one resident share one master person"


def test_the_person_query_adds_the_identifiers_of_the_persons_other_records(platform: Platform) -> None:
    service = empi_service(platform)
    register(service, person("510704104X01", "A-1", "510704198005061234"), org("510704104X01", "甲"), "m1")
    register(service, person("510704105X01", "B-7", "510704198005061234"), org("510704105X01", "乙"), "m2")
    query = _query('<id root="2.16.156.10011.2.5.1.4" extension="A-1"/>', sender_institution="510704104X01")
    answer = send(service, query)
    assert ack_of(answer) == ("AA", "")
    root = parse_xml(answer.body)
    patients = root.findall(f".//{HL7}subject1/{HL7}patient")
    assert len(patients) == 1
    other = {
        (i.get("root"), i.get("extension"))
        for i in patients[0].iterfind(f".//{HL7}asOtherIDs/{HL7}id/{HL7}item")
    }
    assert ("2.16.156.10011.2.5.1.4", "B-7") in other
    scopes = [
        s.get("extension") for s in patients[0].iterfind(f".//{HL7}scopingOrganization/{HL7}id/{HL7}item")
    ]
    assert "510704105X01" in scopes
    # Without the index wired, the source record is answered as it is.
    plain = V3Service(platform.fhir, clock=FixedClock(), new_uuid=counter_uuids())
    root = parse_xml(send(plain, query).body)
    assert "B-7" not in {i.get("extension") for i in root.iter(f"{HL7}item")}


def _query(parameters: str, sender_institution: str = "") -> bytes:
    agent = (
        '<asAgent classCode="AGNT"><representedOrganization classCode="ORG" determinerCode="INSTANCE"><id>'
        f'<item root="2.16.156.10011.1.5" extension="{sender_institution}"/></id></representedOrganization></asAgent>'
        if sender_institution
        else ""
    )
    return f"""<PRPA_IN201305UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
<id root="2.16.156.10011.2.5.1.1" extension="Q1"/><interactionId root="2.16.156.10011.2.5.1.2" extension="PRPA_IN201305UV02"/>
<sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id><item root="2.16.156.10011.2.5.1.3"
extension="HIS"/></id>{agent}</device></sender>
<controlActProcess classCode="CACT" moodCode="EVN"><queryByParameter><queryId extension="Q1"/><parameterList>
{parameters}</parameterList></queryByParameter></controlActProcess></PRPA_IN201305UV02>""".encode()


@dataclass
class RecordingMerger:
    """A PatientMerger that remembers what it was asked."""

    calls: list[tuple[str, str, str]] = field(default_factory=list)

    def merge(self, surviving_patient_id: str, obsolete_patient_id: str, *, actor: str) -> None:
        """Remember the call."""
        self.calls.append((surviving_patient_id, obsolete_patient_id, actor))


def test_a_merge_retires_the_obsolete_record_and_tells_the_merger(v3_platform: Platform) -> None:
    merger = RecordingMerger()
    service = V3Service(v3_platform.fhir, merger=merger, clock=FixedClock(), new_uuid=counter_uuids())
    institution = org("510704104X01", "魏城镇卫生院")
    surviving = person("510704104X01", "KEEP", "510704198005061234")
    obsolete = person("510704104X01", "DROP", "510704198005061234", name="张玮")
    register(service, surviving, institution, "m1")
    register(service, obsolete, institution, "m2")
    merge = synth.patient_merge(
        surviving, obsolete, institution, message_id="m3", sent=SENT, sender_device="HIS"
    )
    assert ack_of(send(service, merge)) == ("AA", "")
    (kept,) = search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|KEEP")
    (dropped,) = search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|DROP")
    assert dropped["active"] is False
    assert dropped["link"] == [{"other": {"reference": f"Patient/{kept['id']}"}, "type": "replaced-by"}]
    assert dropped["name"][0]["text"] == "张玮", "nothing of the obsolete record is lost"
    assert kept["active"] is True
    assert merger.calls == [(kept["id"], dropped["id"], "v3:510704104X01")]
    # A retransmission changes nothing and is acknowledged again.
    assert ack_of(send(service, merge)) == ("AA", "")
    (again,) = search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|DROP")
    assert again["link"] == dropped["link"]


def test_a_merge_into_a_record_the_platform_never_saw_registers_it(v3_platform: Platform) -> None:
    service = V3Service(v3_platform.fhir, clock=FixedClock(), new_uuid=counter_uuids())
    institution = org("510704104X01", "魏城镇卫生院")
    obsolete = person("510704104X01", "OLD", "510704198005061234")
    register(service, obsolete, institution, "m1")
    surviving = person("510704104X01", "NEW", "510704198005061234")
    merge = synth.patient_merge(
        surviving, obsolete, institution, message_id="m2", sent=SENT, sender_device="HIS"
    )
    assert ack_of(send(service, merge)) == ("AA", "")
    (new,) = search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|NEW")
    assert new["name"][0]["text"] == "张伟" and new["identifier"][1] == {
        "system": ID_CARD,
        "value": "510704198005061234",
    }


def test_a_merge_joins_two_master_persons_in_the_index(platform: Platform) -> None:
    service = empi_service(platform)
    institution = org("510704104X01", "魏城镇卫生院")
    surviving = person("510704104X01", "KEEP", "510704198005061234", name="张伟")
    obsolete = person("510704104X01", "DROP", "110101199901019999", name="李娜")
    register(service, surviving, institution, "m1")
    register(service, obsolete, institution, "m2")
    (kept,) = search(platform, "Patient", identifier="urn:rhip:mrn:510704104X01|KEEP")
    (dropped,) = search(platform, "Patient", identifier="urn:rhip:mrn:510704104X01|DROP")
    assert platform.empi is not None
    assert (
        queries.master_of(platform.empi, kept["id"])["id"]
        != queries.master_of(platform.empi, dropped["id"])["id"]
    )
    merge = synth.patient_merge(
        surviving, obsolete, institution, message_id="m3", sent=SENT, sender_device="HIS"
    )
    assert ack_of(send(service, merge)) == ("AA", "")
    assert (
        queries.master_of(platform.empi, kept["id"])["id"]
        == queries.master_of(platform.empi, dropped["id"])["id"]
    )


def test_an_update_of_an_unknown_record_creates_it_and_a_register_of_a_known_one_revises_it(
    service: V3Service, v3_platform: Platform
) -> None:
    institution = org("510704104X01", "魏城镇卫生院")
    patient = person("510704104X01", "U-1", "510704198005061234")
    update = synth.patient_update(patient, institution, message_id="u1", sent=SENT, sender_device="HIS")
    assert ack_of(send(service, update)) == ("AA", "")
    patient["telecom"] = [{"system": "phone", "value": "13911112222", "use": "mobile"}]
    register(service, patient, institution, "u2")
    (stored,) = search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|U-1")
    assert stored["telecom"] == patient["telecom"]
    assert stored["meta"]["versionId"] == "2"


def test_a_message_that_names_no_institution_is_refused_unless_the_device_is_known(
    v3_platform: Platform,
) -> None:
    institution = org("510704104X01", "魏城镇卫生院")
    patient = person("510704104X01", "N-1", "510704198005061234")
    body = synth.patient_register(patient, institution, message_id="n1", sent=SENT, sender_device="HIS-9")
    body = body.replace(b'<item root="2.16.156.10011.2.5.1.5" extension="510704104X01"/>', b"")
    start, end = body.index(b"<providerOrganization"), body.index(b"</providerOrganization>")
    body = body[:start] + body[end + len(b"</providerOrganization>") :]
    plain = V3Service(v3_platform.fhir, clock=FixedClock(), new_uuid=counter_uuids())
    answer = send(plain, body)
    assert ack_of(answer) == ("AE", "RHIP-V3-0012")
    assert "HIS-9" in detail_text(answer)
    known = V3Service(v3_platform.fhir, device_institutions={"HIS-9": "510704104X01"}, clock=FixedClock())
    assert ack_of(send(known, body)) == ("AA", "")
    assert search(v3_platform, "Patient", identifier="urn:rhip:mrn:510704104X01|N-1")


def test_a_local_id_of_an_unnamed_institution_matches_any_institutions_local_ids(
    service: V3Service, v3_platform: Platform
) -> None:
    register(service, person("510704104X01", "77", "510704198005061234"), org("510704104X01", "甲"), "m1")
    register(
        service,
        person("510704105X01", "77", "110101199001011237", name="李娜"),
        org("510704105X01", "乙"),
        "m2",
    )
    register(
        service,
        person("510704105X01", "78", "110101199001011238", name="王芳"),
        org("510704105X01", "乙"),
        "m3",
    )
    answer = send(service, _query('<id root="2.16.156.10011.2.5.1.4" extension="77"/>'))
    root = parse_xml(answer.body)
    assert len(root.findall(f".//{HL7}subject1/{HL7}patient")) == 2
    scoped = send(service, _query('<id root="2.16.156.10011.2.5.1.4" extension="77"/>', "510704105X01"))
    names = [p.get("value") for p in parse_xml(scoped.body).iter(f"{HL7}part")]
    assert names == ["李娜"]
    limited = _query(
        '<livingSubjectName><value><item><part value="王芳"/></item></value></livingSubjectName>'
        '<livingSubjectBirthTime><value value="19800506"/></livingSubjectBirthTime>'
    ).replace(b"<parameterList>", b'<initialQuantity value="1"/><parameterList>')
    got = parse_xml(send(service, limited).body)
    assert [q.get("code") for q in got.iter(f"{HL7}queryResponseCode")] == ["OK"]
    nothing = _query(
        '<livingSubjectId><value><item root="2.16.156.10011.1.3" extension="000"/></value></livingSubjectId>'
    )
    assert b'queryResponseCode code="NF"' in send(service, nothing).body
