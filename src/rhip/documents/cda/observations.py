"""Observation entries: vital signs (blood pressure as one panel), results, blood types and coded findings."""

from __future__ import annotations

from typing import Any

from rhip.documents.cda.codes import LOINC, printed_units, vital_loincs, vital_signs
from rhip.documents.cda.context import Extraction, Resource
from rhip.documents.cda.statements import (
    by_element,
    code_of,
    element_id,
    fhir_value,
    label,
    related,
    value_of,
)
from rhip.documents.cda.values import coding, quantity, string
from rhip.documents.cda.xmlpath import Element, attr, child

_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
SYSTOLIC, DIASTOLIC = "DE04.10.174.00", "DE04.10.176.00"
LAB_ITEM = "DE04.30.019.00"  # 检验项目代码
LAB_QUANTITY = "DE04.30.015.00"  # 检验定量结果
LAB_UNIT = "DE04.30.016.00"  # 检验定量结果计量单位
LAB_CODED = "DE04.30.017.00"  # 检验结果代码
ABO, RH = "DE04.50.001.00", "DE04.50.010.00"
# ABO / Rh(D) typing as LOINC (the WS 364 value sets CV04.50.005 / CV04.50.020 stay as coded values).
_BLOOD_TYPES = {ABO: ("883-9", "ABO血型"), RH: ("10331-7", "Rh血型")}
_RH_SYSTEM = "urn:oid:2.16.156.10011.2.3.1.250"
LOINC_OID = "2.16.840.1.113883.6.1"


def category(code: str) -> list[dict[str, Any]]:
    """An observation-category list (vital-signs, laboratory, survey …)."""
    return [{"coding": [{"system": _CATEGORY, "code": code}]}]


def loinc_concept(code: str, display: str) -> dict[str, Any]:
    """A CodeableConcept of one LOINC code with the Chinese name as display and text."""
    return {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display}


def vital_sign(obs: Element) -> tuple[str, str] | None:
    """(LOINC, name) of a vital-sign observation, by its data element or its LOINC code."""
    element = element_id(obs)
    sign = vital_signs().get(element) if element else None
    if sign is not None:
        return sign.loinc, sign.name
    code, system, display = code_of(obs)
    if system == LOINC_OID and code in vital_loincs():
        return code, display
    return None


def vitals(x: Extraction, found: list[tuple[Element, Element, tuple[str, str]]]) -> list[Resource]:
    """Vital-sign Observations of a section's (entry, observation, sign): 收缩压 and 舒张压 of one time
    become one blood-pressure panel (85354-9) named by the first of its entries."""
    out: list[Resource] = []
    pressure: dict[str | None, Resource] = {}
    for entry, obs, (loinc, name) in found:
        value = quantity(value_of(obs))
        if value is None:
            continue
        if "code" in value:
            value["unit"] = printed_units().get(value["code"], value["unit"])
        when = x.time(child(obs, "effectiveTime"))
        if element_id(obs) not in (SYSTOLIC, DIASTOLIC):
            out.append(
                x.new(
                    "Observation",
                    entry,
                    status="final",
                    category=category("vital-signs"),
                    code=loinc_concept(loinc, name),
                    effectiveDateTime=when,
                    performer=x.organization(),
                    valueQuantity=value,
                )
            )
            continue
        panel = pressure.get(when)
        if panel is None or any(c["code"]["coding"][0]["code"] == loinc for c in panel["component"]):
            panel = x.new(
                "Observation", entry, status="final", category=category("vital-signs"),
                code=loinc_concept("85354-9", "血压"), effectiveDateTime=when, performer=x.organization(),
            )  # fmt: skip
            panel["component"] = []
            pressure[when] = panel
            out.append(panel)
        component = {
            "code": {"coding": [{"system": LOINC, "code": loinc, "display": name}]},
            "valueQuantity": value,
        }
        panel["component"].append(component)
    return out


def result(
    x: Extraction, entry: Element, parts: list[Element], *, issued: str | None, kind: str
) -> Resource | None:
    """A result organizer: item code (LOINC when given), value with unit, flag and reference range."""
    item = by_element(parts, LAB_ITEM)
    if item is None:
        return None
    item_value = value_of(item)
    code = coding(item_value)
    name = attr(item_value, "displayName") or string(item_value) or label(item)
    if code is None and not name:
        return None
    fields: dict[str, Any] = {}
    measured = by_element(parts, LAB_QUANTITY)
    if measured is not None:
        unit_obs = by_element(related(measured), LAB_UNIT)
        printed = string(value_of(unit_obs)) if unit_obs is not None else None
        fields.update(fhir_value(value_of(measured), x.ctx.zone, printed or None))
        flag = coding(child(measured, "interpretationCode"))
        if flag:
            fields["interpretation"] = [{"coding": [flag]}]
        ranges = _reference_range(measured, printed)
        if ranges:
            fields["referenceRange"] = [ranges]
    coded = by_element(parts, LAB_CODED)
    if coded is not None and not fields.get("valueQuantity"):
        fields.update(fhir_value(value_of(coded), x.ctx.zone))
    concept = {"coding": [code], "text": name} if code else {"text": name}
    return x.new(
        "Observation", entry, status="final", category=category(kind), code=concept,
        effectiveDateTime=x.time(child(item, "effectiveTime")),
        issued=issued if issued and len(issued) > 10 else None, performer=x.organization(), **fields,
    )  # fmt: skip


def _reference_range(measured: Element, printed: str | None) -> dict[str, Any] | None:
    """referenceRange/observationRange/value (IVL_PQ) as a FHIR referenceRange with the printed unit."""
    bounds = child(measured, "referenceRange", "observationRange", "value")
    if bounds is None:
        text_range = string(child(measured, "referenceRange", "observationRange", "text"))
        return {"text": text_range} if text_range else None
    out: dict[str, Any] = {}
    for side in ("low", "high"):
        found = quantity(child(bounds, side))
        if found is not None:
            out[side] = {"value": found["value"]}
            unit = printed or found.get("unit")
            if unit:
                out[side]["unit"] = unit
    return out or None


def blood_type(x: Extraction, source: Element, obs: Element) -> Resource | None:
    """ABO or Rh(D) typing (DE04.50.001.00 / DE04.50.010.00) as a coded laboratory Observation."""
    value = coding(value_of(obs))
    if value is None:
        return None
    # The WS/T 500 sample codes Rh with DE04.50.001.00 too; its value set tells them apart.
    element = RH if value.get("system") == _RH_SYSTEM else element_id(obs)
    loinc, name = _BLOOD_TYPES[element]
    return x.new(
        "Observation", source, status="final", category=category("laboratory"), code=loinc_concept(loinc, name),
        valueCodeableConcept={"coding": [value], "text": value.get("display", value["code"])},
    )  # fmt: skip


def finding(
    x: Extraction, source: Element, obs: Element, *, kind: str | None = None, when: str | None = None
) -> Resource | None:
    """An Observation of any data element with a value: coded with the element, valued by its type."""
    value = fhir_value(value_of(obs), x.ctx.zone)
    if not value:
        return None
    code, system, display = code_of(obs)
    name = display or label(obs)
    if code and system:
        fhir = LOINC if system == LOINC_OID else "urn:oid:" + system
        concept: dict[str, Any] = {
            "coding": [{"system": fhir, "code": code, **({"display": name} if name else {})}]
        }
        if name:
            concept["text"] = name
    elif name:
        concept = {"text": name}
    else:
        return None
    return x.new(
        "Observation", source, status="final", category=category(kind) if kind else None, code=concept,
        effectiveDateTime=x.time(child(obs, "effectiveTime")) or when, performer=x.organization(), **value,
    )  # fmt: skip
