"""SIU scheduling messages → Appointment (and the Patient upserted), after the IG's SCH/AIS/AIP/AIL maps.

The Appointment is upserted by its filler appointment id (SCH-2), else its placer id (SCH-1):
``PUT Appointment?identifier=urn:rhip:appointment:<authority>|<id>``. S12 (new) books it; S13 (reschedule)
and S14 (modify) update it; S15 (cancel) and S26 (no-show) set its status. Start and end come from TQ1-7/8,
else SCH-11 (TQ, before 2.5), else the first AIS start and duration; the duration from SCH-9/10.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rhip.exchange.hl7v2.datatypes import (
    coding,
    cwe_concept,
    ei_identifier,
    part,
    pl_reference,
    ts_instant,
    xcn_reference,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    Mapped,
    Mapper,
    MappingContext,
    MappingError,
    identifier_criteria,
    location,
    reading,
    reference,
    required_segment,
    start,
)
from rhip.exchange.hl7v2.mapping.patient import map_patient
from rhip.exchange.hl7v2.message import Delimiters, Message, Segment

_STATUS = {"PENDING": "pending", "WAITLIST": "waitlist", "BOOKED": "booked", "STARTED": "checked-in"}
_STATUS |= {
    "COMPLETE": "fulfilled",
    "CANCELLED": "cancelled",
    "DELETED": "entered-in-error",
    "NOSHOW": "noshow",
}
_EVENT_STATUS = {"S15": "cancelled", "S26": "noshow"}  # events that say the status themselves
_PARTICIPATION = {
    "BOOKED": "accepted",
    "PENDING": "tentative",
    "WAITLIST": "tentative",
    "CANCELLED": "declined",
}
_PARTICIPATION |= {"DELETED": "declined", "NOSHOW": "declined", "COMPLETE": "accepted", "STARTED": "accepted"}
_MINUTES = {"MIN": 1.0, "M": 1.0, "S": 1 / 60, "SEC": 1 / 60, "H": 60.0, "HR": 60.0, "D": 1440.0, "": 1.0}
_TIMELESS = frozenset(("proposed", "cancelled", "waitlist"))  # app-3: only these may lack start and end
_V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


def _identifiers(sch: Segment, institution: str) -> list[Json]:
    found = []
    for n, prefix, kind in ((2, "urn:rhip:appointment", "FILL"), (1, "urn:rhip:appointment-placer", "PLAC")):
        raw = sch.repetitions(n)[0] if sch.repetitions(n) else ""
        ident = ei_identifier(raw, sch.delimiters, prefix, institution) if raw else None
        if ident is not None:
            ident["type"] = {"coding": [coding(kind, "", _V2_0203)]}
            found.append(ident)
    if not found:
        raise MappingError(
            "SCH-2 (filler appointment id) and SCH-1 (placer appointment id) are both empty",
            segment="SCH",
            sequence=sch.sequence,
            field=2,
            hl7_code="101",
        )
    return found


def _minutes(amount: str, units_raw: str, d: Delimiters) -> float | None:
    try:
        value = float(amount)
    except ValueError:
        return None
    factor = _MINUTES.get(part(units_raw, d, 1).upper())
    return value * factor if factor is not None and value > 0 else None


def _period(
    message: Message, sch: Segment, builder: BundleBuilder
) -> tuple[str | None, str | None, float | None]:
    """Start, end (FHIR instants) and duration in minutes."""
    d, zone = sch.delimiters, builder.ctx.zone
    minutes = _minutes(sch.get(9), sch.raw(10), d)
    tq1 = message.first("TQ1")
    begin = end = None
    if tq1 is not None:
        with reading(tq1, 7):
            begin = ts_instant(tq1.get(7), zone)
        with reading(tq1, 8):
            end = ts_instant(tq1.get(8), zone)
    if begin is None and sch.repetitions(11):
        with reading(sch, 11):
            begin = ts_instant(sch.get(11, 4), zone)
            end = ts_instant(sch.get(11, 5), zone)
    ais = message.first("AIS")
    if begin is None and ais is not None:
        with reading(ais, 4):
            begin = ts_instant(ais.get(4), zone)
        minutes = minutes or _minutes(ais.get(7), ais.raw(8), d)
    if begin is not None and end is None and minutes:
        end = (datetime.fromisoformat(begin) + timedelta(minutes=minutes)).isoformat()
    return begin, end, minutes


def _participants(message: Message, builder: BundleBuilder, patient_url: str) -> list[Json]:
    institution = builder.ctx.institution
    people: list[Json] = [{"actor": reference(patient_url), "required": "required", "status": "accepted"}]
    for seg, field_at, status_at in (("AIP", 3, 12), ("AIL", 3, 12), ("AIG", 3, 14)):
        for s in message.all(seg):
            d = s.delimiters
            raw = s.repetitions(field_at)[0] if s.repetitions(field_at) else ""
            if seg == "AIP":
                actor = xcn_reference(raw, d, institution)
            elif seg == "AIL":
                actor = pl_reference(raw, d, institution)
            else:
                concept = cwe_concept(raw, d, institution)
                actor = {"display": concept.get("text") or concept["coding"][0]["code"]} if concept else None
            if actor is None:
                continue
            status = _PARTICIPATION.get(s.get(status_at).strip().upper(), "accepted")
            entry: Json = {"actor": actor, "status": status}
            role = cwe_concept(s.raw(4), d, institution) if seg in ("AIP", "AIG") and s.raw(4) else None
            if role:
                entry["type"] = [role]
            people.append(entry)
    return people


def _comment(message: Message, sch: Segment) -> str:
    """The NTE segments that follow SCH (and its TQ1), joined: notes on the appointment itself."""
    texts = []
    after = False
    for seg in message.segments:
        if seg is sch:
            after = True
        elif after and seg.name == "NTE":
            texts.append(seg.field_text(3).strip())
        elif after and seg.name != "TQ1":
            break
    return "\n".join(t for t in texts if t)


def map_siu(message: Message, ctx: MappingContext) -> Mapped:
    """Map SIU S12/S13/S14/S15/S26 onto an upserted Appointment and the Patient."""
    builder = start(message, ctx)
    sch = required_segment(message, "SCH")
    pid = required_segment(message, "PID")
    idents = _identifiers(sch, ctx.institution)
    patient = map_patient(builder, pid, focus=False, demographics=False)
    d = sch.delimiters
    filler_status = sch.get(25).strip().upper()
    status = _EVENT_STATUS.get(message.trigger) or _STATUS.get(filler_status, "booked")
    appointment: Json = {"resourceType": "Appointment", "identifier": idents, "status": status}
    services = [c for c in (cwe_concept(a.raw(3), d, ctx.institution) for a in message.all("AIS")) if c]
    if services:
        appointment["serviceType"] = services
    with reading(sch, 8):
        kind = cwe_concept(sch.raw(8), d, ctx.institution, "http://terminology.hl7.org/CodeSystem/v2-0277")
    if kind:
        appointment["appointmentType"] = kind
    with reading(sch, 7):
        reason = cwe_concept(sch.raw(7), d, ctx.institution, "http://terminology.hl7.org/CodeSystem/v2-0276")
    if reason:
        appointment["reasonCode"] = [reason]
    begin, end, minutes = _period(message, sch, builder)
    if begin and end:
        appointment["start"], appointment["end"] = begin, end
    elif status not in _TIMELESS:
        field = 7 if message.first("TQ1") is not None else 11
        seg = message.first("TQ1") or sch
        raise MappingError(
            f"the appointment has no start and end ({seg.name}-{field}/{field + 1}, else SCH-9 duration)",
            segment=seg.name,
            sequence=seg.sequence,
            field=field,
            hl7_code="101",
        )
    if minutes and minutes >= 1:
        appointment["minutesDuration"] = round(minutes)
    comment = _comment(message, sch)
    if comment:
        appointment["comment"] = comment
    appointment["participant"] = _participants(message, builder, patient.full_url)
    builder.put(appointment, identifier_criteria(idents[0]), location(message, sch), focus=True)
    return builder.mapped([patient.key])


MAPPERS: dict[str, Mapper] = {f"SIU^{event}": map_siu for event in ("S12", "S13", "S14", "S15", "S26")}
