"""The segment groups of order and result messages (ORU, ORM, OML, VXU), and their patient and visit.

The v2 message structures nest: a PATIENT (PID, PV1, patient-level OBX) holds ORDERs (ORC, then the
order detail OBR, RXA, RXO or RQD, with TQ1 and NTE), an order holds OBSERVATIONs (OBX and the NTE that
follow it) and SPECIMENs (SPM and the OBX that follow it). :func:`patient_groups` reads them in one pass,
tolerating what real messages do (OBR without ORC, ORC without detail, segments the mappers do not use).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rhip.exchange.hl7v2.mapping.base import BundleBuilder, MappingError, identifier_criteria, location
from rhip.exchange.hl7v2.mapping.encounter import (
    EncounterEntry,
    encounter_resource,
    has_visit,
    visit_identifier,
)
from rhip.exchange.hl7v2.mapping.patient import PatientEntry, map_patient
from rhip.exchange.hl7v2.message import Message, Segment, unescape

DETAIL_SEGMENTS = frozenset(("OBR", "RXA", "RXO", "RQD"))


@dataclass
class Observed:
    """An OBX and the NTE segments that follow it."""

    obx: Segment
    notes: list[Segment] = field(default_factory=list)


@dataclass
class SpecimenGroup:
    """An SPM and the OBX that follow it (observations about the specimen)."""

    spm: Segment
    observations: list[Observed] = field(default_factory=list)


@dataclass
class OrderGroup:
    """An ORC and its detail segment (OBR, RXA, RXO or RQD), with what belongs to them."""

    orc: Segment | None = None
    detail: Segment | None = None
    tq1: Segment | None = None
    rxr: Segment | None = None
    notes: list[Segment] = field(default_factory=list)
    observations: list[Observed] = field(default_factory=list)
    specimens: list[SpecimenGroup] = field(default_factory=list)

    @property
    def first(self) -> Segment:
        """The segment that opened the group (for error locations)."""
        seg = self.orc or self.detail
        assert seg is not None
        return seg


@dataclass
class PatientGroup:
    """A PID with its visit, its patient-level observations and its orders."""

    pid: Segment
    pv1: Segment | None = None
    observations: list[Observed] = field(default_factory=list)
    orders: list[OrderGroup] = field(default_factory=list)


def patient_groups(message: Message) -> list[PatientGroup]:
    """The PATIENT groups of a message, in order; MappingError 100 when it has no PID or a group precedes it."""
    patients: list[PatientGroup] = []
    order: OrderGroup | None = None
    specimen: SpecimenGroup | None = None
    last_obs: Observed | None = None
    for seg in message.segments[1:]:
        name = seg.name
        if name == "PID":
            patients.append(PatientGroup(seg))
            order = specimen = last_obs = None
            continue
        if name in ("ORC", "OBR", "RXA", "RXO", "RQD", "OBX", "SPM") and not patients:
            raise MappingError(
                f"{name} comes before any PID segment", segment=name, sequence=seg.sequence, hl7_code="100"
            )
        if not patients:
            continue
        patient = patients[-1]
        if name == "PV1":
            if patient.pv1 is None:
                patient.pv1 = seg
        elif name == "ORC":
            order = OrderGroup(orc=seg)
            patient.orders.append(order)
            specimen = last_obs = None
        elif name in DETAIL_SEGMENTS:
            if order is None or order.detail is not None:
                order = OrderGroup()
                patient.orders.append(order)
            order.detail = seg
            specimen = last_obs = None
        elif name == "TQ1" and order is not None and order.tq1 is None:
            order.tq1 = seg
        elif name == "RXR" and order is not None and order.rxr is None:
            order.rxr = seg
        elif name == "SPM" and order is not None:
            specimen = SpecimenGroup(seg)
            order.specimens.append(specimen)
            last_obs = None
        elif name == "OBX":
            last_obs = Observed(seg)
            if specimen is not None:
                specimen.observations.append(last_obs)
            elif order is not None:
                order.observations.append(last_obs)
            else:
                patient.observations.append(last_obs)
        elif name == "NTE":
            if last_obs is not None:
                last_obs.notes.append(seg)
            elif order is not None:
                order.notes.append(seg)
        elif (
            name != "PRT"
        ):  # a PRT belongs to the OBX before it (v2.7+); after CTD, FT1 … an NTE is not the OBX's
            last_obs = None
    if not patients:
        raise MappingError(
            f"the {message.message_type} message has no PID segment", segment="PID", hl7_code="100"
        )
    return patients


@dataclass(frozen=True)
class Subject:
    """The patient of a group (upserted) and its visit (created when new, never overwritten)."""

    patient: PatientEntry
    encounter: EncounterEntry | None


def map_subject(builder: BundleBuilder, group: PatientGroup) -> Subject:
    """Create the group's Patient when new (an existing one is ADT's to change); its visit likewise.

    A result or an order names a visit that the ADT feed describes: an Encounter that does not exist yet
    is created from the PV1 (status ``unknown``), one that exists is left as the ADT feed wrote it.
    """
    patient = map_patient(builder, group.pid, focus=False, demographics=False)
    pv1 = group.pv1
    if pv1 is None or not has_visit(pv1):
        return Subject(patient, None)
    visit = visit_identifier(pv1, builder.ctx.institution)
    if visit is None:
        return Subject(patient, None)
    resource = encounter_resource(builder, pv1, visit, patient, "unknown")
    full_url = builder.create(resource, identifier_criteria(visit), location(builder.message, pv1))
    return Subject(patient, EncounterEntry(full_url, visit))


def notes(segments: list[Segment]) -> list[dict[str, str]]:
    """NTE-3 comments as Annotations (one per NTE, its repetitions joined by line breaks)."""
    out = []
    for nte in segments:
        text = "\n".join(t for t in (unescape(r, nte.delimiters).strip() for r in nte.repetitions(3)) if t)
        if text:
            out.append({"text": text})
    return out
