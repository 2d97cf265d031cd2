"""FHIR R4 resource constructors for the care the generator simulates (plain dicts, built for speed)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from rhip.synth import systems as s

SHANGHAI = timezone(timedelta(hours=8))

_CLASS = {
    "AMB": {"system": s.V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
    "EMER": {"system": s.V3_ACT_CODE, "code": "EMER", "display": "emergency"},
    "IMP": {"system": s.V3_ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
    "HH": {"system": s.V3_ACT_CODE, "code": "HH", "display": "home health"},
}
SERVICE_TYPES = {
    "outpatient": "门诊",
    "emergency": "急诊",
    "inpatient": "住院",
    "htn-followup": "高血压患者随访",
    "dm-followup": "2型糖尿病患者随访",
    "child-check": "儿童健康检查",
    "newborn-visit": "新生儿家庭访视",
    "antenatal": "产前检查",
    "postpartum-visit": "产后访视",
    "postpartum-42d": "产后42天健康检查",
    "elderly-check": "老年人健康体检",
    "immunization": "预防接种",
    "delivery": "分娩",
}
_VITAL = [{"coding": [{"system": s.OBSERVATION_CATEGORY, "code": "vital-signs"}]}]
_LAB = [{"coding": [{"system": s.OBSERVATION_CATEGORY, "code": "laboratory"}]}]
_CLINICAL_ACTIVE = {"coding": [{"system": s.CONDITION_CLINICAL, "code": "active"}]}
_CLINICAL_RESOLVED = {"coding": [{"system": s.CONDITION_CLINICAL, "code": "resolved"}]}
_CONFIRMED = {"coding": [{"system": s.CONDITION_VERIFICATION, "code": "confirmed"}]}
_ENCOUNTER_DX = [{"coding": [{"system": s.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}]
_PROBLEM = [{"coding": [{"system": s.CONDITION_CATEGORY, "code": "problem-list-item"}]}]


def instant(day: date, minutes: int) -> str:
    """An ISO instant in Shanghai time, ``minutes`` after midnight of ``day``."""
    return (datetime(day.year, day.month, day.day, tzinfo=SHANGHAI) + timedelta(minutes=minutes)).isoformat()


def ref(kind: str, id: str) -> dict[str, str]:
    """A relative reference."""
    return {"reference": f"{kind}/{id}"}


def encounter(
    id: str,
    patient: str,
    org: str,
    org_name: str,
    klass: str,
    service: str,
    start: str,
    end: str,
    doctor: str,
    doctor_name: str,
    location: str,
    location_name: str,
    visit_no: str,
    visit_system: str,
    reason: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """An Encounter at an institution (its visit number as identifier)."""
    enc: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": id,
        "identifier": [{"system": visit_system, "value": visit_no}],
        "status": "finished",
        "class": _CLASS[klass],
        "type": [
            {"coding": [{"system": s.SERVICE_TYPE, "code": service, "display": SERVICE_TYPES[service]}]}
        ],
        "subject": ref("Patient", patient),
        "participant": [{"individual": {"reference": f"Practitioner/{doctor}", "display": doctor_name}}],
        "period": {"start": start, "end": end},
        "location": [{"location": {"reference": f"Location/{location}", "display": location_name}}],
        "serviceProvider": {"reference": f"Organization/{org}", "display": org_name},
    }
    if reason:
        enc["reasonCode"] = [{"coding": [{"system": s.ICD10, "code": reason[0], "display": reason[1]}]}]
    return enc


def condition(
    id: str,
    patient: str,
    encounter_id: str | None,
    code: str,
    name: str,
    recorded: str,
    onset: str,
    doctor: str,
    chronic: bool = False,
    notifiable: tuple[str, str, str] | None = None,
) -> dict[str, Any]:
    """A diagnosis in ICD-10 (with the notifiable-disease card code and case class when it is one)."""
    codings: list[dict[str, str]] = [{"system": s.ICD10, "code": code, "display": name}]
    cond: dict[str, Any] = {
        "resourceType": "Condition",
        "id": id,
        "clinicalStatus": _CLINICAL_ACTIVE if chronic or notifiable else _CLINICAL_RESOLVED,
        "verificationStatus": _CONFIRMED,
        "category": _PROBLEM if chronic else _ENCOUNTER_DX,
        "code": {"coding": codings, "text": name},
        "subject": ref("Patient", patient),
        "onsetDateTime": onset,
        "recordedDate": recorded,
        "recorder": ref("Practitioner", doctor),
    }
    if encounter_id:
        cond["encounter"] = ref("Encounter", encounter_id)
    if notifiable:
        disease, disease_name, case_class = notifiable
        codings.append({"system": s.NOTIFIABLE_DISEASE, "code": disease, "display": disease_name})
        cond["category"] = [
            _ENCOUNTER_DX[0],
            {
                "coding": [
                    {
                        "system": "urn:rhip:cs:condition-category",
                        "code": "notifiable",
                        "display": "法定传染病",
                    }
                ]
            },
        ]
        cond["extension"] = [
            {
                "url": "urn:rhip:ext:case-classification",
                "valueCoding": {
                    "system": s.CASE_CLASSIFICATION,
                    "code": case_class,
                    "display": CASE_CLASS[case_class],
                },
            }
        ]
    return cond


CASE_CLASS = {"1": "临床诊断病例", "2": "确诊病例", "3": "疑似病例", "4": "病原携带者"}


def vital(
    id: str,
    patient: str,
    encounter_id: str,
    org: str,
    when: str,
    loinc: str,
    name: str,
    value: float,
    unit: str,
    ucum: str,
) -> dict[str, Any]:
    """A vital sign with a single quantity."""
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": _VITAL,
        "code": {"coding": [{"system": s.LOINC, "code": loinc, "display": name}], "text": name},
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "effectiveDateTime": when,
        "performer": [ref("Organization", org)],
        "valueQuantity": {"value": value, "unit": unit, "system": s.UCUM, "code": ucum},
    }


def blood_pressure(
    id: str, patient: str, encounter_id: str, org: str, when: str, systolic: int, diastolic: int
) -> dict[str, Any]:
    """A blood pressure panel (LOINC 85354-9) with systolic and diastolic components."""
    return {
        "resourceType": "Observation",
        "id": id,
        "status": "final",
        "category": _VITAL,
        "code": {"coding": [{"system": s.LOINC, "code": "85354-9", "display": "血压"}], "text": "血压"},
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "effectiveDateTime": when,
        "performer": [ref("Organization", org)],
        "component": [
            {
                "code": {"coding": [{"system": s.LOINC, "code": "8480-6", "display": "收缩压"}]},
                "valueQuantity": {"value": systolic, "unit": "mmHg", "system": s.UCUM, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": s.LOINC, "code": "8462-4", "display": "舒张压"}]},
                "valueQuantity": {"value": diastolic, "unit": "mmHg", "system": s.UCUM, "code": "mm[Hg]"},
            },
        ],
    }


def lab(
    id: str,
    patient: str,
    encounter_id: str,
    org: str,
    org_code: str,
    when: str,
    issued: str,
    report_no: str,
    item: list[Any],
    value: float,
) -> dict[str, Any]:
    """A laboratory result with its LOINC code and the lab's local code, reference range and flag."""
    loinc, local, name, ucum, unit, _mean, _sd, low, high = item
    flag = "H" if value > high else "L" if value < low else "N"
    return {
        "resourceType": "Observation",
        "id": id,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.33", "value": report_no}],
        "status": "final",
        "category": _LAB,
        "code": {
            "coding": [
                {"system": s.LOINC, "code": loinc, "display": name},
                {"system": s.local_code_system(org_code, "lab"), "code": local, "display": name},
            ],
            "text": name,
        },
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "effectiveDateTime": when,
        "issued": issued,
        "performer": [ref("Organization", org)],
        "valueQuantity": {"value": value, "unit": unit or ucum, "system": s.UCUM, "code": ucum},
        "interpretation": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": flag,
                    }
                ]
            }
        ],
        "referenceRange": [
            {"low": {"value": low, "unit": unit or ucum}, "high": {"value": high, "unit": unit or ucum}}
        ],
    }


def report(
    id: str,
    patient: str,
    encounter_id: str,
    org: str,
    org_code: str,
    when: str,
    issued: str,
    report_no: str,
    panel: str,
    results: list[str],
) -> dict[str, Any]:
    """A laboratory DiagnosticReport over its results."""
    return {
        "resourceType": "DiagnosticReport",
        "id": id,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.33", "value": report_no}],
        "status": "final",
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
        ],
        "code": {
            "coding": [
                {
                    "system": s.local_code_system(org_code, "lab-panel"),
                    "code": panel.upper(),
                    "display": PANELS.get(panel, panel),
                }
            ],
            "text": PANELS.get(panel, panel),
        },
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "effectiveDateTime": when,
        "issued": issued,
        "performer": [ref("Organization", org)],
        "result": [ref("Observation", r) for r in results],
    }


PANELS = {
    "glucose": "空腹血糖",
    "hba1c": "糖化血红蛋白",
    "cbc": "血常规",
    "crp": "C反应蛋白",
    "lipids": "血脂四项",
    "liver": "肝功能",
    "renal": "肾功能",
    "urine": "尿常规",
    "stool": "粪便常规",
}


def medication(
    req_id: str,
    disp_id: str,
    patient: str,
    encounter_id: str,
    org: str,
    org_code: str,
    doctor: str,
    when: str,
    prescription_no: str,
    drug: list[Any],
    quantity: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A prescription and its dispensing, with the cost (单价 × 数量) as a Money extension."""
    atc, local, name, dose, _qty, unit, price = drug
    concept = {
        "coding": [
            {"system": s.ATC, "code": atc},
            {"system": s.local_code_system(org_code, "drug"), "code": local, "display": name},
        ],
        "text": name,
    }
    request = {
        "resourceType": "MedicationRequest",
        "id": req_id,
        "identifier": [{"system": "urn:oid:2.16.156.10011.1.20", "value": prescription_no}],
        "status": "completed",
        "intent": "order",
        "medicationCodeableConcept": concept,
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "authoredOn": when,
        "requester": ref("Practitioner", doctor),
        "dosageInstruction": [{"text": dose}],
        "dispenseRequest": {"quantity": {"value": quantity, "unit": unit}},
    }
    dispense = {
        "resourceType": "MedicationDispense",
        "id": disp_id,
        "status": "completed",
        "medicationCodeableConcept": concept,
        "subject": ref("Patient", patient),
        "context": ref("Encounter", encounter_id),
        "performer": [{"actor": ref("Organization", org)}],
        "authorizingPrescription": [ref("MedicationRequest", req_id)],
        "quantity": {"value": quantity, "unit": unit},
        "whenHandedOver": when,
        "dosageInstruction": [{"text": dose}],
        "extension": [
            {"url": "urn:rhip:ext:unit-price", "valueMoney": {"value": price, "currency": "CNY"}},
            {
                "url": "urn:rhip:ext:total-cost",
                "valueMoney": {"value": round(price * quantity, 2), "currency": "CNY"},
            },
        ],
    }
    return request, dispense


def procedure(
    id: str, patient: str, encounter_id: str, doctor: str, when: str, code: str, name: str
) -> dict[str, Any]:
    """A procedure in ICD-9-CM-3."""
    return {
        "resourceType": "Procedure",
        "id": id,
        "status": "completed",
        "code": {"coding": [{"system": s.ICD9CM3, "code": code, "display": name}], "text": name},
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "performedDateTime": when,
        "performer": [{"actor": ref("Practitioner", doctor)}],
    }


def allergy(id: str, patient: str, code: str, name: str, recorded: str, doctor: str) -> dict[str, Any]:
    """A drug allergy."""
    return {
        "resourceType": "AllergyIntolerance",
        "id": id,
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                    "code": "active",
                }
            ]
        },
        "verificationStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification",
                    "code": "confirmed",
                }
            ]
        },
        "type": "allergy",
        "category": ["medication"],
        "code": {"coding": [{"system": "urn:rhip:cs:allergen", "code": code, "display": name}], "text": name},
        "patient": ref("Patient", patient),
        "recordedDate": recorded,
        "recorder": ref("Practitioner", doctor),
    }


def immunization(
    id: str, patient: str, org: str, when: str, vaccine: str, name: str, dose: int, edition: str, lot: str
) -> dict[str, Any]:
    """A dose of a national-programme vaccine."""
    return {
        "resourceType": "Immunization",
        "id": id,
        "status": "completed",
        "vaccineCode": {
            "coding": [{"system": s.NIP_VACCINE, "code": vaccine, "display": name}],
            "text": name,
        },
        "patient": ref("Patient", patient),
        "occurrenceDateTime": when,
        "recorded": when,
        "primarySource": True,
        "lotNumber": lot,
        "performer": [{"actor": ref("Organization", org)}],
        "protocolApplied": [{"series": edition, "doseNumberPositiveInt": dose}],
    }


def referral(
    id: str,
    patient: str,
    encounter_id: str,
    doctor: str,
    when: str,
    target: str,
    target_name: str,
    code: str,
    name: str,
) -> dict[str, Any]:
    """A referral (双向转诊, upward) to another institution."""
    return {
        "resourceType": "ServiceRequest",
        "id": id,
        "status": "completed",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "3457005", "display": "Patient referral"}
                ],
                "text": "转诊",
            }
        ],
        "code": {"text": "上转"},
        "subject": ref("Patient", patient),
        "encounter": ref("Encounter", encounter_id),
        "authoredOn": when,
        "requester": ref("Practitioner", doctor),
        "performer": [{"reference": f"Organization/{target}", "display": target_name}],
        "reasonCode": [{"coding": [{"system": s.ICD10, "code": code, "display": name}]}],
    }
