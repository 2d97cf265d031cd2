"""substanceAdministration entries of drugs: MedicationRequest (prescribed) or MedicationStatement (taken)."""

from __future__ import annotations

from typing import Any

from rhip.documents.cda.context import Extraction, Resource
from rhip.documents.cda.statements import by_element, related
from rhip.documents.cda.values import concept, instance_id, quantity, string
from rhip.documents.cda.xmlpath import Element, attr, child, children

PRESCRIPTION_NO = "2.16.156.10011.1.20"  # 处方编号
TOTAL_DOSE = "DE06.00.135.00"  # 药物使用总剂量
# CDA statusCode → MedicationRequest.status / MedicationStatement.status.
_REQUEST_STATUS = {
    "completed": "completed", "active": "active", "aborted": "stopped", "cancelled": "cancelled",
    "suspended": "on-hold", "held": "on-hold", "new": "draft", "nullified": "entered-in-error",
}  # fmt: skip
_STATEMENT_STATUS = {
    "completed": "completed", "active": "active", "aborted": "stopped", "suspended": "on-hold",
    "held": "on-hold", "nullified": "entered-in-error",
}  # fmt: skip


def is_drug(sbadm: Element) -> bool:
    """Whether a substanceAdministration gives a drug (manufacturedLabeledDrug), not a vaccine (material)."""
    return child(sbadm, "consumable", "manufacturedProduct", "manufacturedLabeledDrug") is not None


def medication(x: Extraction, entry: Element, sbadm: Element) -> Resource:
    """A prescription (mood INT, or EVN with a 处方编号) as MedicationRequest, else a MedicationStatement."""
    drug = child(sbadm, "consumable", "manufacturedProduct", "manufacturedLabeledDrug")
    name = string(child(drug, "name"))
    drug_concept = concept(child(drug, "code"), name) or {"text": name}
    if name:
        drug_concept["text"] = name
    numbers = [found for found in (instance_id(i) for i in children(sbadm, "id")) if found]
    prescription = [
        {"system": f"urn:oid:{root}", "value": ext} for root, ext in numbers if root == PRESCRIPTION_NO
    ]
    status = attr(child(sbadm, "statusCode"), "code")
    start = _start(x, sbadm)
    dosage = _dosage(sbadm)
    is_request = attr(sbadm, "moodCode") != "EVN" or bool(prescription)
    if is_request:
        resource = x.new(
            "MedicationRequest", entry, status=_REQUEST_STATUS.get(status, "unknown"), intent="order",
            medicationCodeableConcept=drug_concept, authoredOn=start, requester=x.practitioner(),
            dosageInstruction=[dosage] if dosage else None,
        )  # fmt: skip
        total = by_element(related(sbadm), TOTAL_DOSE)
        amount = quantity(child(total, "value")) if total is not None else None
        if amount:
            resource["dispenseRequest"] = {"quantity": amount}
    else:
        resource = x.new(
            "MedicationStatement", entry, status=_STATEMENT_STATUS.get(status, "unknown"),
            medicationCodeableConcept=drug_concept, effectiveDateTime=start, dosage=[dosage] if dosage else None,
        )  # fmt: skip
    if prescription:
        resource["identifier"] = [*resource["identifier"], *prescription]
    return resource


def _start(x: Extraction, sbadm: Element) -> str | None:
    """When the medication starts: the low of an IVL_TS effectiveTime, or a point in time."""
    for effective in children(sbadm, "effectiveTime"):
        low = child(effective, "low")
        found = x.time(low) if low is not None else x.time(effective)
        if found:
            return found
    return None


def _dosage(sbadm: Element) -> dict[str, Any]:
    """Dosage text, route and dose."""
    dosage: dict[str, Any] = {}
    instructions = string(child(sbadm, "text"))
    if instructions:
        dosage["text"] = instructions
    route = concept(child(sbadm, "routeCode"))
    if route:
        dosage["route"] = route
    dose = quantity(child(sbadm, "doseQuantity"))
    if dose:
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    return dosage
