"""DG1 → Condition, AL1 → AllergyIntolerance and OBX → Observation, as ADT and SIU messages carry them.

These segments carry no id of their own in most messages, so each record gets an entry identifier
(``urn:rhip:v2-entry:<institution>``) made of the visit number (else the patient's local id), the segment
and what tells the record apart (the diagnosis code, the allergen, the observation code and time): the
same record sent again, by a retransmission or by the next event of the visit, is found again. Conditions
and allergies are upserted (a later message may correct them); observations are created once.
"""

from __future__ import annotations

from rhip.exchange.hl7v2.datatypes import (
    coding,
    cwe_concept,
    ei_identifier,
    part,
    ts_date,
    ts_datetime,
    xcn_reference,
)
from rhip.exchange.hl7v2.mapping.base import (
    BundleBuilder,
    Json,
    entry_identifier,
    identifier_criteria,
    location,
    missing,
    reading,
    reference,
)
from rhip.exchange.hl7v2.mapping.encounter import EncounterEntry
from rhip.exchange.hl7v2.mapping.patient import PatientEntry
from rhip.exchange.hl7v2.message import Segment

TERMINOLOGY = "http://terminology.hl7.org/CodeSystem/"
_DIAGNOSIS_ROLE = {"A": ("AD", "Admission diagnosis"), "F": ("DD", "Discharge diagnosis")}
_ALLERGY_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "LA": "environment"}
_ALLERGY_CATEGORY |= {"AA": "environment", "PA": "environment"}
_CRITICALITY = {"SV": "high", "MO": "low", "MI": "low", "U": "unable-to-assess"}
_OBX_STATUS = {"F": "final", "P": "preliminary", "C": "corrected", "X": "cancelled", "W": "entered-in-error"}
_OBX_STATUS |= {
    "R": "registered",
    "I": "registered",
    "S": "preliminary",
    "D": "entered-in-error",
    "U": "final",
}


def _scope(patient: PatientEntry, encounter: EncounterEntry | None) -> str:
    return str(encounter.identifier["value"]) if encounter else str(patient.identifier["value"])


def map_diagnosis(
    builder: BundleBuilder, dg1: Segment, patient: PatientEntry, encounter: EncounterEntry | None
) -> tuple[str, Json]:
    """DG1 → Condition (upserted); returns its fullUrl and its Encounter.diagnosis element."""
    d, institution, zone = dg1.delimiters, builder.ctx.institution, builder.ctx.zone
    with reading(dg1, 3):
        code = cwe_concept(dg1.raw(3), d, institution)
    if code is None:
        text = dg1.get(4).strip()
        if not text:
            raise missing(dg1, 3, "diagnosis code")
        code = {"text": text}
    kind = dg1.get(6).strip().upper()
    ident = None
    if dg1.raw(20):
        ident = ei_identifier(dg1.raw(20), d, "urn:rhip:diagnosis", institution)
    if ident is None:
        codes = code.get("coding") or [{"code": code.get("text", "")}]
        ident = entry_identifier(institution, _scope(patient, encounter), "DG1", str(codes[0]["code"]))
    condition: Json = {"resourceType": "Condition", "identifier": [ident]}
    if dg1.get(21).strip().upper() == "D":
        verification = "entered-in-error"
    else:
        verification = "confirmed" if kind == "F" else ""
    if verification:
        system = TERMINOLOGY + "condition-ver-status"
        condition["verificationStatus"] = {"coding": [coding(verification, "", system)]}
    category = coding("encounter-diagnosis", "", TERMINOLOGY + "condition-category")
    condition["category"] = [{"coding": [category]}]
    condition["code"] = code
    condition["subject"] = reference(patient.full_url)
    if encounter is not None:
        condition["encounter"] = reference(encounter.full_url)
    for n in (5, 19):
        with reading(dg1, n):
            recorded = ts_datetime(dg1.get(n), zone)
        if recorded:
            condition["recordedDate"] = recorded
            break
    recorder = xcn_reference(dg1.repetitions(16)[0], d, institution) if dg1.repetitions(16) else None
    if recorder is not None:
        condition["recorder"] = recorder
    full_url = builder.put(condition, identifier_criteria(ident), location(builder.message, dg1))
    diagnosis: Json = {"condition": reference(full_url)}
    if kind in _DIAGNOSIS_ROLE:
        role, display = _DIAGNOSIS_ROLE[kind]
        diagnosis["use"] = {"coding": [coding(role, display, TERMINOLOGY + "diagnosis-role")]}
    priority = dg1.get(15).strip()
    if priority.isdigit() and int(priority) > 0:
        diagnosis["rank"] = int(priority)
    return full_url, diagnosis


def map_allergy(builder: BundleBuilder, al1: Segment, patient: PatientEntry) -> str:
    """AL1 → AllergyIntolerance (upserted under the patient's local id and the allergen)."""
    d, institution = al1.delimiters, builder.ctx.institution
    with reading(al1, 3):
        code = cwe_concept(al1.raw(3), d, institution)
    if code is None:
        raise missing(al1, 3, "allergen")
    allergen = code["coding"][0]["code"] if "coding" in code else code["text"]
    ident = entry_identifier(institution, str(patient.identifier["value"]), "AL1", str(allergen))
    system = TERMINOLOGY + "allergyintolerance-clinical"
    allergy: Json = {
        "resourceType": "AllergyIntolerance",
        "identifier": [ident],
        "clinicalStatus": {"coding": [coding("active", "", system)]},
    }
    kind = al1.get(2).strip().upper()
    if kind.endswith("A") and len(kind) == 2:
        allergy["type"] = "allergy"
    if kind in _ALLERGY_CATEGORY:
        allergy["category"] = [_ALLERGY_CATEGORY[kind]]
    severity = al1.get(4).strip().upper()
    if severity in _CRITICALITY:
        allergy["criticality"] = _CRITICALITY[severity]
    allergy["code"] = code
    allergy["patient"] = reference(patient.full_url)
    with reading(al1, 6):
        onset = ts_date(al1.get(6))
    if onset:
        allergy["onsetDateTime"] = onset
    reactions = [{"text": part(raw, d, 1)} for raw in al1.repetitions(5) if part(raw, d, 1)]
    if reactions:
        allergy["reaction"] = [{"manifestation": reactions}]
    return builder.put(allergy, identifier_criteria(ident), location(builder.message, al1))


def _obx_value(obx: Segment, builder: BundleBuilder) -> Json:
    """The value[x] of an OBX from OBX-2 (value type), OBX-5 (first repetition) and OBX-6 (units)."""
    d, institution = obx.delimiters, builder.ctx.institution
    reps = obx.repetitions(5)
    if not reps:
        return {}
    raw, kind = reps[0], obx.get(2).strip().upper()
    if kind in ("NM", "SN"):
        comparator, number = "", part(raw, d, 1)
        if kind == "SN":
            comparator, number = part(raw, d, 1), part(raw, d, 2)
        try:
            value = float(number)
        except ValueError:
            return {"valueString": obx.field_text(5)} if obx.field_text(5) else {}
        quantity: Json = {"value": int(value) if value.is_integer() and "." not in number else value}
        if comparator in ("<", "<=", ">=", ">"):
            quantity["comparator"] = comparator
        units = obx.repetitions(6)[0] if obx.repetitions(6) else ""
        unit_code, unit_text = part(units, d, 1), part(units, d, 2)
        if unit_code or unit_text:
            quantity["unit"] = unit_text or unit_code
        if unit_code and part(units, d, 3).upper() == "UCUM":
            quantity["system"], quantity["code"] = "http://unitsofmeasure.org", unit_code
        return {"valueQuantity": quantity}
    if kind in ("CWE", "CE", "CNE"):
        concept = cwe_concept(raw, d, institution)
        return {"valueCodeableConcept": concept} if concept else {}
    if kind in ("TS", "DTM", "DT"):
        with reading(obx, 5):
            when = ts_datetime(part(raw, d, 1), builder.ctx.zone)
        return {"valueDateTime": when} if when else {}
    text = "\n".join(t for t in (obx.get(5, repetition=i) for i in range(len(reps))) if t)
    return {"valueString": text} if text else {}


def map_observation(
    builder: BundleBuilder, obx: Segment, patient: PatientEntry, encounter: EncounterEntry | None
) -> str:
    """OBX → Observation (created once: ``ifNoneExist`` on its entry identifier)."""
    d, institution, zone = obx.delimiters, builder.ctx.institution, builder.ctx.zone
    with reading(obx, 3):
        code = cwe_concept(obx.raw(3), d, institution)
    if code is None:
        raise missing(obx, 3, "observation identifier")
    with reading(obx, 14):
        when = ts_datetime(obx.get(14), zone)
    codes = code.get("coding") or [{"code": code.get("text", "")}]
    scope = _scope(patient, encounter)
    parts = [scope, "OBX", str(codes[0]["code"]), obx.get(4).strip(), when or obx.get(1).strip()]
    ident = entry_identifier(institution, *parts)
    status = _OBX_STATUS.get(obx.get(11).strip().upper(), "final")
    observation: Json = {"resourceType": "Observation", "identifier": [ident], "status": status, "code": code}
    observation["subject"] = reference(patient.full_url)
    if encounter is not None:
        observation["encounter"] = reference(encounter.full_url)
    if when:
        observation["effectiveDateTime"] = when
    observation.update(_obx_value(obx, builder))
    flags = [part(raw, d, 1) for raw in obx.repetitions(8) if part(raw, d, 1)]
    if flags:
        system = TERMINOLOGY + "v3-ObservationInterpretation"
        observation["interpretation"] = [{"coding": [coding(f, "", system)]} for f in flags]
    if obx.get(7).strip():
        observation["referenceRange"] = [{"text": obx.get(7).strip()}]
    return builder.create(observation, identifier_criteria(ident), location(builder.message, obx))
