"""Residents' consent, confidentiality labels and break-the-glass, end to end through the FHIR door."""

from __future__ import annotations

from urllib.parse import quote

import orjson

from rhip.bootstrap.container import Platform

from .matrix_support import Accounts, Region, bearer, client_for, ids_of

GLASS = {"X-Rhip-Break-Glass": quote("急诊抢救，患者昏迷")}


def _consent(patient: str, provision: dict) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Consent",
            "status": "active",
            "scope": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                        "code": "patient-privacy",
                    }
                ]
            },
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": f"Patient/{patient}"},
            "policyRule": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]
            },
            "provision": provision,
        }
    )


def _post(client: object, path: str, body: bytes, token: str) -> object:
    headers = {**bearer(token), "Content-Type": "application/fhir+json"}
    return client.post(path, content=body, headers=headers)  # type: ignore[attr-defined]


def _resident(accounts: Accounts, kind: str, patient: str) -> str:
    username = f"resident-{kind}-2"
    if accounts.identity.accounts.get_user(username) is None:
        accounts.identity.accounts.add_user(username, "resident-password", "resident", patients=[patient])
    return accounts.identity.issue_token(username=username)


def test_category_consent_hides_mental_health_until_the_glass_is_broken(
    secured: tuple[Platform, Region, Accounts],
) -> None:
    platform, region, accounts = secured
    doctor = bearer(accounts.tokens["clinician"])
    related = region.patients["related"]
    condition = f"/fhir/Condition/{region.conditions['related']}"
    with client_for(platform) as client:
        stored = orjson.loads(client.get(condition, headers=doctor).content)
        assert {"code": "PSY"}.items() <= next(iter(stored["meta"]["security"])).items()  # labelled on write
        resident = _resident(accounts, "related", related)
        made = _post(
            client,
            "/fhir/Consent",
            _consent(
                related,
                {
                    "type": "permit",
                    "provision": [
                        {
                            "type": "deny",
                            "securityLabel": [
                                {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}
                            ],
                        }
                    ],
                },
            ),
            resident,
        )
        assert made.status_code == 201, made.text  # type: ignore[attr-defined]
        assert client.get(condition, headers=doctor).status_code == 403
        found = client.get(f"/fhir/Condition?patient={related}", headers=doctor)
        assert found.status_code == 200 and ids_of(found.content) == set()
        counted = client.get(f"/fhir/Condition?patient={related}&_summary=count", headers=doctor)
        assert orjson.loads(counted.content)["total"] == 0
        # Other data of the same resident is still shared.
        assert (
            client.get(f"/fhir/Observation/{region.observations['related']}", headers=doctor).status_code
            == 200
        )
        # The resident still sees their own record.
        assert client.get(condition, headers=bearer(resident)).status_code == 200
        # Breaking the glass, with a reason, opens it: audited with purpose ETREAT, and an alert is raised.
        alerts_before = len(platform.security.guard.alerts.sent)  # type: ignore[union-attr]
        assert client.get(condition, headers={**doctor, **GLASS}).status_code == 200
        assert len(platform.security.guard.alerts.sent) == alerts_before + 1  # type: ignore[union-attr]
        platform.security.audit.flush()  # type: ignore[union-attr]
        with platform.db.read() as conn:
            purpose = conn.exec_driver_sql(
                "SELECT purpose, outcome FROM audit_log WHERE subject = 'user:doctor-a' ORDER BY seq DESC LIMIT 1"
            ).one()
        assert tuple(purpose) == ("ETREAT", "0")


def test_glass_is_for_clinicians_and_needs_a_reason(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    path = f"/fhir/Observation/{region.observations['other']}"
    with client_for(platform) as client:
        assert client.get(path, headers=bearer(accounts.tokens["clinician"])).status_code == 403
        assert client.get(path, headers={**bearer(accounts.tokens["clinician"]), **GLASS}).status_code == 200
        assert client.get(path, headers={**bearer(accounts.tokens["system"]), **GLASS}).status_code == 403
        short = client.get(path, headers={**bearer(accounts.tokens["clinician"]), "X-Rhip-Break-Glass": "x"})
        assert short.status_code == 400


def test_withdrawal_and_permission_by_institution(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    doctor = bearer(accounts.tokens["clinician"])
    other, related = region.patients["other"], region.patients["related"]
    with client_for(platform) as client:
        # "other" lets institution A see the record without a visit there.
        assert (
            client.get(f"/fhir/Observation/{region.observations['other']}", headers=doctor).status_code == 403
        )
        permit = _consent(
            other,
            {
                "type": "permit",
                "provision": [
                    {
                        "type": "permit",
                        "actor": [
                            {
                                "role": {"text": "recipient"},
                                "reference": {"reference": "Organization/org-A01"},
                            }
                        ],
                    }
                ],
            },
        )
        assert _post(client, "/fhir/Consent", permit, _resident(accounts, "other", other)).status_code == 201  # type: ignore[attr-defined]
        assert (
            client.get(f"/fhir/Observation/{region.observations['other']}", headers=doctor).status_code == 200
        )
        # "related" withdraws the record from institution A altogether, despite the visit.
        withdraw = _consent(
            related,
            {
                "type": "deny",
                "actor": [
                    {"role": {"text": "recipient"}, "reference": {"reference": "Organization/org-A01"}}
                ],
            },
        )
        assert (
            _post(client, "/fhir/Consent", withdraw, _resident(accounts, "related", related)).status_code
            == 201
        )  # type: ignore[attr-defined]
        assert (
            client.get(f"/fhir/Observation/{region.observations['related']}", headers=doctor).status_code
            == 403
        )
        assert client.get(f"/fhir/Observation?patient={related}", headers=doctor).status_code == 403
        population = ids_of(
            client.get("/fhir/Observation?code=http://loinc.org|8480-6", headers=doctor).content
        )
        assert f"Observation/{region.observations['related']}" not in population


def test_a_resident_records_consent_only_for_themselves(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    with client_for(platform) as client:
        body = _consent(region.patients["other"], {"type": "deny"})
        response = _post(client, "/fhir/Consent", body, accounts.tokens["resident"])
        assert response.status_code == 403  # type: ignore[attr-defined]


def test_confidential_documents_stay_with_their_source(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    related = region.patients["related"]
    confidential = {
        "resourceType": "Observation",
        "meta": {
            "source": "urn:rhip:source:v2:B01",
            "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}],
        },
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{related}"},
    }
    with client_for(platform) as client:
        made = _post(client, "/fhir/Observation", orjson.dumps(confidential), accounts.tokens["admin"])
        oid = orjson.loads(made.content)["id"]  # type: ignore[attr-defined]
        doctor = bearer(accounts.tokens["clinician"])
        assert client.get(f"/fhir/Observation/{oid}", headers=doctor).status_code == 403
        listed = ids_of(client.get("/fhir/Observation?code=http://loinc.org|29463-7", headers=doctor).content)
        assert f"Observation/{oid}" not in listed
        assert client.get(f"/fhir/Observation/{oid}", headers={**doctor, **GLASS}).status_code == 200


def test_residents_see_who_viewed_their_record(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    own = region.patients["own"]
    with client_for(platform) as client:
        assert (
            client.get(
                f"/fhir/Observation/{region.observations['own']}",
                headers=bearer(accounts.tokens["clinician"]),
            ).status_code
            == 200
        )
        platform.security.audit.flush()  # type: ignore[union-attr]
        found = client.get(f"/fhir/AuditEvent?patient={own}", headers=bearer(accounts.tokens["resident"]))
        assert found.status_code == 200, found.text
        events = [e["resource"] for e in orjson.loads(found.content)["entry"]]
        whos = {a["who"]["identifier"]["value"] for e in events for a in e["agent"] if a.get("requestor")}
        assert "user:doctor-a" in whos
        # Nobody else's: a resident's audit search is limited to their own record.
        other = client.get(
            f"/fhir/AuditEvent?patient={region.patients['other']}",
            headers=bearer(accounts.tokens["resident"]),
        )
        assert other.status_code == 200 and not orjson.loads(other.content).get("entry")
        assert client.get("/fhir/AuditEvent", headers=bearer(accounts.tokens["clinician"])).status_code == 403
        assert (
            client.delete(
                f"/fhir/AuditEvent/{events[0]['id']}", headers=bearer(accounts.tokens["admin"])
            ).status_code
            == 403
        )
