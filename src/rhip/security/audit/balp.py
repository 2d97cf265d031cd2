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
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from rhip.core.clock import fhir_instant
from rhip.fhir.search.values import us_to_datetime
from rhip.security.masking import redact
from rhip.security.principal import Principal, Role

ResourceRef = tuple[str, str, int | None]  # (type, id, version)

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
# Search parameters whose values are names, identifiers or contact details: recorded without the value.
_PERSONAL_PARAMS = frozenset(
    {
        "name", "family", "given", "phonetic", "identifier", "telecom", "phone", "email", "address",
        "address-city", "address-country", "address-postalcode", "address-state", "address-use",
        "_content", "_text", "text", "mothersMaidenName", "mothers-maiden-name",
    }
)  # fmt: skip
_TEXT_LIMIT = 500


def _coding(system: str, code: str, display: str | None = None) -> dict[str, str]:
    coding = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [_coding(system, code, display)]}


def safe_text(text: str) -> str:
    """Free text fit for the log: ID and phone numbers masked, secrets removed, length capped."""
    return redact(text)[:_TEXT_LIMIT]


def redact_query(query: str) -> str:
    """A query string without the values of parameters that carry names, identifiers or contacts."""
    head, mark, params = query.rpartition("?")
    if not mark:
        head, params = "", query
    parts = []
    for pair in params.split("&"):
        name, eq, value = pair.partition("=")
        code = name.split(".")[-1].split(":")[0]
        parts.append(f"{name}=***" if eq and code in _PERSONAL_PARAMS and value else pair)
    return safe_text(f"{head}{mark}{'&'.join(parts)}")


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
    code, display = _DOOR_TYPES[action]
    return _coding(DCM, code, display), [_coding(RHIP_SUBTYPE, subtype)]


def _network(address: str) -> dict[str, str]:
    try:
        ipaddress.ip_address(address)
        kind = "2"  # IP address
    except ValueError:
        kind = "1"  # machine name
    return {"address": address, "type": kind}


def _agents(principal: Principal, action: str, purpose: str, observer: str) -> list[dict[str, Any]]:
    kind = principal.subject.partition(":")[0]
    if principal.role is Role.RESIDENT:
        participation = _concept(ROLE_CLASS, "PAT", "patient")
    elif kind == "user":
        participation = (
            _concept(PARTICIPATION, "IRCP", "information recipient")
            if action in ("R", "E")
            else _concept(ROLE_CLASS, "AGNT", "agent")
        )
    elif kind == "client":
        participation = _concept(DCM, "110153", "Source Role ID")
    else:
        participation = _concept(DCM, "110150", "Application")
    requestor: dict[str, Any] = {
        "type": participation,
        "role": [_concept(ROLE_SYSTEM, principal.role.value)],
        "who": {"identifier": {"system": SUBJECT_SYSTEM, "value": principal.subject}},
        "requestor": True,
        "purposeOfUse": [_concept(PURPOSE, purpose)],
    }
    if principal.token_id:
        requestor["policy"] = [principal.token_id]
    agents = [requestor]
    client = principal.client_id if kind == "user" else None
    if client:
        source: dict[str, Any] = {
            "type": _concept(DCM, "110153", "Source Role ID"),
            "who": {"identifier": {"system": CLIENT_SYSTEM, "value": client}},
            "requestor": False,
        }
        if principal.address:
            source["network"] = _network(principal.address)
        agents.append(source)
    elif principal.address:
        requestor["network"] = _network(principal.address)
    if principal.institution:
        agents.append(
            {
                "type": _concept(ROLE_CLASS, "PROV", "healthcare provider"),
                "who": {"identifier": {"system": INSTITUTION_SYSTEM, "value": principal.institution}},
                "requestor": False,
            }
        )
    agents.append(
        {
            "type": _concept(DCM, "110152", "Destination Role ID"),
            "who": {"display": observer},
            "requestor": False,
        }
    )
    return agents


def _entities(
    patients: Sequence[str],
    resources: Sequence[ResourceRef],
    query: str | None,
    detail: Mapping[str, str],
) -> list[dict[str, Any]]:
    glass = detail.get(GLASS_DETAIL)
    glass_detail = [{"type": "break-glass-reason", "valueString": safe_text(glass)}] if glass else []
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
    for ref in resources:
        entities.append(
            {
                "what": {"reference": entity_ref(ref)},
                "type": _coding(ENTITY_TYPE, "2", "System Object"),
                "role": _coding(OBJECT_ROLE, "4", "Domain Resource"),
            }
        )
    extra = [
        {"type": key, "valueString": safe_text(value)} for key, value in detail.items() if key != GLASS_DETAIL
    ]
    if glass and not patients:
        extra = [*glass_detail, *extra]
    if query is not None:
        encoded = base64.b64encode(redact_query(query).encode()).decode()
        entity = {
            "type": _coding(ENTITY_TYPE, "2", "System Object"),
            "role": _coding(OBJECT_ROLE, "24", "Query"),
            "query": encoded,
        }
        entities.append(entity)
    if extra:
        # Details ride on the query when there is one, else on an entity of their own.
        if query is not None:
            entities[-1]["detail"] = extra
        else:
            entities.append({"detail": extra})
    return entities


def audit_event(
    principal: Principal,
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
    detail = detail or {}
    purpose = "ETREAT" if detail.get(GLASS_DETAIL) else principal.purpose_of_use
    recorded = fhir_instant(us_to_datetime(recorded_us))
    kind, subtypes = event_type(subtype, action)
    meta: dict[str, Any] = {"versionId": "1", "lastUpdated": recorded}
    profiles = _PROFILES.get(subtype)
    if profiles is not None and outcome == "0":
        meta["profile"] = [BALP + profiles[0 if patients else 1]]
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": id,
        "meta": meta,
        "type": kind,
        "subtype": subtypes,
        "action": action,
        "recorded": recorded,
        "outcome": outcome,
    }
    if outcome != "0" and detail.get("reason"):
        event["outcomeDesc"] = safe_text(detail["reason"])
    event["purposeOfEvent"] = [_concept(PURPOSE, purpose)]
    event["agent"] = _agents(principal, action, purpose, observer)
    event["source"] = {
        "observer": {"display": observer},
        "type": [_coding(SOURCE_TYPE, "4", "Application Server")],
    }
    entities = _entities(patients, resources, query, detail)
    if entities:
        event["entity"] = entities
    return event


def audit_entry(
    principal: Principal,
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
    """The audit-log row (:func:`rhip.db.audit.audit_row`'s mapping) of one access or change."""
    patients = [p for p in dict.fromkeys(patients) if p]
    resources = [r for r in resources if r[0]]
    event = audit_event(
        principal,
        id=id,
        recorded_us=recorded_us,
        action=action,
        subtype=subtype,
        resources=resources,
        patients=patients,
        outcome=outcome,
        query=query,
        detail=detail,
        observer=observer,
    )
    return {
        "id": id,
        "recorded_us": recorded_us,
        "action": action,
        "outcome": outcome,
        "event_type": event["type"]["code"],
        "subtype": event["subtype"][0]["code"],
        "subject": principal.subject,
        "role": principal.role.value,
        "institution": principal.institution,
        "client": principal.client_id,
        "purpose": event["purposeOfEvent"][0]["coding"][0]["code"],
        "patients": patients,
        "entities": [entity_ref(r) for r in resources],
        "event": orjson.dumps(event),
        "algorithm": algorithm,
    }
