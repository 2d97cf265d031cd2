"""AuditEvents in the IHE Basic Audit Log Patterns (BALP) shape, FHIR R4, and the audit-log rows holding them.

One event records who (the requesting user or client, its role, institution, network address and token),
what they did (``type`` rest and the FHIR interaction as ``subtype``; other doors, an HL7 v2 message or a
v3 interaction, get a DICOM import/export/query type and a ``urn:rhip`` subtype), to which patients and
resources, why (purpose of use; ETREAT and the stated reason when the glass was broken) and with what
outcome. Following DICOM and IHE, the client is the Source Role and the platform the Destination Role.

An event names people by their ids only: Patient ids, ``user:``/``client:`` subjects and institution
codes. Free text (a break-the-glass reason, a search's query string) has ID numbers and phone numbers
masked, and search parameters that carry names, identifiers or contact details lose their values.
"""

from __future__ import annotations

import base64
import ipaddress
import zlib
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from rhip.core.clock import fhir_instant
from rhip.fhir.search.values import us_to_datetime
from rhip.security.audit.redaction import redact_query, safe_text
from rhip.security.principal import Principal, Role

ResourceRef = tuple[str, str, int | None]  # (type, id, version)


class Actor(NamedTuple):
    """What an entry records of its principal: plain values (they travel to the audit appender process)."""

    subject: str
    role: str
    token_id: str | None
    client_id: str | None
    address: str | None
    institution: str | None
    purpose_of_use: str


def actor_of(principal: Principal | Actor) -> Actor:
    """The recorded facts of a principal."""
    if isinstance(principal, Actor):
        return principal
    return Actor(
        principal.subject,
        principal.role.value,
        principal.token_id,
        principal.client_id,
        principal.address,
        principal.institution,
        principal.purpose_of_use,
    )


EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
PURPOSE = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
SUBJECT_SYSTEM = "urn:rhip:subject"  # user:<name>, client:<id>, platform:<process>
CLIENT_SYSTEM = "urn:rhip:client"
ROLE_SYSTEM = "urn:rhip:role"
RHIP_SUBTYPE = "urn:rhip:interaction"  # other doors: hl7v2:ADT^A01, hl7v3:PRPA_IN201305UV02 …
OPERATION_SYSTEM = "urn:rhip:operation"
INSTITUTION_SYSTEM = "urn:oid:2.16.156.10011.1.5"  # 医疗机构代码
GLASS_DETAIL = "break-glass"

FHIR_INTERACTIONS = frozenset(
    {
        "read", "vread", "update", "patch", "delete", "history", "history-instance", "history-type",
        "history-system", "create", "search", "search-type", "search-system", "capabilities",
        "transaction", "batch", "operation",
    }
)  # fmt: skip
# BALP profiles of successful RESTful actions: (with a patient, without).
_PROFILES = {
    "read": ("PatientRead", "Read"),
    "vread": ("PatientRead", "Read"),
    "search-type": ("PatientQuery", "Query"),
    "search-system": ("PatientQuery", "Query"),
    "search": ("PatientQuery", "Query"),
    "create": ("PatientCreate", "Create"),
    "update": ("PatientUpdate", "Update"),
    "patch": ("PatientUpdate", "Update"),
    "delete": ("PatientDelete", "Delete"),
}
# Other doors: data coming in is an import, data going out an export, a query a query (DICOM codes).
_DOOR_TYPES = {
    "C": ("110107", "Import"),
    "U": ("110107", "Import"),
    "D": ("110107", "Import"),
    "R": ("110106", "Export"),
    "E": ("110112", "Query"),
}


# Identity events (DICOM PS3.16 CID 400/401): sign-in and sign-out, refused credentials, security changes.
_SECURITY_TYPES = {
    "login": (("110114", "User Authentication"), ("110122", "Login")),
    "authenticate": (("110114", "User Authentication"), ("110122", "Login")),
    "logout": (("110114", "User Authentication"), ("110123", "Logout")),
    "security-admin": (("110113", "Security Alert"), ("110137", "User Security Attributes Changed")),
}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def entity_ref(ref: ResourceRef) -> str:
    """``Type/id/_history/version`` (``Type/id`` without a version, ``Type`` for a type-level action)."""
    rtype, rid, version = ref
    if not rid:
        return rtype
    return f"{rtype}/{rid}/_history/{version}" if version is not None else f"{rtype}/{rid}"


def event_type(subtype: str, action: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The ``type`` and ``subtype`` codings of an interaction (``$name``: a FHIR operation)."""
    if subtype.startswith("$"):
        return _coding(EVENT_TYPE, "rest", "Restful Operation"), [
            _coding(INTERACTION, "operation", "operation"),
            _coding(OPERATION_SYSTEM, subtype),
        ]
    if subtype in FHIR_INTERACTIONS:
        return _coding(EVENT_TYPE, "rest", "Restful Operation"), [_coding(INTERACTION, subtype, subtype)]
    if subtype in _SECURITY_TYPES:
        (code, display), (sub, sub_display) = _SECURITY_TYPES[subtype]
        return _coding(DCM, code, display), [_coding(DCM, sub, sub_display), _coding(RHIP_SUBTYPE, subtype)]
    code, display = _DOOR_TYPES[action]
    return _coding(DCM, code, display), [_coding(RHIP_SUBTYPE, subtype)]


def _network(address: str) -> dict[str, str]:
    try:
        ipaddress.ip_address(address)
        kind = "2"  # IP address
    except ValueError:
        kind = "1"  # machine name
    return {"address": address, "type": kind}


def _agents(facts: _Facts, purpose: str) -> list[dict[str, Any]]:
    kind = facts.subject.partition(":")[0]
    if facts.role == Role.RESIDENT.value:
        participation = _concept(ROLE_CLASS, "PAT", "patient")
    elif kind == "user":
        participation = (
            _concept(PARTICIPATION, "IRCP", "information recipient")
            if facts.action in ("R", "E")
            else _concept(ROLE_CLASS, "AGNT", "agent")
        )
    elif kind == "client":
        participation = _concept(DCM, "110153", "Source Role ID")
    else:
        participation = _concept(DCM, "110150", "Application")
    requestor: dict[str, Any] = {
        "type": participation,
        "role": [_concept(ROLE_SYSTEM, facts.role)],
        "who": {"identifier": {"system": SUBJECT_SYSTEM, "value": facts.subject}},
        "requestor": True,
        "purposeOfUse": [_concept(PURPOSE, purpose)],
    }
    if facts.token:
        requestor["policy"] = [facts.token]
    agents = [requestor]
    client = facts.client if kind == "user" else None
    if client:
        source: dict[str, Any] = {
            "type": _concept(DCM, "110153", "Source Role ID"),
            "who": {"identifier": {"system": CLIENT_SYSTEM, "value": client}},
            "requestor": False,
        }
        if facts.address:
            source["network"] = _network(facts.address)
        agents.append(source)
    elif facts.address:
        requestor["network"] = _network(facts.address)
    if facts.institution:
        agents.append(
            {
                "type": _concept(ROLE_CLASS, "PROV", "healthcare provider"),
                "who": {"identifier": {"system": INSTITUTION_SYSTEM, "value": facts.institution}},
                "requestor": False,
            }
        )
    agents.append(
        {
            "type": _concept(DCM, "110152", "Destination Role ID"),
            "who": {"display": facts.observer},
            "requestor": False,
        }
    )
    return agents


def _entities(facts: _Facts) -> list[dict[str, Any]]:
    glass, query, patients = facts.glass, facts.query, facts.patients
    glass_detail = [{"type": "break-glass-reason", "valueString": glass}] if glass is not None else []
    entities: list[dict[str, Any]] = []
    for patient in patients:
        entity: dict[str, Any] = {
            "what": {"reference": f"Patient/{patient}"},
            "type": _coding(ENTITY_TYPE, "1", "Person"),
            "role": _coding(OBJECT_ROLE, "1", "Patient"),
        }
        if glass_detail:
            entity["detail"] = list(glass_detail)
        entities.append(entity)
    for ref in facts.resources:
        entities.append(
            {
                "what": {"reference": entity_ref((ref[0], ref[1], ref[2]))},
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    extra = [{"type": key, "valueString": value} for key, value in facts.detail]
    if glass is not None and not patients:
        extra = [*glass_detail, *extra]
    if query is not None:
        entity = {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "24", "Query"),
            "query": base64.b64encode(query.encode()).decode(),
        }
        entities.append(entity)
    if extra:
        # Details ride on the query when there is one, else on an entity of their own.
        if query is not None:
            entities[-1]["detail"] = extra
        else:
            entities.append({"detail": extra})
    return entities


class _Facts(NamedTuple):
    """What one AuditEvent says, free text already made safe: the stored form of the event.

    The log keeps these (a few hundred bytes) rather than the BALP JSON (2–3 kB), which is built from
    them when read: every read and search writes an entry, few entries are ever read back.
    """

    id: str
    recorded_us: int
    action: str
    subtype: str
    outcome: str
    observer: str
    subject: str
    role: str
    token: str | None
    client: str | None
    address: str | None
    institution: str | None
    purpose: str
    patients: list[str]
    resources: list[list[Any]]  # [type, id, version]
    query: str | None  # redacted
    glass: str | None  # the break-the-glass reason, masked
    reason: str | None  # a refusal's reason (outcomeDesc), masked
    detail: list[list[str]]  # [key, masked value] except the break-the-glass reason


_STORED = b"\x01"  # first byte of the stored facts (JSON starts with "{", a zlib stream with "x")


def _facts(
    actor: Actor,
    id: str,
    recorded_us: int,
    action: str,
    subtype: str,
    resources: Sequence[ResourceRef],
    patients: Sequence[str],
    outcome: str,
    query: str | None,
    detail: Mapping[str, str] | None,
    observer: str,
) -> _Facts:
    detail = detail or {}
    glass, reason = detail.get(GLASS_DETAIL), detail.get("reason")
    return _Facts(
        id,
        recorded_us,
        action,
        subtype,
        outcome,
        observer,
        actor.subject,
        actor.role,
        actor.token_id,
        actor.client_id,
        actor.address,
        actor.institution,
        "ETREAT" if glass else actor.purpose_of_use,
        list(patients),
        [list(r) for r in resources],
        None if query is None else redact_query(query),
        safe_text(glass) if glass else None,
        safe_text(reason) if outcome != "0" and reason else None,
        [[key, safe_text(value)] for key, value in detail.items() if key != GLASS_DETAIL],
    )


def _render(facts: _Facts) -> dict[str, Any]:
    recorded = fhir_instant(us_to_datetime(facts.recorded_us))
    kind, subtypes = event_type(facts.subtype, facts.action)
    meta: dict[str, Any] = {"versionId": "1", "lastUpdated": recorded}
    profiles = _PROFILES.get(facts.subtype)
    if profiles is not None and facts.outcome == "0":
        meta["profile"] = [BALP + profiles[0 if facts.patients else 1]]
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": facts.id,
        "meta": meta,
        "type": kind,
        "subtype": subtypes,
        "action": facts.action,
        "recorded": recorded,
        "outcome": facts.outcome,
    }
    if facts.reason is not None:
        event["outcomeDesc"] = facts.reason
    event["purposeOfEvent"] = [_concept(PURPOSE, facts.purpose)]
    event["agent"] = _agents(facts, facts.purpose)
    event["source"] = {
        "observer": {"display": facts.observer},
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }
    entities = _entities(facts)
    if entities:
        event["entity"] = entities
    return event


def unpack_event(stored: bytes) -> bytes:
    """The AuditEvent JSON of a stored event (stored facts, or JSON as entries once held, plain or deflated)."""
    if stored[:1] == _STORED:
        return orjson.dumps(_render(_Facts(*orjson.loads(stored[1:]))))
    return stored if stored[:1] == b"{" else zlib.decompress(stored)


def audit_event(
    principal: Principal | Actor,
    *,
    id: str,
    recorded_us: int,
    action: str,
    subtype: str,
    resources: Sequence[ResourceRef] = (),
    patients: Sequence[str] = (),
    outcome: str = "0",
    query: str | None = None,
    detail: Mapping[str, str] | None = None,
    observer: str = "rhip",
) -> dict[str, Any]:
    """The BALP AuditEvent (R4) of one access or change, as a dict."""
    facts = _facts(
        actor_of(principal),
        id,
        recorded_us,
        action,
        subtype,
        resources,
        patients,
        outcome,
        query,
        detail,
        observer,
    )
    return _render(facts)


def audit_entry(
    principal: Principal | Actor,
    *,
    id: str,
    recorded_us: int,
    action: str,
    subtype: str,
    resources: Sequence[ResourceRef] = (),
    patients: Sequence[str] = (),
    outcome: str = "0",
    query: str | None = None,
    detail: Mapping[str, str] | None = None,
    observer: str = "rhip",
    algorithm: str = "sm3",
) -> dict[str, Any]:
    """The audit-log row (:func:`rhip.db.audit.audit_row`'s mapping) of one access or change.

    Its ``event`` holds the facts the AuditEvent is built from (:func:`unpack_event` builds it).
    """
    patients = [p for p in dict.fromkeys(patients) if p]
    resources = [r for r in resources if r[0]]
    actor = actor_of(principal)
    facts = _facts(
        actor, id, recorded_us, action, subtype, resources, patients, outcome, query, detail, observer
    )
    return {
        "id": id,
        "recorded_us": recorded_us,
        "action": action,
        "outcome": outcome,
        "event_type": _event_code(subtype, action),
        "subtype": "operation" if subtype.startswith("$") else subtype,
        "subject": actor.subject,
        "role": actor.role,
        "institution": actor.institution,
        "client": actor.client_id,
        "purpose": facts.purpose,
        "patients": patients,
        "entities": [entity_ref(r) for r in resources],
        "event": _STORED + orjson.dumps(list(facts)),
        "algorithm": algorithm,
    }


def _event_code(subtype: str, action: str) -> str:
    if subtype.startswith("$") or subtype in FHIR_INTERACTIONS:
        return "rest"
    return _DOOR_TYPES[action][0]
