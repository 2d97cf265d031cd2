"""ADT written by ``rhip.synth.hl7v2`` from FHIR comes back as that FHIR (the synthetic region is ground truth).

The resources below are copied from a synthetic region (``rhip synth --people 300 --years 1 --start
2025-01-01``, institution 510725H01). What v2 cannot carry, or what the platform's conventions name
differently, is checked as the difference it is, so that a change on either side shows.
"""

from __future__ import annotations

import copy
from typing import Any
from zoneinfo import ZoneInfo

from rhip.exchange.hl7v2.mapping import MappingContext, map_message
from rhip.exchange.hl7v2.message import parse
from rhip.synth.hl7v2 import adt

ORG = {
    "resourceType": "Organization",
    "id": "org-510725H01",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.5", "value": "510725H01"}],
    "name": "梓潼县人民医院",
}
PRACTITIONER = {
    "resourceType": "Practitioner",
    "id": "prac-510725H01-005",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.4", "value": "0005"}],
    "name": [{"use": "official", "text": "张蓉", "family": "张", "given": ["蓉"]}],
}
PATIENT = {
    "resourceType": "Patient",
    "id": "7a0f3577-22d6-4190-b007-bfa95304efec",
    "identifier": [
        {"system": "urn:rhip:mrn:510725H01", "value": "179376639662"},
        {"system": "urn:oid:2.16.156.10011.1.3", "value": "510725198705287649"},
        {"system": "urn:oid:2.16.156.10011.1.19", "value": "5107258417751086064"},
        {"system": "urn:oid:2.16.156.10011.1.15", "value": "51079980684308"},
    ],
    "active": True,
    "name": [{"use": "official", "text": "何婷", "family": "何", "given": ["婷"]}],
    "gender": "female",
    "birthDate": "1987-05-28",
    "address": [
        {
            "use": "home",
            "text": "四川省绵阳市梓潼县文兴镇照耀村4组63号",
            "line": ["文兴镇照耀村4组63号"],
            "city": "绵阳市",
            "district": "梓潼县",
            "state": "四川省",
            "extension": [{"url": "urn:rhip:ext:division", "valueCode": "510725113207"}],
        }
    ],
    "maritalStatus": {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "20", "display": "已婚"}]
    },
    "extension": [
        {
            "url": "urn:rhip:ext:ethnicity",
            "valueCodeableConcept": {"coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.3", "code": "01"}]},
        }
    ],
    "managingOrganization": {"reference": "Organization/org-510725H01"},
    "telecom": [{"system": "phone", "value": "18522529119", "use": "mobile"}],
}
ENCOUNTER = {
    "resourceType": "Encounter",
    "id": "6631996b-8145-4d72-b74c-0ab9ab1fdfdf",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.12", "value": "ZY2025022000000700004"}],
    "status": "finished",
    "class": {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "IMP",
        "display": "inpatient encounter",
    },
    "subject": {"reference": "Patient/7a0f3577-22d6-4190-b007-bfa95304efec"},
    "participant": [{"individual": {"reference": "Practitioner/prac-510725H01-005", "display": "张蓉"}}],
    "period": {"start": "2025-02-20T15:47:00+08:00", "end": "2025-02-22T18:32:00+08:00"},
    "location": [{"location": {"reference": "Location/loc-510725H01-05", "display": "神经内科"}}],
    "hospitalization": {
        "dischargeDisposition": {
            "coding": [{"system": "urn:oid:2.16.156.10011.2.3.1.265", "code": "1", "display": "医嘱离院"}]
        }
    },
}
CONDITION = {
    "resourceType": "Condition",
    "verificationStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}
        ]
    },
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                    "code": "encounter-diagnosis",
                }
            ]
        }
    ],
    "code": {
        "coding": [{"system": "urn:oid:2.16.156.10011.2.3.3.11", "code": "I63.9", "display": "脑梗死"}],
        "text": "脑梗死",
    },
    "recordedDate": "2025-02-20T15:47:00+08:00",
    "recorder": {"reference": "Practitioner/prac-510725H01-005"},
}
ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"  # what I10 maps to: the national clinical edition


def discharge() -> dict[str, list[dict[str, Any]]]:
    """The resources of the A03 that synth writes for the visit, mapped back, by type."""
    text = adt(
        "A03",
        PATIENT,
        ORG,
        control_id="1",
        sent="2025-02-22T18:32:00+08:00",
        encounter=ENCOUNTER,
        practitioner=PRACTITIONER,
        conditions=[CONDITION],
    )
    message = parse(text)
    result = map_message(
        message, MappingContext("510725H01", "2025-03-01T00:00:00Z", ZoneInfo("Asia/Shanghai"))
    )
    by_type: dict[str, list[dict[str, Any]]] = {}
    for entry in result.bundle["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(entry["resource"])
    return by_type


def test_the_patient_comes_back_as_written() -> None:
    [patient] = discharge()["Patient"]
    expected = copy.deepcopy(PATIENT)
    for key in ("id", "managingOrganization"):
        del expected[key]
    # v2 carries the county (six digits of GB/T 2260) and says the country
    expected["address"][0]["extension"][0]["valueCode"] = "510725"
    expected["address"][0]["country"] = "CHN"
    got = {k: v for k, v in patient.items() if k not in ("meta", "managingOrganization")}
    assert got == expected


def test_the_encounter_comes_back_with_the_platform_visit_identifier() -> None:
    [encounter] = discharge()["Encounter"]
    assert encounter["identifier"] == [
        {"system": "urn:rhip:visit:510725H01", "value": "ZY2025022000000700004"}
    ]
    for key in ("status", "class", "period"):
        assert encounter[key] == ENCOUNTER[key], key
    assert encounter["hospitalization"] == ENCOUNTER["hospitalization"]
    [participant] = encounter["participant"]
    assert participant["individual"]["display"] == "张蓉"
    assert participant["individual"]["identifier"]["value"] == "0005"
    [place] = encounter["location"]
    assert (place["location"]["display"], place["location"]["identifier"]["value"]) == ("神经内科", "05")


def test_the_condition_comes_back_with_its_code_and_dates() -> None:
    [condition] = discharge()["Condition"]
    for key in ("verificationStatus", "category", "recordedDate"):
        assert condition[key] == CONDITION[key], key
    # synth writes the national clinical edition as I10, and I10 comes back as that edition
    [coding] = condition["code"]["coding"]
    assert (coding["system"], coding["code"], coding["display"]) == (ICD10, "I63.9", "脑梗死")
    assert condition["code"]["text"] == "脑梗死"
    assert condition["recorder"]["identifier"]["value"] == "0005"
