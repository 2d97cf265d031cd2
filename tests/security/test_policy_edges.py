"""Edges a reviewer found: self-granted consent, counts that single someone out, Binary contexts,
history after a relabel, and the resident index's operations for district-scoped officers."""

from __future__ import annotations

import orjson

from rhip.bootstrap.container import Platform

from .matrix_support import Accounts, Region, bearer, client_for

PRIVACY = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
}
OPTIN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]}


def _post(client: object, path: str, resource: dict, token: str) -> object:
    headers = {**bearer(token), "Content-Type": "application/fhir+json"}
    return client.post(path, content=orjson.dumps(resource), headers=headers)  # type: ignore[attr-defined]


def test_an_institution_cannot_grant_itself_a_residents_consent(
    secured: tuple[Platform, Region, Accounts],
) -> None:
    platform, region, accounts = secured
    consent = {
        "resourceType": "Consent",
        "status": "active",
        "scope": PRIVACY,
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{region.patients['other']}"},
        "policyRule": OPTIN,
        "provision": {
            "type": "permit",
            "actor": [{"role": {"text": "recipient"}, "reference": {"reference": "Organization/org-A01"}}],
        },
    }
    with client_for(platform) as client:
        for role in ("clinician", "system"):
            refused = _post(client, "/fhir/Consent", consent, accounts.tokens[role])
            assert refused.status_code == 403, role  # type: ignore[attr-defined]
        path = f"/fhir/Observation/{region.observations['other']}"
        assert client.get(path, headers=bearer(accounts.tokens["clinician"])).status_code == 403


def test_a_statistician_counts_populations_not_people(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    token = accounts.tokens["statistician"]
    with client_for(platform) as client:
        assert (
            client.get("/fhir/Condition?code=F32.900&_summary=count", headers=bearer(token)).status_code
            == 200
        )
        for query in (
            f"subject=Patient/{region.patients['related']}&_summary=count",
            "subject:Patient.name=测试related&_summary=count",
            f"_id={region.conditions['related']}&_summary=count",
        ):
            assert client.get(f"/fhir/Condition?{query}", headers=bearer(token)).status_code == 403, query


def test_binary_context_never_borrows_the_directory_rule(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    with client_for(platform) as client:
        made = {}
        for name, context in (
            ("patient", f"Patient/{region.patients['other']}"),
            ("org", "Organization/org-B01"),
        ):
            binary = {
                "resourceType": "Binary",
                "meta": {"source": "urn:rhip:source:cda:B01"},
                "contentType": "text/plain",
                "securityContext": {"reference": context},
                "data": "aGVsbG8=",
            }
            answer = _post(client, "/fhir/Binary", binary, accounts.tokens["admin"])
            made[name] = orjson.loads(answer.content)["id"]  # type: ignore[attr-defined]
        json = {"Accept": "application/fhir+json"}
        assert (
            client.get(
                f"/fhir/Binary/{made['patient']}", headers={**bearer(accounts.tokens["clinician"]), **json}
            ).status_code
            == 403
        )
        assert (
            client.get(
                f"/fhir/Binary/{made['org']}", headers={**bearer(accounts.tokens["resident"]), **json}
            ).status_code
            == 403
        )
        assert (
            client.get(
                f"/fhir/Binary/{made['patient']}", headers={**bearer(accounts.tokens["admin"]), **json}
            ).status_code
            == 200
        )


def test_history_follows_the_current_label(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    path = f"/fhir/Observation/{region.observations['related']}"
    admin, doctor = bearer(accounts.tokens["admin"]), bearer(accounts.tokens["clinician"])
    with client_for(platform) as client:
        assert client.get(f"{path}/_history/1", headers=doctor).status_code == 200
        current = orjson.loads(client.get(path, headers=admin).content)
        current["meta"] = {"source": "urn:rhip:source:v2:B01", "security": [{"code": "R"}]}
        assert (
            client.put(
                path,
                content=orjson.dumps(current),
                headers={**admin, "Content-Type": "application/fhir+json"},
            ).status_code
            == 200
        )
        assert client.get(path, headers=doctor).status_code == 403
        assert client.get(f"{path}/_history/1", headers=doctor).status_code == 403


def test_district_officers_do_not_use_the_resident_index_operations(
    secured: tuple[Platform, Region, Accounts],
) -> None:
    platform, region, accounts = secured
    with client_for(platform) as client:
        answer = client.get(
            f"/fhir/Patient/{region.patients['other']}/$empi-master",
            headers=bearer(accounts.tokens["public-health"]),
        )
        assert answer.status_code == 403
