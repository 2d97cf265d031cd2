"""The resident area (公众门户): my record and documents, who viewed my record, consent settings."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from rhip.security.consent import rules_of

from .conftest import PortalSite, password_of, sign_in

ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"
CDA = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<ClinicalDocument xmlns="urn:hl7-org:v3"><title>门诊摘要</title></ClinicalDocument>'
)


def _token(client: TestClient, username: str) -> dict[str, str]:
    issued = client.post(
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": password_of(username)},
    )
    assert issued.status_code == 200, issued.text
    return {"Authorization": f"Bearer {issued.json()['access_token']}"}


def _fhir_headers(headers: dict[str, str]) -> dict[str, str]:
    return {**headers, "Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _csrf(client: TestClient) -> str:
    return client.cookies.get("rhip_csrf") or ""


def _table(html: str, table_id: str) -> str:
    found = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert found, f"no table#{table_id}"
    return found.group(0)


@pytest.fixture(scope="module")
def resident(portal_app: Callable[[str | None], TestClient]) -> TestClient:
    """The demo resident, signed in to the portal."""
    client = portal_app("demo-resident")
    assert client.cookies.get("rhip_at"), "the demo resident could not sign in (throttled?)"
    return client


@pytest.fixture(scope="module")
def admin_api(portal_app: Callable[[str | None], TestClient]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An API client with an administrator's token."""
    client = portal_app(None)
    yield client, _fhir_headers(_token(client, "demo-admin"))


@pytest.fixture(scope="module")
def doctor(admin_api: tuple[TestClient, dict[str, str]]) -> dict[str, str]:
    """The demo doctor's API headers (one token for the module: sign-ins are throttled)."""
    return _fhir_headers(_token(admin_api[0], "demo-doctor"))


@pytest.fixture(scope="module")
def doctor_org(admin_api: tuple[TestClient, dict[str, str]], portal_site: PortalSite) -> tuple[str, str]:
    """The demo doctor's institution (where the demo resident had a visit): its Organization id and name."""
    client, admin = admin_api
    code = portal_site.accounts["demo-doctor"].scope.split()[-1]
    org = client.get(f"/fhir/Organization/org-{code}", headers=admin)
    assert org.status_code == 200, org.text
    return f"org-{code}", str(org.json()["name"])


@pytest.fixture(scope="module")
def a_document(admin_api: tuple[TestClient, dict[str, str]], portal_site: PortalSite) -> dict[str, str]:
    """A CDA document of the demo resident (copied from another resident's, with its own Binary), and the
    id of another resident's document."""
    client, admin = admin_api
    found = client.get("/fhir/DocumentReference?_count=1&status=current", headers=admin).json()
    other = found["entry"][0]["resource"]
    binary_id = other["content"][0]["attachment"]["url"].rpartition("Binary/")[2]
    binary = client.get(f"/fhir/Binary/{binary_id}", headers=admin).json()
    doc_id, new_binary = str(uuid.uuid4()), str(uuid.uuid4())
    made = client.put(
        f"/fhir/Binary/{new_binary}",
        json={
            "resourceType": "Binary",
            "id": new_binary,
            "contentType": "text/xml",
            "securityContext": {"reference": f"DocumentReference/{doc_id}"},
            "data": binary.get("data") or base64.b64encode(CDA.encode()).decode(),
        },
        headers=admin,
    )
    assert made.status_code in (200, 201), made.text
    mine = {k: v for k, v in other.items() if k not in ("meta", "id", "identifier", "masterIdentifier")}
    mine |= {"id": doc_id, "subject": {"reference": f"Patient/{portal_site.resident_patient}"}}
    mine["context"] = {k: v for k, v in (other.get("context") or {}).items() if k != "sourcePatientInfo"}
    mine["content"] = [
        {
            **other["content"][0],
            "attachment": {**other["content"][0]["attachment"], "url": f"Binary/{new_binary}"},
        }
    ]
    made = client.put(f"/fhir/DocumentReference/{doc_id}", json=mine, headers=admin)
    assert made.status_code in (200, 201), made.text
    return {"mine": doc_id, "title": str(other["type"].get("text") or ""), "other": str(other["id"])}


def test_the_resident_sees_their_record_and_documents(
    resident: TestClient, a_document: dict[str, str], doctor_org: tuple[str, str]
) -> None:
    page = resident.get("/portal/me")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'id="summary"' in html and 'id="documents"' in html and 'id="timeline"' in html
    assert 'id="vitals"' in html and 'id="labs"' in html
    assert doctor_org[1] in html  # their visits there, by the institution's name
    link = f"/portal/me/document/{a_document['mine']}"
    assert f'class="document" href="{link}' in html
    doc = resident.get(link)
    assert doc.status_code == 200, doc.text
    assert 'class="cda"' in doc.text and a_document["title"] in doc.text


def test_another_residents_document_is_refused(resident: TestClient, a_document: dict[str, str]) -> None:
    refused = resident.get(f"/portal/me/document/{a_document['other']}")
    assert refused.status_code == 403
    assert "无权访问" in refused.text and 'class="cda"' not in refused.text


def test_another_patient_is_not_chosen(resident: TestClient) -> None:
    assert resident.get("/portal/me?patient=someone-else").status_code == 403


@pytest.mark.parametrize("username", ["demo-doctor", "demo-admin", "demo-cdc"])
def test_other_roles_have_no_resident_pages(
    portal_app: Callable[[str | None], TestClient], username: str
) -> None:
    client = portal_app(username)
    assert client.cookies.get("rhip_at"), f"{username} could not sign in (throttled?)"
    for path in ("/portal/me", "/portal/me/viewers", "/portal/me/consent"):
        assert client.get(path).status_code == 403, path


def test_a_visitor_is_sent_to_sign_in(portal_app: Callable[[str | None], TestClient]) -> None:
    response = portal_app(None).get("/portal/me/consent", follow_redirects=False)
    assert response.status_code == 303 and "/portal/signin" in response.headers["location"]


def _viewers(resident: TestClient, wanted: Callable[[str], bool], wait_s: float = 5.0) -> str:
    """The viewers table, polled until ``wanted`` (the audit trail writes reads in batches)."""
    deadline = time.monotonic() + wait_s
    while True:
        page = resident.get("/portal/me/viewers")
        assert page.status_code == 200, page.text
        table = _table(page.text, "viewers")
        if wanted(table) or time.monotonic() > deadline:
            return str(page.text)
        time.sleep(0.2)


def test_who_viewed_my_record_lists_the_doctor(
    resident: TestClient,
    portal_app: Callable[[str | None], TestClient],
    portal_site: PortalSite,
    doctor_org: tuple[str, str],
    doctor: dict[str, str],
    admin_api: tuple[TestClient, dict[str, str]],
) -> None:
    doctor_client = admin_api[0]
    pid = portal_site.resident_patient
    read = doctor_client.get(f"/fhir/Encounter?patient={pid}&_count=5", headers=doctor)
    assert read.status_code == 200 and read.json().get("entry")
    resident.get("/portal/me")  # the resident's own reads are not listed
    html = _viewers(resident, lambda table: "demo-doctor" in table)
    table = _table(html, "viewers")
    assert "demo-doctor" in table
    assert doctor_org[1] in table  # the doctor's institution by name
    assert "诊疗" in table and "查询" in table  # purpose and what was done
    assert "demo-resident" not in table
    assert "Encounter" in table
    assert "testclient" not in html and "127.0.0.1" not in html  # never the callers' addresses


def _save_consent(
    resident: TestClient, categories: list[str], institutions: list[str], csrf: str | None = None
) -> Any:
    data: dict[str, Any] = {"csrf": _csrf(resident) if csrf is None else csrf}
    if categories:
        data["deny_category"] = categories
    if institutions:
        data["deny_institution"] = institutions
    return resident.post("/portal/me/consent", data=data, follow_redirects=False)


def test_saving_consent_needs_the_csrf_token(resident: TestClient) -> None:
    resident.get("/portal/me/consent")
    assert _save_consent(resident, ["PSY"], [], csrf="forged").status_code == 403


def test_consent_denying_a_category_is_enforced(
    resident: TestClient,
    portal_app: Callable[[str | None], TestClient],
    admin_api: tuple[TestClient, dict[str, str]],
    portal_site: PortalSite,
    doctor_org: tuple[str, str],
    doctor: dict[str, str],
) -> None:
    pid = portal_site.resident_patient
    api, admin = admin_api
    condition = {
        "resourceType": "Condition",
        "clinicalStatus": {
            "coding": [
                {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
            ]
        },
        "code": {"coding": [{"system": ICD10, "code": "F32.9", "display": "抑郁发作"}], "text": "抑郁发作"},
        "subject": {"reference": f"Patient/{pid}"},
        "recordedDate": "2026-06-01",
    }
    made = api.post("/fhir/Condition", json=condition, headers=admin)
    assert made.status_code == 201, made.text
    path = f"/fhir/Condition/{made.json()['id']}"
    assert api.get(path, headers=doctor).status_code == 200

    form = resident.get("/portal/me/consent")
    assert form.status_code == 200
    html = form.text
    assert 'id="consent-form"' in html and 'id="consent-save"' in html
    assert "<fieldset>" in html and "<legend>" in html
    assert 'name="deny_category" value="PSY"' in html and "精神卫生" in html
    assert doctor_org[1] in html  # an institution holding the resident's data, by name
    try:
        saved = _save_consent(resident, ["PSY"], [])
        assert saved.status_code == 303
        shown = resident.get(saved.headers["location"])
        assert 'id="consent-saved"' in shown.text
        assert re.search(r'value="PSY"[^>]*checked', shown.text)
        stored = api.get(f"/fhir/Consent?patient={pid}&status=active", headers=admin).json()["entry"]
        [consent] = [e["resource"] for e in stored]
        [rule] = rules_of(consent)
        assert rule.effect == "deny" and rule.labels == {"PSY"} and not rule.organizations
        # The security layer enforces it: the doctor no longer sees the mental-health Condition ...
        assert api.get(path, headers=doctor).status_code == 403
        assert api.get(f"/fhir/Encounter?patient={pid}&_count=1", headers=doctor).status_code == 200
        # ... unless they break the glass, which the resident sees, prominently.
        glass = {**doctor, "X-Rhip-Break-Glass": "%E6%80%A5%E8%AF%8A%E6%8A%A2%E6%95%91"}
        assert api.get(path, headers=glass).status_code == 200
        html = _viewers(resident, lambda table: "紧急授权" in table)
        assert "紧急授权（破窗）" in _table(html, "viewers") and 'class="notice"' in html
        assert "急诊抢救" in _table(html, "viewers")
        # Saving again updates the same Consent.
        assert _save_consent(resident, [], []).status_code == 303
        again = api.get(f"/fhir/Consent?patient={pid}&status=active", headers=admin).json()["entry"]
        assert [e["resource"]["id"] for e in again] == [consent["id"]]
        assert rules_of(again[0]["resource"]) == []
        assert api.get(path, headers=doctor).status_code == 200
    finally:
        _save_consent(resident, [], [])
        api.delete(path, headers=admin)


def test_consent_denying_an_institution_is_enforced(
    resident: TestClient,
    admin_api: tuple[TestClient, dict[str, str]],
    portal_site: PortalSite,
    doctor_org: tuple[str, str],
    doctor: dict[str, str],
) -> None:
    pid = portal_site.resident_patient
    api, admin = admin_api
    org = doctor_org[0]
    html = resident.get("/portal/me/consent").text
    values = re.findall(r'name="deny_institution" value="([^"]+)"', html)
    assert org in values, values  # the doctor's institution holds the resident's visits
    target = org
    try:
        assert _save_consent(resident, [], [target]).status_code == 303
        shown = resident.get("/portal/me/consent").text
        assert re.search(rf'value="{re.escape(target)}"[^>]*checked', shown)
        stored = api.get(f"/fhir/Consent?patient={pid}&status=active", headers=admin).json()["entry"]
        [rule] = rules_of(stored[0]["resource"])
        assert rule.effect == "deny" and rule.organizations == {target} and not rule.labels
        # The doctor's institution no longer sees the record, despite the visits there.
        refused = api.get(f"/fhir/Encounter?patient={pid}&_count=1", headers=doctor)
        assert refused.status_code == 403
    finally:
        _save_consent(resident, [], [])
    assert api.get(f"/fhir/Encounter?patient={pid}&_count=1", headers=doctor).status_code == 200


def test_pages_speak_english(resident: TestClient) -> None:
    try:
        resident.get("/portal/lang?to=en&next=/portal/me/consent")
        page = resident.get("/portal/me/consent")
        assert page.status_code == 200
        assert "Do not share these categories" in page.text and "Mental health" in page.text
    finally:
        resident.get("/portal/lang?to=zh-CN&next=/portal/me")
    assert "不共享以下类别的信息" in resident.get("/portal/me/consent").text


def test_a_parent_picks_whose_record(
    portal_app: Callable[[str | None], TestClient],
    admin_api: tuple[TestClient, dict[str, str]],
    portal_site: PortalSite,
) -> None:
    api, admin = admin_api
    own = portal_site.resident_patient
    found = api.get("/fhir/Patient?_count=5&_elements=id,name", headers=admin).json()["entry"]
    child = next(e["resource"] for e in found if e["resource"]["id"] != own)
    username, password = "h2-parent", "h2-parent-Pw!2026"
    added = subprocess.run(
        [sys.executable, "-m", "rhip.cli.main", "users", "add", "--username", username, "--role", "resident",
         "--patient", own, "--patient", child["id"], "--password-stdin"],
        input=password, env=portal_site.env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert added.returncode == 0 or "exists" in added.stdout + added.stderr, added.stdout + added.stderr
    client = portal_app(None)
    sign_in(client, username, password)
    assert client.cookies.get("rhip_at"), "the parent could not sign in (throttled?)"
    page = client.get("/portal/me")
    assert page.status_code == 200 and 'id="pick-patient"' in page.text
    assert f'value="{child["id"]}"' in page.text and f'value="{own}" selected' in page.text
    theirs = client.get(f"/portal/me?patient={child['id']}")
    assert theirs.status_code == 200
    name = child["name"][0].get("text") or ""
    assert name and name in theirs.text
    assert re.search(rf'value="{child["id"]}"\s+selected', theirs.text)
    assert client.get(f"/portal/me/consent?patient={child['id']}").status_code == 200
    assert client.get(f"/portal/me/viewers?patient={child['id']}").status_code == 200
    assert client.get("/portal/me?patient=not-mine").status_code == 403
