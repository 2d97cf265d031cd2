"""A small care-services directory: commission → district hospital → township centre → village clinic,
with departments (Location), staff (Practitioner, PractitionerRole) and services (HealthcareService)."""

from __future__ import annotations

from typing import Any

from rhip.registries.identifiers import (
    DIVISION_EXTENSION,
    INSTITUTION_CODE,
    INSTITUTION_LICENCE,
    KIND_SYSTEM,
    ORGANIZATION_TYPE,
    PRACTITIONER_LICENCE,
    USCC,
)
from rhip.synth.codes import uscc

SERVICE_CATEGORY = "http://terminology.hl7.org/CodeSystem/service-category"
# (id, code, name, kind, fhir type, division, parent id)
ORGS = [
    ("t-wjw", "T0001", "绵阳市卫生健康委员会", "commission", "govt", "510700", None),
    ("t-rmyy", "T0002", "绵阳市涪城区人民医院", "secondary", "prov", "510703", "t-wjw"),
    ("t-wsy", "T0003", "涪城区石塘镇卫生院", "thc", "prov", "510703104", "t-rmyy"),
    ("t-wss", "T0004", "石塘镇金峰村卫生室", "village", "prov", "510703104201", "t-wsy"),
    ("t-other", "T0005", "江油市人民医院", "secondary", "prov", "510781", "t-wjw"),
]


def organizations() -> list[dict[str, Any]]:
    """The five Organizations, each with its codes, kind, division and parent."""
    out = []
    for n, (rid, code, name, kind, fhir_type, division, parent) in enumerate(ORGS):
        org: dict[str, Any] = {
            "resourceType": "Organization",
            "id": rid,
            "identifier": [
                {"system": INSTITUTION_CODE, "value": code},
                {"system": USCC, "value": uscc(division[:6], f"{45080000 + n:08d}")},
                {"system": INSTITUTION_LICENCE, "value": f"PDY{n:05d}{division[:6]}"},
            ],
            "active": True,
            "type": [
                {"coding": [{"system": ORGANIZATION_TYPE, "code": fhir_type}]},
                {"coding": [{"system": KIND_SYSTEM, "code": kind}]},
            ],
            "name": name,
            "address": [{"text": name, "extension": [{"url": DIVISION_EXTENSION, "valueCode": division}]}],
        }
        if parent:
            org["partOf"] = {"reference": f"Organization/{parent}"}
        out.append(org)
    return out


def locations() -> list[dict[str, Any]]:
    """The hospital's building and one of its wards (part of the building); the centre's clinic."""
    return [
        {"resourceType": "Location", "id": "t-loc-main", "status": "active", "name": "门诊楼", "mode": "instance",
         "managingOrganization": {"reference": "Organization/t-rmyy"}},
        {"resourceType": "Location", "id": "t-loc-card", "status": "active", "name": "心血管内科",
         "mode": "instance", "managingOrganization": {"reference": "Organization/t-rmyy"},
         "partOf": {"reference": "Location/t-loc-main"}},
        {"resourceType": "Location", "id": "t-loc-thc", "status": "active", "name": "预防接种门诊",
         "mode": "instance", "managingOrganization": {"reference": "Organization/t-wsy"},
         "address": {"extension": [{"url": DIVISION_EXTENSION, "valueCode": "510703104"}]}},
    ]  # fmt: skip


def staff() -> list[dict[str, Any]]:
    """Two practitioners; the first works at the hospital and the township centre."""
    people = [
        ("t-p1", "王秀兰", "王", "秀兰", "110510703000001"),
        ("t-p2", "李建国", "李", "建国", "110510703000002"),
    ]
    out: list[dict[str, Any]] = [
        {"resourceType": "Practitioner", "id": pid, "active": True,
         "identifier": [{"system": PRACTITIONER_LICENCE, "value": licence}],
         "name": [{"use": "official", "text": text, "family": family, "given": [given]}]}
        for pid, text, family, given, licence in people
    ]  # fmt: skip
    for rid, who, org, location in [
        ("t-r1", "t-p1", "t-rmyy", "t-loc-card"),
        ("t-r2", "t-p1", "t-wsy", "t-loc-thc"),
        ("t-r3", "t-p2", "t-rmyy", "t-loc-main"),
    ]:
        out.append(
            {
                "resourceType": "PractitionerRole",
                "id": rid,
                "active": True,
                "period": {"start": "2020-01-01"},
                "practitioner": {"reference": f"Practitioner/{who}"},
                "organization": {"reference": f"Organization/{org}"},
                "location": [{"reference": f"Location/{location}"}],
            }
        )
    return out


def services() -> list[dict[str, Any]]:
    """The centre's immunization service and the hospital's cardiology clinic."""

    def service(rid: str, org: str, name: str, category: str) -> dict[str, Any]:
        return {
            "resourceType": "HealthcareService",
            "id": rid,
            "active": True,
            "providedBy": {"reference": f"Organization/{org}"},
            "category": [{"coding": [{"system": SERVICE_CATEGORY, "code": category}]}],
            "name": name,
        }

    return [
        service("t-hs-imm", "t-wsy", "预防接种", "18"),
        service("t-hs-card", "t-rmyy", "心血管内科门诊", "35"),
    ]


def directory() -> list[dict[str, Any]]:
    """Everything, parents before children."""
    return organizations() + locations() + staff() + services()
