"""The visit of a document as a FHIR Encounter: the header's encompassingEncounter plus what the body adds.

The registry upserts it by its visit identifier (``urn:rhip:visit:<institution>|<visit number>``); the
extracted resources point at it through ``ExtractContext.encounter_ref``.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from rhip.documents.cda.codes import UCUM
from rhip.documents.cda.context import ExtractContext, Resource
from rhip.documents.cda.diagnoses import admission_reasons
from rhip.documents.cda.identity import full_url
from rhip.documents.cda.model import CdaDocument, Coded
from rhip.documents.cda.statements import element_id, statement, value_of
from rhip.documents.cda.values import coding, number, string
from rhip.documents.cda.xmlpath import Element, attr, children

_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
_CLASSES = {
    "AMB": "ambulatory",
    "EMER": "emergency",
    "IMP": "inpatient encounter",
    "HH": "home health",
    "VR": "virtual",
}
# 随访方式 (2.16.156.10011.2.3.1.183) → Encounter.class (1 门诊, 2 家庭, 3 电话; cn CDA writer, unverified).
_FOLLOWUP_CLASSES = {"1": "AMB", "2": "HH", "3": "VR"}
# 患者类型代码 (DE02.01.060.00, CV09.00.404, 2.16.156.10011.2.3.1.271) → Encounter.class; codes inferred from the
# WS/T 500 samples (1 门诊, 2 急诊, 3 住院), unverified.
_PATIENT_TYPE_CLASSES = {"1": "AMB", "2": "EMER", "3": "IMP"}
PATIENT_TYPE = "DE02.01.060.00"
FOLLOWUP_MODE = "DE06.00.108.00"
STAY_DAYS = "DE06.00.310.00"  # 实际住院天数
CHIEF_COMPLAINT = "DE04.01.119.00"  # 主诉
DEPARTMENT_OID = "2.16.156.10011.1.26"
SERVICE_TYPE = "urn:rhip:cs:service-type"
# The kind of visit a document type implies (the service types of the synthetic region's Encounters).
_SERVICE_TYPES = {
    "HSDB04.01": ("htn-followup", "高血压患者随访"),
    "HSDB04.02": ("dm-followup", "2型糖尿病患者随访"),
    "HSDB03.01": ("immunization", "预防接种"),
}
_VISIT_NAMESPACE = uuid.UUID("0d8f5c2e-7a43-5b61-8e9c-3f2a1b4c5d6e")


def visit_identifier(doc: CdaDocument) -> dict[str, str] | None:
    """``urn:rhip:visit:<custodian code>|<visit number>``, or None when the document names no visit."""
    enc = doc.header.encounter
    if enc is None or not enc.visit_number:
        return None
    return {"system": f"urn:rhip:visit:{doc.header.custodian.code}", "value": enc.visit_number}


def encounter_full_url(doc: CdaDocument) -> str | None:
    """The stable ``urn:uuid:`` fullUrl of the document's visit (for ``ExtractContext.encounter_ref``)."""
    ident = visit_identifier(doc)
    if ident is None:
        return None
    return f"urn:uuid:{uuid.uuid5(_VISIT_NAMESPACE, ident['system'] + '|' + ident['value'])}"


def encounter_criteria(doc: CdaDocument) -> str | None:
    """The conditional-update criteria of the visit (``identifier=urn:rhip:visit:…|…``, URL-encoded)."""
    ident = visit_identifier(doc)
    return urlencode({"identifier": f"{ident['system']}|{ident['value']}"}) if ident else None


def visit_encounter(
    doc: CdaDocument, ctx: ExtractContext, extracted: list[Resource] | None = None
) -> Resource | None:
    """The Encounter of the document's visit, or None without a visit number.

    ``extracted`` (the result of ``extract``) lets Encounter.diagnosis name the diagnoses in document
    order, the first (主要诊断 where the document ranks them) with rank 1.
    """
    ident = visit_identifier(doc)
    enc = doc.header.encounter
    if ident is None or enc is None:
        return None
    klass = enc.type
    details = _body_details(doc)
    if details.get("mode") in _FOLLOWUP_CLASSES:
        klass = _FOLLOWUP_CLASSES[details["mode"]]
    elif details.get("patient_type") in _PATIENT_TYPE_CLASSES:
        klass = _PATIENT_TYPE_CLASSES[details["patient_type"]]
    resource: Resource = {"resourceType": "Encounter"}
    if ctx.source:
        resource["meta"] = {"source": ctx.source}
    resource["identifier"] = [ident, {"system": enc.visit_system, "value": enc.visit_number}]
    resource["status"] = "in-progress" if klass == "IMP" and not enc.end else "finished"
    resource["class"] = {"system": _ACT_CODE, "code": klass, "display": _CLASSES.get(klass, klass)}
    service = _SERVICE_TYPES.get(doc.header.code) or (("inpatient", "住院") if klass == "IMP" else None)
    if service:
        resource["type"] = [{"coding": [{"system": SERVICE_TYPE, "code": service[0], "display": service[1]}]}]
    resource["subject"] = {"reference": ctx.patient_ref}
    participants = [_participant(doc, ctx, p.id, p.name) for p in enc.attenders]
    if participants:
        resource["participant"] = participants
    period = {k: v for k, v in (("start", enc.start), ("end", enc.end)) if v}
    if period:
        resource["period"] = period
    if details.get("days") is not None:
        resource["length"] = {"value": details["days"], "unit": "d", "system": UCUM, "code": "d"}
    reasons = [*details.get("reasons", []), *details.get("complaints", [])]
    if reasons:
        resource["reasonCode"] = reasons
    diagnoses = [
        r for r in extracted or () if r["resourceType"] == "Condition" and _is_encounter_diagnosis(r)
    ]
    if diagnoses:
        resource["diagnosis"] = [
            {"condition": {"reference": full_url(c)}, "rank": i} for i, c in enumerate(diagnoses, 1)
        ]
    hospitalization = {}
    if enc.admission_route:
        hospitalization["admitSource"] = _concept(enc.admission_route)
    if enc.discharge_disposition:
        hospitalization["dischargeDisposition"] = _concept(enc.discharge_disposition)
    if hospitalization:
        resource["hospitalization"] = hospitalization
    if enc.department and enc.department.name:
        location: dict[str, Any] = {"display": enc.department.name}
        if enc.department.code:
            location["identifier"] = {"system": f"urn:oid:{DEPARTMENT_OID}", "value": enc.department.code}
        resource["location"] = [{"location": location}]
    if ctx.organization_ref:
        resource["serviceProvider"] = {"reference": ctx.organization_ref}
    return resource


def _participant(doc: CdaDocument, ctx: ExtractContext, staff: str, name: str) -> dict[str, Any]:
    """An attending participant: the caller's Practitioner when it is the author, else by name."""
    author = doc.header.author.person
    individual: dict[str, Any] = {}
    if ctx.practitioner_ref and staff and staff == author.id:
        individual["reference"] = ctx.practitioner_ref
    if name:
        individual["display"] = name
    return {"individual": individual}


def _concept(code: Coded) -> dict[str, Any]:
    coded = {"system": code.system, "code": code.code, **({"display": code.display} if code.display else {})}
    return {"coding": [coded], **({"text": code.display} if code.display else {})}


def _is_encounter_diagnosis(condition: Resource) -> bool:
    return any(
        c.get("code") == "encounter-diagnosis"
        for cat in condition.get("category", ())
        for c in cat.get("coding", ())
    )


def _body_details(doc: CdaDocument) -> dict[str, Any]:
    """Visit facts written as entries: 随访方式, 患者类型, 实际住院天数, 主诉 and the 入院诊断."""
    out: dict[str, Any] = {"reasons": [], "complaints": []}
    body = doc.body
    if body is None:
        return out
    for section in body.iter("{urn:hl7-org:v3}section"):
        entries: list[Element] = children(section, "entry")
        out["reasons"].extend(admission_reasons(entries))
        for entry in entries:
            obs = statement(entry)
            element = element_id(obs)
            if element == FOLLOWUP_MODE and "mode" not in out:
                out["mode"] = (coding(value_of(obs)) or {}).get("code", "")
            elif element == PATIENT_TYPE and "patient_type" not in out:
                out["patient_type"] = (coding(value_of(obs)) or {}).get("code", "")
            elif element == STAY_DAYS and "days" not in out:
                value = value_of(obs)
                raw = attr(value, "value")
                out["days"] = number(raw, value) if raw else None
            elif element == CHIEF_COMPLAINT:
                words = string(value_of(obs))
                if words:
                    out["complaints"].append({"text": words})
    return out
