"""Diagnoses (DE05.01.024.00 诊断代码 with DE05.01.025.00 诊断名称) as Conditions, notifiable cases included."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rhip.documents.cda.context import Extraction, Resource
from rhip.documents.cda.statements import by_element, components, element_id, qualifier, related, value_of
from rhip.documents.cda.values import coding, string
from rhip.documents.cda.xmlpath import Element, child, local

DIAGNOSIS_CODE = "DE05.01.024.00"
DIAGNOSIS_NAME = "DE05.01.025.00"
OUTCOME = "DE05.10.113.00"  # 病情转归代码
NOTIFIABLE = "urn:rhip:cs:notifiable-disease"
CASE_CLASS = "urn:rhip:cs:notifiable-case-class"
CASE_CLASS_EXTENSION = "urn:rhip:ext:case-classification"
_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_NOTIFIABLE_CATEGORY = {
    "coding": [{"system": "urn:rhip:cs:condition-category", "code": "notifiable", "display": "法定传染病"}]
}
# 病情转归 / 出院情况 in words → Condition.clinicalStatus.
_OUTCOMES = (("治愈", "resolved"), ("好转", "remission"), ("未愈", "active"), ("恶化", "active"))
ADMISSION = "入院诊断"


def clinical_status(words: str) -> str | None:
    """The clinicalStatus an outcome in words (治愈, 好转出院 …) means."""
    for prefix, status in _OUTCOMES:
        if words.startswith(prefix):
            return status
    return None


def category(code: str) -> dict[str, Any]:
    """A condition-category CodeableConcept (encounter-diagnosis, problem-list-item)."""
    return {"coding": [{"system": _CATEGORY, "code": code}]}


@dataclass
class Diagnosis:
    """A diagnosis entry: where it is, its code observation and the parts around it."""

    entry: Element  # the <entry>
    statement: Element  # its organizer or observation
    code_obs: Element
    name_obs: Element | None
    parts: list[Element]
    qualifier: str

    @property
    def is_admission(self) -> bool:
        """Whether it is an 入院诊断 (the encounter's reason, not a Condition of its own)."""
        return ADMISSION in self.qualifier


def find(entry: Element) -> Diagnosis | None:
    """The diagnosis an entry holds: an organizer of name and code, or a lone code observation."""
    for node in entry:
        kind = local(node)
        if kind == "organizer":
            parts = components(node)
            code_obs = by_element(parts, DIAGNOSIS_CODE)
            if code_obs is not None:
                name_obs = by_element(parts, DIAGNOSIS_NAME)
                return Diagnosis(
                    entry, node, code_obs, name_obs, parts, qualifier(code_obs) or qualifier(name_obs)
                )
        elif kind == "observation" and element_id(node) == DIAGNOSIS_CODE:
            return Diagnosis(entry, node, node, None, related(node), qualifier(node))
    return None


def condition(x: Extraction, dx: Diagnosis, *, problem: bool = False, status: str | None = None) -> Resource:
    """A Condition of a diagnosis: ICD-10 code, name, onset, recorded date, notifiable-card coding and case class."""
    icd = coding(value_of(dx.code_obs))
    name = string(value_of(dx.name_obs)) if dx.name_obs is not None else ""
    codings: list[dict[str, str]] = [icd] if icd else []
    case_class: dict[str, str] | None = None
    outcome = ""
    for part in dx.parts:
        found = coding(value_of(part))
        if element_id(part) == OUTCOME:
            outcome = (found or {}).get("display", "") or string(value_of(part))
        elif found and found.get("system") == NOTIFIABLE:
            codings.append(found)
        elif found and found.get("system") == CASE_CLASS:
            case_class = found
    text_value = name or (icd or {}).get("display", "")
    notifiable = any(c.get("system") == NOTIFIABLE for c in codings)
    status = status or clinical_status(outcome) or ("active" if problem or notifiable else None)
    categories = [category("problem-list-item" if problem else "encounter-diagnosis")]
    if notifiable:
        categories.append(_NOTIFIABLE_CATEGORY)
    # On the code: an interval's low is the onset (发病日期); a point in time is the 诊断日期 (recorded).
    code_time = child(dx.code_obs, "effectiveTime")
    low = child(code_time, "low")
    onset = x.time(low) if low is not None else None
    recorded = x.time(child(dx.name_obs, "effectiveTime")) if dx.name_obs is not None else None
    if recorded is None and local(dx.statement) == "organizer":
        recorded = x.time(child(dx.statement, "effectiveTime"))
    if recorded is None and low is None:
        recorded = x.time(code_time)
    resource = x.new(
        "Condition",
        dx.entry,
        clinicalStatus={"coding": [{"system": _CLINICAL, "code": status}]} if status else None,
        verificationStatus={"coding": [{"system": _VERIFICATION, "code": "confirmed"}]},
        category=categories,
        code={"coding": codings, "text": text_value} if codings else {"text": text_value},
        onsetDateTime=onset,
        recordedDate=recorded,
        recorder=x.practitioner(),
    )
    if case_class:
        resource["extension"] = [{"url": CASE_CLASS_EXTENSION, "valueCoding": case_class}]
    return resource


def admission_reasons(entries: list[Element]) -> list[dict[str, Any]]:
    """Encounter.reasonCode of the 入院诊断 entries (ICD-10 codings)."""
    out = []
    for entry in entries:
        dx = find(entry)
        if dx is not None and dx.is_admission:
            found = coding(value_of(dx.code_obs))
            if found:
                out.append({"coding": [found]})
    return out
