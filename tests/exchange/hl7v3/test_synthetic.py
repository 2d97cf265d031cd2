"""The synthetic region's v3 messages (var/ex-small/hl7v3/*.zip) are all accepted and come out as its FHIR.

The synthetic FHIR (var/ex-small/fhir) is the ground truth: a person registered through v3 must be stored
as the region recorded them (identifiers, name, sex, birth, address, phone, marital status, ethnicity),
and an institution and its staff as the registry file has them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v3.service import V3Service
from rhip.fhir.rest.messages import FhirRequest

from .helpers import ack_of, send

ROOT = Path(__file__).resolve().parents[3]
EX_SMALL = ROOT / "var" / "ex-small"
ZIPS = sorted((EX_SMALL / "hl7v3").glob("*.zip"))
pytestmark = pytest.mark.skipif(
    not ZIPS, reason="var/ex-small is not generated (rhip synth --out var/ex-small)"
)


def _search(platform: Platform, rtype: str, **params: str) -> list[dict[str, Any]]:
    query = [*params.items(), ("_count", "1000")]
    response = platform.fhir.handle(FhirRequest("GET", rtype, query=query))
    assert response.status == 200, response.body
    return [e["resource"] for e in orjson.loads(response.body or b"{}").get("entry", [])]


def _truth(code: str) -> dict[str, dict[str, Any]]:
    """The last version of each Patient of an institution in the synthetic FHIR, by its MRN."""
    found: dict[str, dict[str, Any]] = {}
    path = EX_SMALL / "fhir" / f"{code}.ndjson"
    for line in path.read_bytes().splitlines() if path.exists() else []:
        resource = orjson.loads(line)
        if resource.get("resourceType") == "Patient":
            mrn = next(i["value"] for i in resource["identifier"] if i["system"] == f"urn:rhip:mrn:{code}")
            found[mrn] = resource
    return found


def _comparable(patient: dict[str, Any]) -> dict[str, Any]:
    """What a v3 register carries of a Patient (no ids, meta, references, division codes, flags)."""
    addresses = [{k: v for k, v in a.items() if k != "extension"} for a in patient.get("address", ())]
    return {
        "identifier": sorted((i["system"], i["value"]) for i in patient.get("identifier", ())),
        "name": patient.get("name"),
        "gender": patient.get("gender"),
        "birthDate": patient.get("birthDate"),
        "address": addresses,
        "telecom": patient.get("telecom"),
        "maritalStatus": patient.get("maritalStatus"),
        "extension": patient.get("extension"),
        "active": patient.get("active", True),
    }


def test_every_synthetic_message_is_accepted_and_persons_come_out_as_the_region_has_them(
    service: V3Service, v3_platform: Platform
) -> None:
    interactions: dict[str, int] = {}
    for path in ZIPS:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                body = archive.read(name)
                answer = send(service, body)
                assert (answer.status, ack_of(answer)) == (200, ("AA", "")), (name, answer.body[:2000])
                kind = body.split(b"<", 2)[1].split(b" ", 1)[0].decode()
                interactions[kind] = interactions.get(kind, 0) + 1
    assert set(interactions) >= {"PRPA_IN201311UV02", "PRPM_IN401030UV01", "PRPM_IN301010UV01"}
    compared = 0
    for path in ZIPS:
        code = path.stem
        truth = _truth(code)
        for stored in _search(v3_platform, "Patient"):
            mrn = next(
                (i["value"] for i in stored["identifier"] if i["system"] == f"urn:rhip:mrn:{code}"), None
            )
            if mrn is None:
                continue
            assert stored["meta"]["source"] == f"urn:rhip:source:v3:{code}"
            assert _comparable(stored) == _comparable(truth[mrn]), (code, mrn)
            compared += 1
    assert compared == interactions["PRPA_IN201311UV02"]


def test_institutions_and_staff_come_out_as_the_registry_has_them(
    service: V3Service, v3_platform: Platform
) -> None:
    path = ZIPS[0]
    code = path.stem
    with zipfile.ZipFile(path) as archive:
        for name in sorted(n for n in archive.namelist() if "-org" in n or "-prov-" in n):
            assert ack_of(send(service, archive.read(name))) == ("AA", "")
    registry = [
        orjson.loads(line) for line in (EX_SMALL / "fhir" / "0-registry.ndjson").read_bytes().splitlines()
    ]
    org_truth = next(r for r in registry if r["resourceType"] == "Organization" and r["id"] == f"org-{code}")
    (org,) = _search(v3_platform, "Organization", identifier=f"urn:oid:2.16.156.10011.1.5|{code}")
    for key in ("identifier", "type", "name", "telecom", "active"):
        assert org[key] == org_truth[key], key
    assert [{k: v for k, v in a.items() if k != "extension"} for a in org_truth["address"]] == org["address"]
    (parent,) = _search(v3_platform, "Organization", identifier="urn:oid:2.16.156.10011.1.5|510700W01")
    assert org["partOf"] == {"reference": f"Organization/{parent['id']}"}
    staff_truth = {
        r["identifier"][0]["value"]: r
        for r in registry
        if r["resourceType"] == "Practitioner" and r["id"].startswith(f"prac-{code}-")
    }
    stored = _search(v3_platform, "Practitioner")
    assert len(stored) == len(staff_truth)
    for practitioner in stored:
        staff = next(
            i["value"] for i in practitioner["identifier"] if i["system"] == "urn:oid:2.16.156.10011.1.4"
        )
        truth = staff_truth[staff]
        for key in ("name", "gender", "birthDate", "active"):
            assert practitioner.get(key) == truth.get(key), (staff, key)
        licence = [
            i for i in practitioner["identifier"] if i["system"] == "urn:rhip:sid:practitioner-licence"
        ]
        assert licence == [
            i for i in truth["identifier"] if i["system"] == "urn:rhip:sid:practitioner-licence"
        ]
        assert truth["qualification"][0]["code"]["text"] == practitioner["qualification"][0]["code"]["text"]
        (role,) = _search(v3_platform, "PractitionerRole", practitioner=f"Practitioner/{practitioner['id']}")
        assert role["organization"] == {"reference": f"Organization/{org['id']}"}
