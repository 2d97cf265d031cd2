"""VXU^V04 → Immunization per RXA (v2-to-FHIR RXA/RXR[Immunization], with the CDC/China IIS conventions).

Per ORC/RXA/RXR group: vaccineCode RXA-5 (national programme codes ``99NIP``, CVX …), occurrence RXA-3,
dose RXA-6/RXA-7 (999: amount unknown), primarySource and reportOrigin from RXA-9 (NIP001: 00 new record,
01–08 historical), performers RXA-10 (administering provider) and the administering institution (RXA-11.4,
else the sender), lot RXA-15, expiry RXA-16, manufacturer RXA-17, statusReason RXA-18, reasonCode RXA-19,
status from RXA-20 (table 0322: CP/PA completed, NA/RE not-done) and RXA-21 (D: entered-in-error),
recorded RXA-22, route and site from RXR-1/RXR-2. The OBX of a dose give its dose number (LOINC 30973-2,
as 2.5.1 fixes RXA-2 at 1), funding eligibility (64994-7) and funding source (30963-3); other OBX
(vaccine information statements, …) are not kept.

The Immunization is identified by the filler order number (ORC-3, ``urn:rhip:order:<institution>``), else
the placer's, else by the patient, vaccine and time (``urn:rhip:v2-entry``). A new record (RXA-21 A or
empty) is created once; an update (U) or deletion (D) replaces what is stored.
"""

from __future__ import annotations

from rhip.exchange.hl7v2.datatypes import (
    V2_TABLE,
    coding,
    cwe_concept,
    organization_identifier,
    part,
    ts_date,
    ts_datetime,
    xcn_reference,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    Mapped,
    Mapper,
    MappingContext,
    MappingError,
    entry_identifier,
    identifier_criteria,
    location,
    missing,
    reading,
    reference,
    start,
)
from rhip.exchange.hl7v2.mapping.clinical import map_observation
from rhip.exchange.hl7v2.mapping.groups import OrderGroup, Subject, map_subject, notes, patient_groups
from rhip.exchange.hl7v2.mapping.obx import number
from rhip.exchange.hl7v2.mapping.orders import order_numbers
from rhip.exchange.hl7v2.mapping.units import quantity_unit
from rhip.exchange.hl7v2.message import Message, Segment

DOSE_NUMBER, ELIGIBILITY, FUNDING_SOURCE = "30973-2", "64994-7", "30963-3"
# HL7 table 0322 (RXA-20 completion status) -> Immunization.status
_COMPLETION = {"CP": "completed", "PA": "completed", "NA": "not-done", "RE": "not-done", "": "completed"}
# NIP001 (RXA-9 information source) 01–08 -> reportOrigin (immunization-origin)
_ORIGIN = {"01": "record", "02": "provider", "03": "record", "04": "recall", "05": "record", "06": "record"}
_ORIGIN |= {"07": "school", "08": "record"}
ORIGIN_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-origin"
FUNCTION_SYSTEM = V2_TABLE + "0443"


def _status(rxa: Segment) -> str:
    if rxa.get(21).strip().upper() == "D":
        return "entered-in-error"
    completion = rxa.get(20).strip().upper()
    status = _COMPLETION.get(completion)
    if status is None:
        raise MappingError(
            f"RXA-20 {completion[:10]!r} is not a completion status (HL7 table 0322)",
            segment="RXA",
            sequence=rxa.sequence,
            field=20,
            hl7_code="103",
        )
    return status


def _source(rxa: Segment, immunization: Json) -> None:
    code = rxa.get(9).strip()
    if not code:
        return
    immunization["primarySource"] = code == "00"
    origin = _ORIGIN.get(code)
    if origin:
        immunization["reportOrigin"] = {"coding": [coding(origin, "", ORIGIN_SYSTEM)]}


def _performers(builder: BundleBuilder, rxa: Segment, primary: bool) -> list[Json]:
    institution, d = builder.ctx.institution, rxa.delimiters
    performers = []
    if primary:
        facility = part(rxa.repetitions(11)[0], d, 4) if rxa.repetitions(11) else ""
        if not facility or facility == institution:
            performers.append({"actor": reference(builder.organization())})
        else:  # another institution: a logical reference, never a registry entry made up from a message
            performers.append(
                {"actor": {"type": "Organization", "identifier": organization_identifier(facility)}}
            )
    for raw in rxa.repetitions(10):
        who = xcn_reference(raw, d, institution)
        if who is not None:
            function = {"coding": [coding("AP", "Administering Provider", FUNCTION_SYSTEM)]}
            performers.append({"function": function, "actor": who})
    return performers


def _dose_details(order: OrderGroup, immunization: Json, institution: str) -> None:
    for observed in order.observations:
        obx = observed.obx
        code = obx.get(3, 1).strip()
        raw = obx.repetitions(5)[0] if obx.repetitions(5) else ""
        if code == DOSE_NUMBER and part(raw, obx.delimiters, 1):
            text = part(raw, obx.delimiters, 1)
            dose = number(text)
            applied: Json = (
                {"doseNumberPositiveInt": dose}
                if isinstance(dose, int) and dose > 0
                else {"doseNumberString": text}
            )
            immunization["protocolApplied"] = [applied]
        elif code in (ELIGIBILITY, FUNDING_SOURCE):
            concept = cwe_concept(raw, obx.delimiters, institution)
            if concept and code == ELIGIBILITY:
                immunization.setdefault("programEligibility", []).append(concept)
            elif concept:
                immunization["fundingSource"] = concept


def immunization_resource(builder: BundleBuilder, order: OrderGroup, rxa: Segment, subject: Subject) -> Json:
    """The Immunization an RXA (with its ORC, RXR and OBX) describes, without its identifier."""
    d, institution, zone = rxa.delimiters, builder.ctx.institution, builder.ctx.zone
    with reading(rxa, 5):
        vaccine = cwe_concept(rxa.raw(5), d, institution)
    if vaccine is None:
        raise missing(rxa, 5, "administered code")
    with reading(rxa, 3):
        when = ts_datetime(rxa.get(3), zone)
    if when is None:
        raise missing(rxa, 3, "date/time start of administration")
    status = _status(rxa)
    imm: Json = {"resourceType": "Immunization", "status": status}
    if status == "not-done" and rxa.repetitions(18):
        reason = cwe_concept(rxa.repetitions(18)[0], d, institution)
        if reason:
            imm["statusReason"] = reason
    imm |= {"vaccineCode": vaccine, "patient": reference(subject.patient.full_url)}
    if subject.encounter is not None:
        imm["encounter"] = reference(subject.encounter.full_url)
    imm["occurrenceDateTime"] = when
    with reading(rxa, 22):
        recorded = ts_datetime(rxa.get(22), zone)
    if recorded:
        imm["recorded"] = recorded
    _source(rxa, imm)
    lot = rxa.get(15).strip()
    if lot:
        imm["lotNumber"] = lot
    with reading(rxa, 16):
        expiry = ts_date(rxa.get(16))
    if expiry:
        imm["expirationDate"] = expiry
    maker = rxa.repetitions(17)[0] if rxa.repetitions(17) else ""
    name = part(maker, d, 2) or part(maker, d, 1)
    if name:
        imm["manufacturer"] = {"display": name}
    rxr = order.rxr
    for key, n, table in (("site", 2, "0163"), ("route", 1, "0162")):
        concept = cwe_concept(rxr.raw(n), d, institution, V2_TABLE + table) if rxr is not None else None
        if concept:
            imm[key] = concept
    dose = number(rxa.get(6))
    if dose is not None and dose != 999 and dose >= 0:
        units = rxa.repetitions(7)[0] if rxa.repetitions(7) else ""
        imm["doseQuantity"] = {
            "value": dose,
            **quantity_unit(part(units, d, 1), part(units, d, 2), part(units, d, 3)),
        }
    performers = _performers(builder, rxa, imm.get("primarySource", True))
    if performers:
        imm["performer"] = performers
    annotations = notes(order.notes)
    if annotations:
        imm["note"] = annotations
    reasons = [c for c in (cwe_concept(raw, d, institution) for raw in rxa.repetitions(19)) if c]
    if reasons:
        imm["reasonCode"] = reasons
    _dose_details(order, imm, institution)
    return imm


def map_immunization(builder: BundleBuilder, order: OrderGroup, rxa: Segment, subject: Subject) -> str:
    """One RXA → Immunization, created once (updated when RXA-21 says U or D); its fullUrl."""
    imm = immunization_resource(builder, order, rxa, subject)
    numbers = order_numbers(order, builder.ctx.institution)
    ident = numbers.filler_identifier() or numbers.placer_identifier()
    if ident is None:
        vaccine = imm["vaccineCode"].get("coding", [{}])[0].get("code") or imm["vaccineCode"].get("text", "")
        scope = str(subject.patient.identifier["value"])
        ident = entry_identifier(
            builder.ctx.institution, scope, "RXA", str(vaccine), imm["occurrenceDateTime"]
        )
    imm = {
        "resourceType": "Immunization",
        "identifier": [ident],
        **{k: v for k, v in imm.items() if k != "resourceType"},
    }
    write = builder.put if rxa.get(21).strip().upper() in ("U", "D") else builder.create
    return write(imm, identifier_criteria(ident), location(builder.message, rxa), focus=True)


def map_vxu_v04(message: Message, ctx: MappingContext) -> Mapped:
    """VXU^V04: per patient its Patient (and visit), per RXA an Immunization."""
    builder = start(message, ctx)
    keys: list[str] = []
    doses = 0
    for group in patient_groups(message):
        subject = map_subject(builder, group)
        keys.append(subject.patient.key)
        for observed in group.observations:  # patient-level observations (v2.8 PERSON_OBSERVATION)
            map_observation(builder, observed.obx, subject.patient, subject.encounter)
        for order in group.orders:
            if order.detail is None or order.detail.name != "RXA":
                raise MappingError(
                    f"{order.first.name} is not followed by an RXA segment",
                    segment="RXA",
                    sequence=order.first.sequence,
                    hl7_code="100",
                )
            map_immunization(builder, order, order.detail, subject)
            doses += 1
    if not doses:
        raise MappingError("the VXU^V04 message has no RXA segment", segment="RXA", hl7_code="100")
    return builder.mapped(keys)


MAPPERS: dict[str, Mapper] = {"VXU^V04": map_vxu_v04}
