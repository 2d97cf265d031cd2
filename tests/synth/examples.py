"""Hand-written examples of the FHIR resources ``rhip synth`` emits, one of each shape.

The format writers (HL7 v2, CDA, HL7 v3) take these shapes as input; their unit tests use these
examples, and tests/synth/test_formats.py runs the same writers on real generator output.
"""

from __future__ import annotations

from typing import Any

from rhip.synth import systems as s

ORG_CODE = "510703-H001"  # the institution code: district + kind letter + sequence

ORGANIZATION: dict[str, Any] = {
    "resourceType": "Organization",
    "id": "org-510703-H001",
    "identifier": [
        {"system": s.USCC, "value": "12510700450754321X"},
        {"system": s.INSTITUTION_LICENCE, "value": "45075432151070311A1001"},
        {"system": s.ORGANIZATION_OID, "value": ORG_CODE},
    ],
    "active": True,
    "type": [
        {"coding": [{"system": s.ORGANIZATION_TYPE, "code": "prov", "display": "Healthcare Provider"}]},
        {
            "coding": [
                {"system": "urn:rhip:cs:institution-kind", "code": "tertiary-hospital", "display": "三级医院"}
            ]
        },
    ],
    "name": "绵阳市中心医院",
    "alias": ["市中心医院"],
    "telecom": [{"system": "phone", "value": "0816-2239651"}],
    "address": [
        {
            "text": "四川省绵阳市涪城区城郊街道常家巷12号",
            "line": ["常家巷12号"],
            "city": "绵阳市",
            "district": "涪城区",
            "state": "四川省",
            "postalCode": "621000",
            "extension": [{"url": "urn:rhip:ext:division", "valueCode": "510703001"}],
        }
    ],
    "partOf": {"reference": "Organization/org-510700-W001"},
}

PRACTITIONER: dict[str, Any] = {
    "resourceType": "Practitioner",
    "id": "prac-510703-H001-0007",
    "identifier": [
        {"system": s.STAFF_NO, "value": "0007", "assigner": {"reference": "Organization/org-510703-H001"}},
        {"system": s.PRACTITIONER_LICENCE, "value": "110510700012345"},
    ],
    "active": True,
    "name": [{"use": "official", "text": "李建国", "family": "李", "given": ["建国"]}],
    "gender": "male",
    "birthDate": "1975-03-02",
    "qualification": [{"code": {"text": "主任医师"}}],
}

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "0d6f3c1e-2b8a-4c55-9c3e-7f1a2b3c4d5e",
    "identifier": [
        {"system": s.mrn_system(ORG_CODE), "value": "M00012345"},
        {"system": s.ID_CARD, "value": "510703198507120027"},
        {"system": s.HEALTH_CARD, "value": "5107000000123456789"},
        {
            "system": s.OUTPATIENT_NO,
            "value": "MZ2023000123",
            "assigner": {"reference": "Organization/org-510703-H001"},
        },
    ],
    "active": True,
    "name": [{"use": "official", "text": "王丽", "family": "王", "given": ["丽"]}],
    "telecom": [{"system": "phone", "value": "13981612345", "use": "mobile"}],
    "gender": "female",
    "birthDate": "1985-07-12",
    "address": [
        {
            "use": "home",
            "text": "四川省绵阳市涪城区城郊街道和平村3组15号",
            "line": ["和平村3组15号"],
            "city": "绵阳市",
            "district": "涪城区",
            "state": "四川省",
            "extension": [{"url": "urn:rhip:ext:division", "valueCode": "510703001"}],
        }
    ],
    "maritalStatus": {"coding": [{"system": s.MARITAL, "code": "20", "display": "已婚"}]},
    "extension": [
        {
            "url": "urn:rhip:ext:ethnicity",
            "valueCodeableConcept": {"coding": [{"system": s.ETHNICITY, "code": "01", "display": "汉族"}]},
        }
    ],
    "managingOrganization": {"reference": "Organization/org-510703-H001"},
}
PATIENT_REF = {"reference": f"Patient/{PATIENT['id']}"}

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "5b1e4a52-9f0d-4a8e-8d5c-1a2b3c4d5e6f",
    "identifier": [{"system": s.OUTPATIENT_NO, "value": "MZ2023000123-0004"}],
    "status": "finished",
    "class": {"system": s.V3_ACT_CODE, "code": "IMP", "display": "inpatient encounter"},
    "type": [{"coding": [{"system": s.SERVICE_TYPE, "code": "inpatient", "display": "住院"}]}],
    "subject": PATIENT_REF,
    "participant": [{"individual": {"reference": "Practitioner/prac-510703-H001-0007", "display": "李建国"}}],
    "period": {"start": "2023-03-04T09:12:00+08:00", "end": "2023-03-11T10:00:00+08:00"},
    "reasonCode": [{"coding": [{"system": s.ICD10, "code": "J18.9", "display": "肺炎"}]}],
    "diagnosis": [{"condition": {"reference": "Condition/7c2d0b6e-1111-4a8e-8d5c-1a2b3c4d5e6f"}, "rank": 1}],
    "hospitalization": {
        "admitSource": {"text": "门诊"},
        "dischargeDisposition": {
            "coding": [{"system": "urn:oid:2.16.156.10011.2.3.1.265", "code": "1", "display": "医嘱离院"}]
        },
    },
    "location": [{"location": {"reference": "Location/loc-510703-H001-D03", "display": "呼吸内科"}}],
    "serviceProvider": {"reference": "Organization/org-510703-H001", "display": "绵阳市中心医院"},
}
ENCOUNTER_REF = {"reference": f"Encounter/{ENCOUNTER['id']}"}

CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "7c2d0b6e-1111-4a8e-8d5c-1a2b3c4d5e6f",
    "clinicalStatus": {"coding": [{"system": s.CONDITION_CLINICAL, "code": "resolved"}]},
    "verificationStatus": {"coding": [{"system": s.CONDITION_VERIFICATION, "code": "confirmed"}]},
    "category": [{"coding": [{"system": s.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]}],
    "code": {"coding": [{"system": s.ICD10, "code": "J18.9", "display": "肺炎"}], "text": "肺炎"},
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "onsetDateTime": "2023-03-02",
    "recordedDate": "2023-03-04T09:30:00+08:00",
    "recorder": {"reference": "Practitioner/prac-510703-H001-0007"},
}

BLOOD_PRESSURE: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "a1b2c3d4-0001-4a8e-8d5c-1a2b3c4d5e6f",
    "status": "final",
    "category": [{"coding": [{"system": s.OBSERVATION_CATEGORY, "code": "vital-signs"}]}],
    "code": {"coding": [{"system": s.LOINC, "code": "85354-9", "display": "血压"}], "text": "血压"},
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "effectiveDateTime": "2023-03-04T09:20:00+08:00",
    "performer": [{"reference": "Organization/org-510703-H001"}],
    "component": [
        {
            "code": {"coding": [{"system": s.LOINC, "code": "8480-6", "display": "收缩压"}]},
            "valueQuantity": {"value": 146, "unit": "mmHg", "system": s.UCUM, "code": "mm[Hg]"},
        },
        {
            "code": {"coding": [{"system": s.LOINC, "code": "8462-4", "display": "舒张压"}]},
            "valueQuantity": {"value": 92, "unit": "mmHg", "system": s.UCUM, "code": "mm[Hg]"},
        },
    ],
}

LAB_RESULT: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "a1b2c3d4-0002-4a8e-8d5c-1a2b3c4d5e6f",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.33", "value": "JY2023030400017-1"}],
    "status": "final",
    "category": [{"coding": [{"system": s.OBSERVATION_CATEGORY, "code": "laboratory"}]}],
    "code": {
        "coding": [
            {"system": s.LOINC, "code": "1558-6", "display": "空腹血糖"},
            {"system": s.local_code_system(ORG_CODE, "lab"), "code": "GLU", "display": "葡萄糖"},
        ],
        "text": "空腹血糖",
    },
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "effectiveDateTime": "2023-03-04T08:00:00+08:00",
    "issued": "2023-03-04T11:02:00+08:00",
    "performer": [{"reference": "Organization/org-510703-H001"}],
    "valueQuantity": {"value": 7.8, "unit": "mmol/L", "system": s.UCUM, "code": "mmol/L"},
    "interpretation": [
        {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation", "code": "H"}
            ]
        }
    ],
    "referenceRange": [{"low": {"value": 3.9, "unit": "mmol/L"}, "high": {"value": 6.1, "unit": "mmol/L"}}],
}

DIAGNOSTIC_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "id": "d1b2c3d4-0003-4a8e-8d5c-1a2b3c4d5e6f",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.33", "value": "JY2023030400017"}],
    "status": "final",
    "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}],
    "code": {
        "coding": [
            {"system": s.local_code_system(ORG_CODE, "lab-panel"), "code": "SHQX", "display": "生化全项"}
        ],
        "text": "生化全项",
    },
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "effectiveDateTime": "2023-03-04T08:00:00+08:00",
    "issued": "2023-03-04T11:02:00+08:00",
    "performer": [{"reference": "Organization/org-510703-H001"}],
    "result": [{"reference": f"Observation/{LAB_RESULT['id']}"}],
}

MEDICATION_REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "e1b2c3d4-0004-4a8e-8d5c-1a2b3c4d5e6f",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.20", "value": "CF2023030400031"}],
    "status": "completed",
    "intent": "order",
    "medicationCodeableConcept": {
        "coding": [
            {"system": s.ATC, "code": "J01CA04", "display": "amoxicillin"},
            {
                "system": s.local_code_system(ORG_CODE, "drug"),
                "code": "Y0102",
                "display": "阿莫西林胶囊 0.25g",
            },
        ],
        "text": "阿莫西林胶囊 0.25g",
    },
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "authoredOn": "2023-03-04T09:40:00+08:00",
    "requester": {"reference": "Practitioner/prac-510703-H001-0007"},
    "dosageInstruction": [
        {
            "text": "口服，每次0.5g，每日3次",
            "route": {"text": "口服"},
            "timing": {"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 0.5, "unit": "g", "system": s.UCUM, "code": "g"}}],
        }
    ],
    "dispenseRequest": {
        "quantity": {"value": 24, "unit": "粒"},
        "expectedSupplyDuration": {"value": 4, "unit": "d", "system": s.UCUM, "code": "d"},
    },
}

IMMUNIZATION: dict[str, Any] = {
    "resourceType": "Immunization",
    "id": "f1b2c3d4-0005-4a8e-8d5c-1a2b3c4d5e6f",
    "status": "completed",
    "vaccineCode": {
        "coding": [{"system": s.NIP_VACCINE, "code": "0402", "display": "百白破疫苗"}],
        "text": "百白破疫苗",
    },
    "patient": PATIENT_REF,
    "occurrenceDateTime": "2023-06-05T10:00:00+08:00",
    "recorded": "2023-06-05T10:05:00+08:00",
    "primarySource": True,
    "lotNumber": "202301A17",
    "manufacturer": {"display": "武汉生物制品研究所有限责任公司"},
    "site": {"text": "左上臂"},
    "route": {"text": "肌内注射"},
    "doseQuantity": {"value": 0.5, "unit": "mL", "system": s.UCUM, "code": "mL"},
    "performer": [{"actor": {"reference": "Organization/org-510703-H001"}}],
    "protocolApplied": [
        {
            "series": "国家免疫规划2021",
            "doseNumberPositiveInt": 2,
            "targetDisease": [{"text": "百日咳、白喉、破伤风"}],
        }
    ],
}

# A chronic-disease follow-up (高血压随访) is an Encounter of service type "htn-followup" at the township
# health centre with its blood-pressure, weight and heart-rate Observations; a diabetes follow-up adds a
# fasting glucose. A notifiable-disease case is a Condition with both codings below.
NOTIFIABLE_CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "c1b2c3d4-0006-4a8e-8d5c-1a2b3c4d5e6f",
    "clinicalStatus": {"coding": [{"system": s.CONDITION_CLINICAL, "code": "active"}]},
    "verificationStatus": {"coding": [{"system": s.CONDITION_VERIFICATION, "code": "confirmed"}]},
    "category": [
        {"coding": [{"system": s.CONDITION_CATEGORY, "code": "encounter-diagnosis"}]},
        {
            "coding": [
                {"system": "urn:rhip:cs:condition-category", "code": "notifiable", "display": "法定传染病"}
            ]
        },
    ],
    "code": {
        "coding": [
            {"system": s.ICD10, "code": "B08.4", "display": "手足口病"},
            {"system": s.NOTIFIABLE_DISEASE, "code": "4000", "display": "手足口病"},
        ],
        "text": "手足口病",
    },
    "subject": PATIENT_REF,
    "encounter": ENCOUNTER_REF,
    "onsetDateTime": "2023-05-20",
    "recordedDate": "2023-05-21T10:30:00+08:00",
    "recorder": {"reference": "Practitioner/prac-510703-H001-0007"},
    "extension": [
        {
            "url": "urn:rhip:ext:case-classification",
            "valueCoding": {"system": s.CASE_CLASSIFICATION, "code": "1", "display": "临床诊断病例"},
        }
    ],
}
