"""What the browser tests look for in the region, found (or made) through the server's FHIR API as
demo-admin: the demo clinician's institution, a resident it cares for (with documents and blood-pressure
readings), residents it has never seen (for break-the-glass), and identity review cases."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from .conftest import PortalSite, password_of

ID_CARD = "urn:oid:2.16.156.10011.1.3"
INSTITUTION_CODE = "urn:oid:2.16.156.10011.1.5"
MASTER_SYSTEM = "urn:rhip:empi:master"
BLOOD_PRESSURE = "http://loinc.org|85354-9"  # the panel (systolic and diastolic as components)


@dataclass(frozen=True)
class Resident:
    """A source Patient of the region."""

    id: str
    name: str
    id_number: str


@dataclass
class RegionFacts:
    """The residents and records the flows use."""

    organization: str  # demo-doctor's Organization id
    cared: Resident  # a visit at the organization, documents, blood-pressure readings
    document: str  # a DocumentReference id of ``cared``
    strangers: list[Resident]  # no visit at the organization: the policy refuses demo-doctor


class Fhir:
    """A FHIR client of the server with a bearer token."""

    def __init__(self, base: str, username: str = "demo-admin") -> None:
        token = httpx.post(
            f"{base}/auth/token",
            data={"grant_type": "password", "username": username, "password": password_of(username)},
            timeout=30,
        )
        assert token.status_code == 200, token.text
        self.client = httpx.Client(
            base_url=f"{base}/fhir",
            headers={
                "authorization": f"Bearer {token.json()['access_token']}",
                "accept": "application/fhir+json",
            },
            timeout=60,
        )

    def get(self, path: str, **params: str) -> dict[str, Any]:
        """GET ``path`` with search parameters (``__`` in a name stands for ``:``); the JSON body."""
        response = self.client.get(path, params={k.replace("__", ":"): v for k, v in params.items()})
        assert response.status_code == 200, f"GET {path}: {response.status_code} {response.text[:300]}"
        body: dict[str, Any] = response.json()
        return body

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a resource (or Parameters) to ``path``; the JSON answer."""
        response = self.client.post(path, json=body, headers={"content-type": "application/fhir+json"})
        assert response.status_code in (200, 201), (
            f"POST {path}: {response.status_code} {response.text[:300]}"
        )
        answer: dict[str, Any] = response.json()
        return answer

    def allowed(self, patient: str) -> bool:
        """Whether this account may read ``patient``'s clinical records (its care relationship)."""
        for kind in ("Encounter", "Observation", "DocumentReference"):
            if self.client.get(kind, params={"patient": patient, "_count": "1"}).status_code != 200:
                return False
        return True

    def every(self, path: str, **params: str) -> list[dict[str, Any]]:
        """Every resource a search finds (up to 1,000)."""
        bundle = self.get(path, _count="1000", **params)
        return [e["resource"] for e in bundle.get("entry", []) if "resource" in e]

    def total(self, path: str, **params: str) -> int:
        """How many resources a search finds."""
        return int(self.get(path, _summary="count", **params).get("total", 0))

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()


def resident_of(patient: dict[str, Any]) -> Resident:
    """A Patient as the tests know it: id, name, ID-card number."""
    name = (patient.get("name") or [{}])[0]
    text = name.get("text") or (name.get("family", "") + "".join(name.get("given", [])))
    number = next((i["value"] for i in patient.get("identifier", []) if i.get("system") == ID_CARD), "")
    return Resident(str(patient["id"]), str(text), str(number))


def is_master(patient: dict[str, Any]) -> bool:
    """Whether a Patient is an EMPI master (golden) record rather than an institution's."""
    tags = patient.get("meta", {}).get("tag", [])
    return any(t.get("code") == "master" for t in tags) or any(
        i.get("system") == MASTER_SYSTEM for i in patient.get("identifier", [])
    )


def region_facts(base: str, site: PortalSite) -> RegionFacts:
    """Find the clinician's organization, a resident with care there, and residents without."""
    fhir, doctor = Fhir(base), Fhir(base, "demo-doctor")
    try:
        code = site.accounts["demo-doctor"].scope.removeprefix("institution ")
        (organization,) = fhir.every("Organization", identifier=f"{INSTITUTION_CODE}|{code}")
        org = str(organization["id"])
        visits = fhir.every("Encounter", service_provider=f"Organization/{org}", _elements="subject")
        seen = {str(e.get("subject", {}).get("reference", "")).removeprefix("Patient/") for e in visits}
        patients = [p for p in fhir.every("Patient") if not is_master(p)]
        assert seen, f"no encounter at {org}"
        cared: tuple[Resident, str] | None = None
        ordered = sorted(patients, key=lambda p: p["id"] != site.resident_patient)
        for patient in ordered:
            if patient["id"] not in seen or not doctor.allowed(str(patient["id"])):
                continue  # no visit there, or not within the care window
            docs = fhir.every("DocumentReference", patient=str(patient["id"]), _elements="id")
            if docs and fhir.total("Observation", patient=str(patient["id"]), code=BLOOD_PRESSURE) >= 2:
                cared = (resident_of(patient), str(docs[0]["id"]))
                break
        assert cared is not None, "no resident of the clinician's institution has documents and BP readings"
        strangers = [stranger(fhir, "甲", 11), stranger(fhir, "乙", 13)]
        return RegionFacts(org, cared[0], cared[1], strangers)
    finally:
        fhir.close()
        doctor.close()


def id_number(birth: str, seq: int) -> str:
    """A valid GB 11643 ID number of Beijing's Chaoyang district (odd ``seq``: a man)."""
    first17 = f"110105{birth}{seq:03d}"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, weights, strict=True)) % 11]


def stranger(fhir: Fhir, given: str, seq: int) -> Resident:
    """A new resident registered elsewhere (no visit at any hospital of the region): the clinician has no
    care relationship with them, whatever the synthetic region's visits are."""
    number = id_number("19720304", seq)
    existing = fhir.every("Patient", identifier=f"{ID_CARD}|{number}")
    if existing:
        return resident_of(existing[0])
    patient = fhir.post(
        "Patient",
        {
            "resourceType": "Patient",
            "identifier": [
                {"system": "urn:rhip:mrn:browser-tests", "value": f"S{seq}"},
                {"system": ID_CARD, "value": number},
            ],
            "name": [{"text": f"钟测{given}", "family": "钟", "given": [f"测{given}"]}],
            "gender": "male",
            "birthDate": "1972-03-04",
        },
    )
    fhir.post(
        "Condition",
        {
            "resourceType": "Condition",
            "subject": {"reference": f"Patient/{patient['id']}"},
            "code": {
                "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}],
                "text": "高血压",
            },
            "clinicalStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
                ]
            },
        },
    )
    return resident_of(patient)


def near_duplicates(base: str, family: str, given: str, id_number: str) -> tuple[str, int]:
    """Register one person at two institutions, then a doubtful third record: (its Patient id, review id).

    The third record lacks the ID number and has another phone and address, so the resident index can
    neither link it for sure nor call it another person: it lands in the review queue (as in tests/empi).
    The name must be a common one (张伟, 王芳): a rare name agreeing with the birth date is linked at once.
    """
    fhir = Fhir(base)
    try:

        def patient(system: str, mrn: str, *, whole: bool) -> dict[str, Any]:
            identifiers = [{"system": system, "value": mrn}]
            if whole:
                identifiers.append({"system": ID_CARD, "value": id_number})
                phone, address = "13800138000", {"text": "北京市朝阳区建国路1号", "district": "朝阳区"}
            else:
                phone, address = "13911112222", {"text": "上海市浦东新区世纪大道2号", "district": "浦东新区"}
            return {
                "resourceType": "Patient",
                "identifier": identifiers,
                "name": [{"text": family + given, "family": family, "given": [given]}],
                "gender": "male",
                "birthDate": "1949-12-31",
                "telecom": [{"system": "phone", "value": phone}],
                "address": [address],
            }

        fhir.post("Patient", patient(f"urn:rhip:mrn:browser-a-{id_number}", "A1", whole=True))
        fhir.post("Patient", patient(f"urn:rhip:mrn:browser-b-{id_number}", "B1", whole=True))
        third = fhir.post("Patient", patient(f"urn:rhip:mrn:browser-c-{id_number}", "C1", whole=False))
        queue = fhir.get("Patient/$empi-review-list")
        for item in queue.get("parameter", []):
            if item.get("name") != "item":
                continue
            parts = {p["name"]: p for p in item.get("part", [])}
            if _value(parts.get("patient")) == third["id"]:
                return str(third["id"]), int(_value(parts["id"]))
        raise AssertionError(f"the third record of {family}{given} did not land in the review queue: {queue}")
    finally:
        fhir.close()


def _value(part: dict[str, Any] | None) -> Any:
    if not part:
        return None
    value = next((v for k, v in part.items() if k.startswith("value")), None)
    if isinstance(value, dict) and "reference" in value:
        return str(value["reference"]).rpartition("/")[2]
    return value
