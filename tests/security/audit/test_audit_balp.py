"""The BALP AuditEvent shape: type and subtype, agents, source, patient, resource and query entities,
purpose of use and break-the-glass, outcomes; and nothing but ids about people."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from rhip.db.audit import audit_row
from rhip.security.audit.balp import (
    BALP,
    DCM,
    ENTITY_TYPE,
    INTERACTION,
    OBJECT_ROLE,
    PURPOSE,
    RHIP_SUBTYPE,
    audit_entry,
    audit_event,
    redact_query,
    unpack_event,
)
from rhip.security.principal import platform_principal

from .support import clinician, resident, system

NOW_US = 1_760_000_000_123_000


def event(principal: Any = None, **kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"id": "e1", "recorded_us": NOW_US, "action": "R", "subtype": "read"}
    args.update(kw)
    return audit_event(principal or clinician(), **args)


def codes(concepts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for cc in concepts for c in cc["coding"]]


def test_a_patient_read_in_the_balp_shape() -> None:
    ev = event(resources=[("Observation", "o1", 3)], patients=["p1"])
    assert ev["resourceType"] == "AuditEvent" and ev["id"] == "e1"
    assert ev["meta"]["profile"] == [BALP + "PatientRead"]
    assert ev["type"]["system"] == "http://terminology.hl7.org/CodeSystem/audit-event-type"
    assert ev["type"]["code"] == "rest"
    assert ev["subtype"] == [{"system": INTERACTION, "code": "read", "display": "read"}]
    assert ev["action"] == "R" and ev["outcome"] == "0"
    assert ev["recorded"] == "2025-10-09T08:53:20.123Z"
    assert codes(ev["purposeOfEvent"]) == [(PURPOSE, "TREAT")]
    patient, resource = ev["entity"]
    assert patient["what"] == {"reference": "Patient/p1"}
    assert (patient["type"]["code"], patient["role"]["code"]) == ("1", "1")
    assert patient["type"]["system"] == ENTITY_TYPE and patient["role"]["system"] == OBJECT_ROLE
    assert resource["what"] == {"reference": "Observation/o1/_history/3"}
    assert (resource["type"]["code"], resource["role"]["code"]) == ("2", "4")


def test_agents_user_client_institution_and_the_platform() -> None:
    ev = event()
    user, client, institution, server = ev["agent"]
    assert user["requestor"] is True
    assert user["who"]["identifier"] == {"system": "urn:rhip:subject", "value": "user:doc1"}
    assert codes([user["type"]]) == [("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "IRCP")]
    assert codes(user["role"]) == [("urn:rhip:role", "clinician")]
    assert codes(user["purposeOfUse"]) == [(PURPOSE, "TREAT")]
    assert user["policy"] == ["jti-1"]
    assert codes([client["type"]]) == [(DCM, "110153")]
    assert client["who"]["identifier"]["value"] == "his-4501"
    assert client["network"] == {"address": "10.1.2.3", "type": "2"}
    assert client["requestor"] is False
    assert institution["who"]["identifier"] == {"system": "urn:oid:2.16.156.10011.1.5", "value": "4501"}
    assert codes([server["type"]]) == [(DCM, "110152")]
    assert ev["source"]["observer"] == {"display": "rhip"}
    assert ev["source"]["type"][0]["code"] == "4"


def test_a_system_client_is_the_requesting_source() -> None:
    ev = event(system(), action="C", subtype="create", resources=[("Observation", "o1", 1)], patients=["p2"])
    requestor = ev["agent"][0]
    assert requestor["requestor"] is True
    assert codes([requestor["type"]]) == [(DCM, "110153")]
    assert requestor["who"]["identifier"]["value"] == "client:lis-4502"
    assert ev["meta"]["profile"] == [BALP + "PatientCreate"]
    assert codes(ev["purposeOfEvent"]) == [(PURPOSE, "TREAT")]


def test_a_resident_and_a_platform_process() -> None:
    mine = event(resident(), patients=["p1"])
    assert codes([mine["agent"][0]["type"]]) == [
        ("http://terminology.hl7.org/CodeSystem/v3-RoleClass", "PAT")
    ]
    assert codes(mine["purposeOfEvent"]) == [(PURPOSE, "PATRQT")]
    own = event(platform_principal("empi"), action="U", subtype="update")
    assert codes([own["agent"][0]["type"]]) == [(DCM, "110150")]
    assert codes(own["purposeOfEvent"]) == [(PURPOSE, "HOPERAT")]


def test_a_search_records_its_query_without_names_or_numbers() -> None:
    query = (
        "name=张三&identifier=urn:oid:2.16.156.10011.1.3|110101199003071234&gender=male&telecom=13812345678"
    )
    ev = event(action="R", subtype="search-type", query=f"Patient?{query}", patients=["p1", "p2"])
    assert ev["meta"]["profile"] == [BALP + "PatientQuery"]
    query_entity = ev["entity"][-1]
    assert (query_entity["type"]["code"], query_entity["role"]["code"]) == ("2", "24")
    recorded = base64.b64decode(query_entity["query"]).decode()
    assert recorded == "Patient?name=***&identifier=***&gender=male&telecom=***"
    assert redact_query("subject:Patient.name=李四&code=1234") == "subject:Patient.name=***&code=1234"
    assert redact_query("$everything") == "$everything"


def test_break_the_glass_asks_etreat_and_keeps_the_reason_on_the_patient() -> None:
    ev = event(
        patients=["p1"], detail={"break-glass": "unconscious; relative at 13812345678", "reason": "glass"}
    )
    assert codes(ev["purposeOfEvent"]) == [(PURPOSE, "ETREAT")]
    assert codes(ev["agent"][0]["purposeOfUse"]) == [(PURPOSE, "ETREAT")]
    detail = ev["entity"][0]["detail"]
    assert detail == [{"type": "break-glass-reason", "valueString": "unconscious; relative at 138****5678"}]
    assert ev["entity"][-1]["detail"] == [{"type": "reason", "valueString": "glass"}]


def test_a_refusal_has_its_outcome_and_reason_and_no_profile() -> None:
    ev = event(outcome="4", patients=["p1"], detail={"reason": "consent"})
    assert ev["outcome"] == "4" and ev["outcomeDesc"] == "consent"
    assert "profile" not in ev["meta"]


def test_other_doors_and_operations() -> None:
    v2 = event(system(), action="C", subtype="hl7v2:ADT^A01", resources=[("Patient", "p1", 2)])
    assert v2["type"] == {"system": DCM, "code": "110107", "display": "Import"}
    assert v2["subtype"] == [{"system": RHIP_SUBTYPE, "code": "hl7v2:ADT^A01"}]
    v3 = event(action="E", subtype="hl7v3:PRPA_IN201305UV02")
    assert v3["type"]["code"] == "110112"
    op = event(action="E", subtype="$everything", patients=["p1"])
    assert op["type"]["code"] == "rest"
    assert [c["code"] for c in op["subtype"]] == ["operation", "$everything"]
    type_level = event(action="E", subtype="operation", resources=[("Patient", "", None)])
    assert type_level["entity"][0]["what"] == {"reference": "Patient"}


def test_the_log_row_matches_its_event() -> None:
    row = audit_entry(
        clinician(),
        id="e9",
        recorded_us=NOW_US,
        action="R",
        subtype="search-type",
        resources=[("Observation", "o1", 1), ("Observation", "o2", None), ("", "", None)],
        patients=["p1", "p1", ""],
        query="code=x",
        algorithm="sha256",
    )
    checked = audit_row(row)
    assert checked.patients == "p1"
    assert checked.entities == "Observation/o1/_history/1 Observation/o2"
    assert (checked.subject, checked.role, checked.institution, checked.client) == (
        "user:doc1",
        "clinician",
        "4501",
        "his-4501",
    )
    assert (checked.event_type, checked.subtype, checked.purpose, checked.algorithm) == (
        "rest",
        "search-type",
        "TREAT",
        "sha256",
    )
    assert orjson.loads(unpack_event(checked.event))["id"] == "e9"


def test_an_event_holds_ids_only() -> None:
    principal = clinician()
    ev = event(
        principal,
        subtype="search-type",
        patients=["p1"],
        query="name=王五&phone=13912345678&birthdate=1990-03-07",
        detail={"break-glass": "ID 110101199003071234"},
    )
    text = orjson.dumps(ev).decode()
    for personal in ("王五", "13912345678", "110101199003071234"):
        assert personal not in text
        assert personal not in base64.b64decode(ev["entity"][-1]["query"]).decode()


def stored(**kw: Any) -> bytes:
    args: dict[str, Any] = {"id": "e1", "recorded_us": NOW_US, "action": "R", "subtype": "search-type"}
    args.update(kw)
    event = audit_entry(clinician(), **args)["event"]
    assert isinstance(event, bytes)
    return event


def test_the_log_stores_the_facts_and_reading_builds_the_same_event() -> None:
    kw: dict[str, Any] = {
        "patients": ["p1", "p2"],
        "resources": [("Observation", "o1", 2), ("Patient", "", None)],
        "query": "name=王五&code=x",
        "outcome": "4",
        "detail": {"reason": "no care relationship", "break-glass": "ID 110101199003071234"},
    }
    facts = stored(**kw)
    built = orjson.dumps(event(subtype="search-type", **kw))
    assert unpack_event(facts) == built
    assert len(facts) < len(built) / 3  # every read writes one: the log keeps a few hundred bytes
    for personal in (b"13912345678", b"110101199003071234", "王五".encode()):
        assert personal not in stored(
            query="name=王五&phone=13912345678", detail={"break-glass": "110101199003071234"}
        )


def test_events_stored_as_json_or_deflated_json_are_still_read() -> None:
    import zlib

    built = orjson.dumps(event(patients=["p1"]))
    assert unpack_event(built) == built
    assert unpack_event(zlib.compress(built, 1)) == built


def test_identity_events_have_their_dicom_types() -> None:
    from rhip.security.audit.balp import event_type

    kind, subtypes = event_type("login", "E")
    assert (kind["system"], kind["code"]) == (DCM, "110114")
    assert subtypes[0]["code"] == "110122"
    assert event_type("logout", "E")[1][0]["code"] == "110123"
    assert event_type("security-admin", "U")[0]["code"] == "110113"
    assert event_type("read", "R")[0]["code"] == "rest"
