"""ADT events → FHIR, after the v2-to-FHIR IG's ADT_A01 message map, with the platform's upsert keys.

| event | structure | result |
|---|---|---|
| A01 admit, A04 register, A05 pre-admit, A08 update | ADT_A01 | Patient, Encounter (when PV1 names a visit), |
| | | RelatedPerson (NK1), Observation (OBX), AllergyIntolerance (AL1), Condition (DG1) |
| A02 transfer | ADT_A02 | Patient, Encounter with the new location active and the prior one completed |
| A03 discharge | ADT_A03 | Patient, Encounter finished (period.end from PV1-45, else EVN-6/EVN-2), Conditions, Observations |
| A11 cancel admit | ADT_A09 | Patient, Encounter cancelled |
| A13 cancel discharge | ADT_A01 | Patient, Encounter in progress again (no period.end) |
| A28 add person, A31 update person | ADT_A05 | Patient, RelatedPerson, AllergyIntolerance (no visit) |
| A40 merge | ADT_A39 | the surviving Patient upserted, the obsolete one inactive and replaced-by it; ``merges`` |

Encounter status follows the IG's event map, except A04: a Chinese HIS sends A04 at registration (挂号)
for a visit that is under way, so it is ``in-progress``, not ``planned``. PV1-45 valued means finished.
"""

from __future__ import annotations

from rhip.exchange.hl7v2.datatypes import xpn_name
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    Mapped,
    Mapper,
    MappingContext,
    MappingError,
    identifier_criteria,
    key,
    location,
    missing,
    reading,
    reference,
    required_segment,
    start,
)
from rhip.exchange.hl7v2.mapping.clinical import map_allergy, map_diagnosis, map_observation
from rhip.exchange.hl7v2.mapping.encounter import EncounterEntry, event_time, map_encounter, status_of
from rhip.exchange.hl7v2.mapping.patient import (
    PatientEntry,
    identifiers,
    local_identifier,
    map_patient,
    map_related_person,
)
from rhip.exchange.hl7v2.message import Message, Segment

# event -> Encounter status when PV1-45 is empty (None: no Encounter), whether a visit is required
_VISIT_EVENTS: dict[str, tuple[str | None, bool]] = {
    "A01": ("in-progress", False),
    "A02": ("in-progress", True),
    "A03": ("finished", True),
    "A04": ("in-progress", False),
    "A05": ("planned", False),
    "A08": ("in-progress", False),
    "A11": ("cancelled", True),
    "A13": ("in-progress", True),
    "A28": (None, False),
    "A31": (None, False),
}
_WITH_RECORDS = frozenset(("A01", "A03", "A04", "A05", "A08", "A13"))  # events that carry DG1, OBX …


def map_adt(message: Message, ctx: MappingContext) -> Mapped:
    """Map an ADT message (A01 … A31; A40 goes to :func:`map_adt_a40`)."""
    event = message.trigger
    if event == "A40":
        return map_adt_a40(message, ctx)
    if event not in _VISIT_EVENTS:
        raise MappingError(
            f"ADT event {event} is not supported", segment="MSH", sequence=1, field=9, hl7_code="201"
        )
    builder = start(message, ctx)
    pid = required_segment(message, "PID")
    patient = map_patient(builder, pid)
    status, visit_required = _VISIT_EVENTS[event]
    pv1 = message.first("PV1")
    encounter = None
    if status is not None:
        if pv1 is None and visit_required:
            raise MappingError(f"ADT^{event} needs a PV1 segment", segment="PV1", hl7_code="100")
        if pv1 is not None:
            encounter = _visit(builder, message, event, pv1, patient, status, visit_required)
    for nk1 in message.all("NK1"):
        map_related_person(builder, nk1, patient)
    for al1 in message.all("AL1"):
        map_allergy(builder, al1, patient)
    if event in _WITH_RECORDS:
        for obx in message.all("OBX"):
            map_observation(builder, obx, patient, encounter)
        diagnoses = [map_diagnosis(builder, dg1, patient, encounter)[1] for dg1 in message.all("DG1")]
        if encounter is not None and diagnoses:
            _add_diagnoses(builder, encounter, diagnoses)
    return builder.mapped([patient.key])


def _visit(
    builder: BundleBuilder,
    message: Message,
    event: str,
    pv1: Segment,
    patient: PatientEntry,
    status: str,
    required: bool,
) -> EncounterEntry | None:
    if event in ("A01", "A04", "A05", "A08"):
        status = status_of(pv1, status)
    encounter = map_encounter(builder, pv1, patient, status, required=required)
    if encounter is None:
        return None
    resource = _entry_resource(builder, encounter.full_url)
    period = resource.setdefault("period", {})
    if event == "A03" and "end" not in period:
        when = event_time(message, builder)
        if when is None:
            raise missing(pv1, 45, "discharge date/time")
        period["end"] = when
    elif event == "A13":
        period.pop("end", None)
    elif event == "A02":
        when = event_time(message, builder)
        for place in resource.get("location", ()):
            if when:
                place["period"] = {"start" if place["status"] == "active" else "end": when}
    if not period:
        del resource["period"]
    return encounter


def _entry_resource(builder: BundleBuilder, full_url: str) -> Json:
    for entry in builder.entries:
        if entry["fullUrl"] == full_url:
            resource: Json = entry["resource"]
            return resource
    raise KeyError(full_url)


def _add_diagnoses(builder: BundleBuilder, encounter: EncounterEntry, diagnoses: list[Json]) -> None:
    resource = _entry_resource(builder, encounter.full_url)
    for rank, diagnosis in enumerate(diagnoses, 1):
        diagnosis.setdefault("rank", rank)
    resource["diagnosis"] = diagnoses


def map_adt_a40(message: Message, ctx: MappingContext) -> Mapped:
    """A40 merge: per PID/MRG pair, the surviving Patient upserted and the obsolete one marked replaced.

    The obsolete Patient is written as MRG gives it (its identifiers and prior name), ``active: false``,
    with ``link`` replaced-by the surviving one; its earlier versions and everything that refers to it stay.
    ``merges`` asks the pipeline to merge the two in the master patient index once committed.
    """
    builder = start(message, ctx)
    pairs = _merge_pairs(message)
    keys: list[str] = []
    merges: list[tuple[str, str]] = []
    for pid, mrg in pairs:
        surviving = map_patient(builder, pid)
        idents = identifiers(mrg, (1,), ctx.institution)
        prior = local_identifier(idents, ctx.institution)
        if prior is None:
            raise missing(mrg, 1, "prior patient identifier list (a local id)")
        if key(prior) == surviving.key:
            raise MappingError(
                "MRG-1 names the same patient as PID-3: nothing to merge",
                segment="MRG",
                sequence=mrg.sequence,
                field=1,
                hl7_code="207",
            )
        obsolete: Json = {"resourceType": "Patient", "identifier": idents, "active": False}
        with reading(mrg, 7):
            name = xpn_name(mrg.repetitions(7)[0], mrg.delimiters) if mrg.repetitions(7) else None
        if name is not None:
            obsolete["name"] = [name]
        obsolete["managingOrganization"] = reference(builder.organization())
        obsolete["link"] = [{"other": reference(surviving.full_url), "type": "replaced-by"}]
        criteria = identifier_criteria(prior)
        builder.put(obsolete, criteria, location(message, mrg))
        keys += [surviving.key, key(prior)]
        merges.append((surviving.criteria, criteria))
    return builder.mapped(keys, merges)


def _merge_pairs(message: Message) -> list[tuple[Segment, Segment]]:
    pairs: list[tuple[Segment, Segment]] = []
    current: Segment | None = None
    for seg in message.segments:
        if seg.name == "PID":
            current = seg
        elif seg.name == "MRG":
            if current is None:
                raise MappingError(
                    "MRG comes before any PID", segment="MRG", sequence=seg.sequence, hl7_code="100"
                )
            pairs.append((current, seg))
            current = None
    if not pairs:
        pid = message.first("PID")
        if pid is None:
            raise MappingError("ADT^A40 has no PID segment", segment="PID", hl7_code="100")
        raise MappingError("ADT^A40 has no MRG segment after its PID", segment="MRG", hl7_code="100")
    return pairs


MAPPERS: dict[str, Mapper] = {f"ADT^{event}": map_adt for event in _VISIT_EVENTS}
MAPPERS["ADT^A40"] = map_adt_a40
