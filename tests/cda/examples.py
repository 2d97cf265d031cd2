"""FHIR resources (the shapes the platform stores, see var/ex-small/fhir) and a DocumentContext per document type."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from rhip.cda.write import DocumentContext

ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
ORG_CODE = "510703H01"
PATIENT_REF = {"reference": "Patient/pat-1"}
ENCOUNTER_REF = {"reference": "Encounter/enc-1"}

ORGANIZATION: dict[str, Any] = {
    "resourceType": "Organization",
    "id": f"org-{ORG_CODE}",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": ORG_CODE}],
    "name": "绵阳市中心医院",
    "telecom": [{"system": "phone", "value": "0816-2239651"}],
    "address": [
        {
            "text": "四川省绵阳市涪城区常家巷12号",
            "line": ["常家巷12号"],
            "city": "绵阳市",
            "district": "涪城区",
            "state": "四川省",
        }
    ],
}
DESTINATION: dict[str, Any] = {
    "resourceType": "Organization",
    "id": "org-510107H01",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": "510107H01"}],
    "name": "四川大学华西医院",
}
PRACTITIONER: dict[str, Any] = {
    "resourceType": "Practitioner",
    "id": f"prac-{ORG_CODE}-007",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.4", "value": "0007"}],
    "name": [{"use": "official", "text": "李建国"}],
}
PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "identifier": [
        {"system": f"urn:rhip:mrn:{ORG_CODE}", "value": "M00012345"},
        {"system": "urn:oid:2.16.156.10011.1.3", "value": "510703198507120027"},
        {"system": "urn:oid:2.16.156.10011.1.19", "value": "5107000000123456789"},
        {"system": "urn:oid:2.16.156.10011.1.2", "value": "51070300100100012"},
        {"system": "urn:oid:2.16.156.10011.1.11", "value": "MZ2023000123"},
    ],
    "name": [{"use": "official", "text": "王丽"}],
    "telecom": [{"system": "phone", "value": "13981612345"}],
    "gender": "female",
    "birthDate": "1985-07-12",
    "address": [
        {
            "text": "四川省绵阳市涪城区城郊街道和平村3组15号",
            "line": ["和平村3组15号"],
            "city": "绵阳市",
            "district": "涪城区",
            "state": "四川省",
        }
    ],
    "maritalStatus": {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "20", "display": "已婚"}]
    },
    "contact": [
        {
            "relationship": [
                {
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0131", "code": "C"}],
                    "text": "丈夫",
                }
            ],
            "name": {"text": "张强"},
            "telecom": [{"system": "phone", "value": "13900000001"}],
        }
    ],
    "managingOrganization": {"reference": f"Organization/org-{ORG_CODE}"},
}
ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.11", "value": "MZ2023000123-0004"}],
    "status": "finished",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "subject": PATIENT_REF,
    "participant": [{"individual": {"reference": f"Practitioner/prac-{ORG_CODE}-007", "display": "李建国"}}],
    "period": {"start": "2023-03-04T09:12:00+08:00", "end": "2023-03-04T09:50:00+08:00"},
    "reasonCode": [{"text": "咳嗽、发热3天"}],
    "diagnosis": [{"condition": {"reference": "Condition/cond-pneumonia"}, "rank": 1}],
    "location": [{"location": {"reference": "Location/loc-1", "display": "呼吸内科"}}],
}
PNEUMONIA: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "cond-pneumonia",
    "clinicalStatus": {"coding": [{"code": "resolved"}]},
    "code": {"coding": [{"system": ICD10, "code": "J18.9", "display": "肺炎"}], "text": "肺炎"},
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "onsetDateTime": "2023-03-02",
    "recordedDate": "2023-03-04T09:30:00+08:00",
}
HYPERTENSION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "cond-htn",
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "code": {"coding": [{"system": ICD10, "code": "I10", "display": "原发性高血压"}], "text": "原发性高血压"},
    "subject": PATIENT_REF,
    "onsetDateTime": "2019-05-10",
}
NOTIFIABLE: dict[str, Any] = {
    **copy.deepcopy(PNEUMONIA),
    "id": "cond-hfmd",
    "code": {
        "coding": [
            {"system": ICD10, "code": "B08.4", "display": "手足口病"},
            {"system": "urn:rhip:cs:notifiable-disease", "code": "4000", "display": "手足口病"},
        ],
        "text": "手足口病",
    },
}
BLOOD_PRESSURE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "obs-bp",
    "status": "final",
    "category": [{"coding": [{"code": "vital-signs"}]}],
    "code": {"coding": [{"system": LOINC, "code": "85354-9"}], "text": "血压"},
    "effectiveDateTime": "2023-03-04T09:20:00+08:00",
    "component": [
        {
            "code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
            "valueQuantity": {"value": 146, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
            "valueQuantity": {"value": 92, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"},
        },
    ],
}
GLUCOSE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "obs-glu",
    "status": "final",
    "category": [{"coding": [{"code": "laboratory"}]}],
    "code": {"coding": [{"system": LOINC, "code": "1558-6", "display": "空腹血糖"}], "text": "空腹血糖"},
    "effectiveDateTime": "2023-03-04T08:00:00+08:00",
    "valueQuantity": {"value": 7.8, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    "interpretation": [{"coding": [{"code": "H"}]}],
    "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.1}}],
}
LAB_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "id": "rep-lab",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.33", "value": "JY2023030400017"}],
    "status": "final",
    "category": [{"coding": [{"code": "LAB"}]}],
    "code": {"text": "生化全项"},
    "issued": "2023-03-04T11:02:00+08:00",
    "result": [{"reference": "Observation/obs-glu"}],
}
CT_FINDING: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "obs-ct",
    "status": "final",
    "category": [{"coding": [{"code": "imaging"}]}],
    "code": {"coding": [{"system": LOINC, "code": "24627-2", "display": "胸部CT"}], "text": "胸部CT"},
    "effectiveDateTime": "2023-03-04T10:10:00+08:00",
    "valueString": "右肺下叶见斑片状高密度影，边界模糊。",
}
CT_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "id": "rep-ct",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.32", "value": "JC2023030400008"}],
    "basedOn": [{"reference": "ServiceRequest/order-ct"}],
    "status": "final",
    "category": [
        {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "RAD"}],
            "text": "放射",
        }
    ],
    "code": {"coding": [{"system": LOINC, "code": "24627-2", "display": "胸部CT"}], "text": "胸部CT平扫"},
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "effectiveDateTime": "2023-03-04T10:10:00+08:00",
    "issued": "2023-03-04T11:30:00+08:00",
    "result": [{"reference": "Observation/obs-ct"}],
    "conclusion": "右肺下叶肺炎。",
}
CT_ORDER: dict[str, Any] = {
    "resourceType": "ServiceRequest",
    "id": "order-ct",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.24", "value": "SQ2023030400021"}],
    "status": "completed",
    "intent": "order",
    "code": {"text": "胸部CT平扫"},
    "subject": PATIENT_REF,
}
BLOOD_TYPE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "obs-abo",
    "status": "final",
    "code": {"coding": [{"system": LOINC, "code": "882-1"}], "text": "ABO+Rh血型"},
    "valueCodeableConcept": {"text": "A型 Rh阳性"},
}
MEDICATION: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "med-1",
    "status": "completed",
    "intent": "order",
    "medicationCodeableConcept": {
        "coding": [{"system": "http://www.whocc.no/atc", "code": "J01CA04"}],
        "text": "阿莫西林胶囊 0.25g",
    },
    "authoredOn": "2023-03-04T09:40:00+08:00",
    "dosageInstruction": [{"text": "口服，每次0.5g，每日3次", "route": {"text": "口服"}}],
}
IMMUNIZATION: dict[str, Any] = {
    "resourceType": "Immunization",
    "id": "imm-1",
    "status": "completed",
    "vaccineCode": {"coding": [{"system": "urn:rhip:cs:nip-vaccine", "code": "0402"}], "text": "百白破疫苗"},
    "occurrenceDateTime": "2023-06-05T10:00:00+08:00",
    "lotNumber": "202301A17",
    "protocolApplied": [{"doseNumberPositiveInt": 2}],
}
ALLERGY: dict[str, Any] = {
    "resourceType": "AllergyIntolerance",
    "id": "allergy-1",
    "verificationStatus": {"coding": [{"code": "confirmed"}]},
    "category": ["medication"],
    "code": {"coding": [{"system": "urn:rhip:cs:allergen", "code": "penicillin"}], "text": "青霉素类"},
    "reaction": [{"manifestation": [{"text": "皮疹"}]}],
}
PROCEDURE: dict[str, Any] = {
    "resourceType": "Procedure",
    "id": "proc-1",
    "status": "completed",
    "code": {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.12", "code": "47.09", "display": "阑尾切除术"}],
        "text": "阑尾切除术",
    },
    "performedDateTime": "2010-06-01T10:00:00+08:00",
}
FAMILY: dict[str, Any] = {
    "resourceType": "FamilyMemberHistory",
    "id": "fmh-1",
    "status": "completed",
    "relationship": {"text": "父亲"},
    "condition": [{"code": {"text": "原发性高血压"}}],
}


def stay() -> dict[str, Any]:
    """The visit as an inpatient stay with its 住院号 and discharge disposition."""
    enc = copy.deepcopy(ENCOUNTER)
    enc["class"] = {"code": "IMP"}
    enc["identifier"] = [{"system": "urn:oid:2.16.156.10011.1.12", "value": "ZY2023000456"}]
    enc["period"] = {"start": "2023-03-04T09:12:00+08:00", "end": "2023-03-11T10:00:00+08:00"}
    enc["hospitalization"] = {
        "dischargeDisposition": {
            "coding": [{"system": "urn:oid:2.16.156.10011.2.3.1.265", "code": "1", "display": "医嘱离院"}]
        }
    }
    return enc


BASE = DocumentContext(
    document_id="DOC-000001",
    effective_time="2023-03-11T10:30:00+08:00",
    patient=PATIENT,
    custodian=ORGANIZATION,
    author=PRACTITIONER,
)
CONTEXTS: dict[str, DocumentContext] = {
    "C0001": replace(
        BASE,
        encounter=stay(),
        conditions=[PNEUMONIA, HYPERTENSION],
        observations=[BLOOD_TYPE],
        medication_requests=[MEDICATION],
        immunizations=[IMMUNIZATION],
        allergies=[ALLERGY],
        procedures=[PROCEDURE],
        family_history=[FAMILY],
    ),
    "C0002": replace(
        BASE,
        encounter=ENCOUNTER,
        conditions=[PNEUMONIA],
        observations=[BLOOD_PRESSURE, GLUCOSE],
        medication_requests=[MEDICATION],
    ),
    "C0006": replace(
        BASE,
        encounter=ENCOUNTER,
        conditions=[PNEUMONIA],
        observations=[CT_FINDING],
        diagnostic_report=CT_REPORT,
        service_requests=[CT_ORDER],
    ),
    "C0007": replace(BASE, encounter=ENCOUNTER, observations=[GLUCOSE], diagnostic_report=LAB_REPORT),
    "C0032": replace(BASE, encounter=stay(), conditions=[PNEUMONIA], observations=[BLOOD_PRESSURE]),
    "C0053": replace(
        BASE,
        encounter=stay(),
        conditions=[PNEUMONIA],
        observations=[GLUCOSE],
        medication_requests=[MEDICATION],
        diagnostic_report=LAB_REPORT,
    ),
    "HSDC00.05": replace(
        BASE,
        encounter=ENCOUNTER,
        conditions=[PNEUMONIA],
        destination=DESTINATION,
        referral_reason="需上级医院进一步诊治",
    ),
    "HSDB04.01": replace(
        BASE,
        encounter=ENCOUNTER,
        conditions=[HYPERTENSION],
        observations=[BLOOD_PRESSURE],
        medication_requests=[MEDICATION],
    ),
    "HSDB04.02": replace(BASE, encounter=ENCOUNTER, conditions=[HYPERTENSION], observations=[GLUCOSE]),
    "HSDB03.01": replace(BASE, immunizations=[IMMUNIZATION]),
    "HSDB03.02": replace(BASE, encounter=ENCOUNTER, conditions=[NOTIFIABLE]),
    "HSDA00.01": replace(
        BASE,
        conditions=[HYPERTENSION],
        observations=[BLOOD_TYPE],
        allergies=[ALLERGY],
        procedures=[PROCEDURE],
        family_history=[FAMILY],
    ),
}
