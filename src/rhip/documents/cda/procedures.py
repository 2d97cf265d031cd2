"""Procedures (ICD-9-CM-3 coded procedure entries) and allergies (过敏史) as FHIR resources."""

from __future__ import annotations

from typing import Any

from rhip.documents.cda.context import Extraction, Resource
from rhip.documents.cda.statements import by_element, related, value_of
from rhip.documents.cda.values import concept, is_placeholder, string
from rhip.documents.cda.xmlpath import Element, attr, child, text

PROCEDURE_NAME = "DE06.00.094.00"  # 手术（操作）名称
ALLERGY_HISTORY = "DE02.10.022.00"  # 过敏史
_PROCEDURE_STATUS = {
    "completed": "completed",
    "active": "in-progress",
    "aborted": "stopped",
    "cancelled": "not-done",
}
# Words that say the patient has no known allergy (否认药物过敏史, 无 …).
_NEGATIONS = ("无", "否认", "未发现", "不详")
_NO_KNOWN_ALLERGY = {
    "coding": [{"system": "http://snomed.info/sct", "code": "716186003", "display": "No known allergy"}],
    "text": "无过敏史",
}
_ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


def procedure(x: Extraction, entry: Element, proc: Element) -> Resource | None:
    """A Procedure: ICD-9-CM-3 code, name (DE06.00.094.00), time and status."""
    name_obs = by_element(related(proc), PROCEDURE_NAME)
    name = string(value_of(name_obs)) if name_obs is not None else ""
    code = concept(child(proc, "code"), name)
    if code is None:
        return None
    if name:
        code["text"] = name
    effective = child(proc, "effectiveTime")
    low = child(effective, "low")
    performer = x.practitioner()
    return x.new(
        "Procedure", entry, status=_PROCEDURE_STATUS.get(attr(child(proc, "statusCode"), "code"), "completed"),
        code=code, performedDateTime=x.time(low) if low is not None else x.time(effective),
        performer=[{"actor": performer}] if performer else None,
    )  # fmt: skip


def allergy(x: Extraction, entry: Element, obs: Element, recorded: str | None = None) -> Resource | None:
    """AllergyIntolerance of a 过敏史: the allergen in words or coded; "no known allergy" for 无/否认."""
    value = value_of(obs)
    coded = concept(value) if attr(value, "code") else None
    words = text(value)  # not string(): a bare 无 here means "no allergy", not "unknown"
    if coded is None and (not words or (is_placeholder(words) and words != "无")):
        return None
    negated = coded is None and words.startswith(_NEGATIONS)
    fields: dict[str, Any] = {
        "clinicalStatus": None if negated else {"coding": [{"system": _ALLERGY_CLINICAL, "code": "active"}]},
        "code": _NO_KNOWN_ALLERGY if negated else coded or {"text": words},
        "recordedDate": x.time(child(obs, "effectiveTime")) or recorded,
        "recorder": x.practitioner(),
    }
    return x.new("AllergyIntolerance", entry, **fields)
