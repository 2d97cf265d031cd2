"""PV1 (and PV2) → Encounter, upserted by visit number: ``PUT Encounter?identifier=urn:rhip:visit:<code>|<no>``.

The visit number is PV1-19 (else PV1-50), in the namespace of its assigning authority (CX-4), else of the
sender. Practitioners and departments are logical references (staff number or department code with the
institution as assigner, and the name as display): a staff number is unique only within its institution,
so it cannot be a conditional reference, and a message must never create registry entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from rhip.exchange.hl7v2.datatypes import (
    cwe_concept,
    part,
    patient_class,
    pl_reference,
    ts_datetime,
    uri_name,
    xcn_reference,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    identifier_criteria,
    location,
    missing,
    reading,
    reference,
)
from rhip.exchange.hl7v2.mapping.patient import PatientEntry
from rhip.exchange.hl7v2.message import Message, Segment

VISIT_PREFIX = "urn:rhip:visit:"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
DISCHARGE_WAY = "urn:oid:2.16.156.10011.2.3.1.265"  # WS 364 离院方式
_DISCHARGE_WAY = {
    "1": "医嘱离院",
    "2": "医嘱转院",
    "3": "医嘱转社区卫生服务机构/乡镇卫生院",
    "4": "非医嘱离院",
}
_DISCHARGE_WAY |= {"5": "死亡", "9": "其他"}
# PV1 fields naming a practitioner, with the ParticipationType the IG gives them
_PARTICIPANTS = (
    (7, "ATND", "attender"),
    (8, "REF", "referrer"),
    (9, "CON", "consultant"),
    (17, "ADM", "admitter"),
)


@dataclass(frozen=True)
class EncounterEntry:
    """An Encounter in the transaction: its fullUrl and its visit identifier."""

    full_url: str
    identifier: Json


def visit_identifier(pv1: Segment, institution: str) -> Json | None:
    """The visit number (PV1-19, else the first PV1-50) as ``urn:rhip:visit:<authority>|<number>``."""
    for n in (19, 50):
        reps = pv1.repetitions(n)
        if reps and part(reps[0], pv1.delimiters, 1):
            authority = part(reps[0], pv1.delimiters, 4) or institution
            return {"system": VISIT_PREFIX + uri_name(authority), "value": part(reps[0], pv1.delimiters, 1)}
    return None


def has_visit(pv1: Segment | None) -> bool:
    """Whether a PV1 describes a visit (class other than N, not applicable)."""
    return pv1 is not None and pv1.get(2).strip().upper() not in ("", "N")


def event_time(message: Message, builder: BundleBuilder) -> str | None:
    """EVN-6 (event occurred), else EVN-2 (recorded), as a FHIR dateTime."""
    evn = message.first("EVN")
    if evn is None:
        return None
    for n in (6, 2):
        with reading(evn, n):
            when = ts_datetime(evn.get(n), builder.ctx.zone)
        if when:
            return when
    return None


def _discharge_disposition(pv1: Segment, institution: str) -> Json | None:
    raw = pv1.repetitions(36)[0] if pv1.repetitions(36) else ""
    code = part(raw, pv1.delimiters, 1)
    if not code:
        return None
    if not part(raw, pv1.delimiters, 3) and code in _DISCHARGE_WAY:  # the WS 364 code a Chinese HIS sends
        return {"coding": [{"system": DISCHARGE_WAY, "code": code, "display": _DISCHARGE_WAY[code]}]}
    return cwe_concept(raw, pv1.delimiters, institution, "http://terminology.hl7.org/CodeSystem/v2-0112")


def encounter_resource(
    builder: BundleBuilder, pv1: Segment, visit: Json, patient: PatientEntry, status: str
) -> Json:
    """The Encounter a PV1 (and the message's PV2) describes, with ``status`` as the event implies."""
    d, institution, zone = pv1.delimiters, builder.ctx.institution, builder.ctx.zone
    with reading(pv1, 2):
        klass = patient_class(pv1.get(2))
    if klass is None:
        raise missing(pv1, 2, "patient class")
    enc: Json = {"resourceType": "Encounter", "identifier": [visit], "status": status, "class": klass}
    with reading(pv1, 10):
        service = cwe_concept(pv1.raw(10), d, institution, "http://terminology.hl7.org/CodeSystem/v2-0069")
    if service:
        enc["serviceType"] = service
    enc["subject"] = reference(patient.full_url)
    participants = []
    for n, code, display in _PARTICIPANTS:
        for raw in pv1.repetitions(n):
            who = xcn_reference(raw, d, institution)
            if who is not None:
                kind = {"coding": [{"system": PARTICIPATION, "code": code, "display": display}]}
                participants.append({"type": [kind], "individual": who})
    if participants:
        enc["participant"] = participants
    period = {}
    for key, n in (("start", 44), ("end", 45)):
        with reading(pv1, n):
            when = ts_datetime(pv1.get(n), zone)
        if when:
            period[key] = when
    if period:
        enc["period"] = period
    pv2 = builder.message.first("PV2")
    if pv2 is not None and pv2.repetitions(3):
        reason = cwe_concept(pv2.repetitions(3)[0], d, institution)
        if reason:
            enc["reasonCode"] = [reason]
    hospitalization: Json = {}
    admit_source = cwe_concept(pv1.raw(14), d, institution, "http://terminology.hl7.org/CodeSystem/v2-0023")
    if admit_source:
        hospitalization["admitSource"] = admit_source
    disposition = _discharge_disposition(pv1, institution)
    if disposition:
        hospitalization["dischargeDisposition"] = disposition
    if hospitalization:
        enc["hospitalization"] = hospitalization
    locations = []
    current = pl_reference(pv1.raw(3), d, institution)
    if current is not None:
        locations.append({"location": current, "status": "planned" if status == "planned" else "active"})
    prior = pl_reference(pv1.raw(6), d, institution)
    if prior is not None:
        locations.append({"location": prior, "status": "completed"})
    if locations:
        enc["location"] = locations
    enc["serviceProvider"] = reference(builder.organization())
    return enc


def map_encounter(
    builder: BundleBuilder, pv1: Segment, patient: PatientEntry, status: str, *, required: bool = False
) -> EncounterEntry | None:
    """Upsert the Encounter of a PV1; None when the PV1 names no visit (MappingError 101 if ``required``)."""
    visit = visit_identifier(pv1, builder.ctx.institution)
    if visit is None or not has_visit(pv1):
        if required:
            raise missing(
                pv1, 19 if visit is None else 2, "visit number" if visit is None else "patient class"
            )
        return None
    enc = encounter_resource(builder, pv1, visit, patient, status)
    where = location(builder.message, pv1)
    full_url = builder.put(enc, identifier_criteria(visit), where, focus=True)
    return EncounterEntry(full_url, visit)


def status_of(pv1: Segment, default: str) -> str:
    """``finished`` when PV1-45 (discharge) is valued, else ``default``."""
    return "finished" if pv1.get(45).strip() else default
