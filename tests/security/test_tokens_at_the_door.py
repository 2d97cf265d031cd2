"""Bearer tokens at the FHIR door: missing, forged, expired, revoked, for another audience, narrowed scopes."""

from __future__ import annotations

import time

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec

from rhip.bootstrap.container import Platform

from .matrix_support import Accounts, Region, bearer, client_for, other_identity


def _refused(response: object, code: str = "RHIP-SEC-0001", status: int = 401) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = orjson.loads(response.content)  # type: ignore[attr-defined]
    assert body["resourceType"] == "OperationOutcome"
    assert code in response.text  # type: ignore[attr-defined]


def test_no_token_is_401_with_a_challenge(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, _ = secured
    with client_for(platform) as client:
        response = client.get(f"/fhir/Patient/{region.patients['own']}")
        _refused(response)
        assert response.headers["www-authenticate"].startswith("Bearer")
        # The CapabilityStatement and the SMART discovery document are public.
        assert client.get("/fhir/metadata").status_code == 200
        assert client.get("/fhir/.well-known/smart-configuration").status_code == 200


def test_forged_tokens(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    real = accounts.tokens["admin"]
    claims = jwt.decode(real, options={"verify_signature": False})
    stranger = ec.generate_private_key(ec.SECP256R1())
    header = jwt.get_unverified_header(real)
    forged = jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": header["kid"]})
    unsigned = jwt.encode(claims, None, algorithm="none")  # type: ignore[arg-type]
    tampered = real.rsplit(".", 2)
    payload = jwt.utils.base64url_encode(
        orjson.dumps({**claims, "rhip_role": "admin", "sub": "user:mallory"})
    )
    spliced = f"{tampered[0]}.{payload.decode()}.{tampered[2]}"
    with client_for(platform) as client:
        for token in (forged, unsigned, spliced, "not-a-jwt", real[:-4] + "AAAA"):
            _refused(client.get(f"/fhir/Patient/{region.patients['own']}", headers=bearer(token)))


def test_expired_and_foreign_audience_tokens(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, _ = secured
    past = other_identity(platform, clock=lambda: time.time() - 7200)
    expired = past.issue_token(username="admin1", minutes=15)
    elsewhere = other_identity(platform, audiences=("https://other-platform.example/fhir",))
    foreign = elsewhere.issue_token(username="admin1")
    with client_for(platform) as client:
        _refused(client.get(f"/fhir/Patient/{region.patients['own']}", headers=bearer(expired)))
        _refused(client.get(f"/fhir/Patient/{region.patients['own']}", headers=bearer(foreign)))


def test_revoked_token(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    token = accounts.identity.issue_token(username="doctor-a")
    with client_for(platform) as client:
        path = f"/fhir/Observation/{region.observations['own']}"
        assert client.get(path, headers=bearer(token)).status_code == 200
        assert client.post("/auth/revoke", data={"token": token}).status_code == 200
        _refused(client.get(path, headers=bearer(token)))


def test_scope_escalation_is_cut_to_the_token(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    narrow = accounts.identity.issue_token(username="doctor-a", scopes="user/Patient.rs")
    with client_for(platform) as client:
        headers = bearer(narrow)
        assert client.get(f"/fhir/Patient/{region.patients['own']}", headers=headers).status_code == 200
        _refused(
            client.get(f"/fhir/Observation/{region.observations['own']}", headers=headers),
            "RHIP-SEC-0002",
            403,
        )
        _refused(
            client.get(f"/fhir/Observation?patient={region.patients['own']}", headers=headers),
            "RHIP-SEC-0002",
            403,
        )
    # A resident asking for more than its role allows gets no more than the role's maximum.
    resident = accounts.identity.issue_token(username="resident-own", scopes="patient/*.rs")
    with client_for(platform) as client:
        response = client.delete(f"/fhir/Observation/{region.observations['own']}", headers=bearer(resident))
        _refused(response, "RHIP-SEC-0002", 403)


def test_disabled_account_loses_access(secured: tuple[Platform, Region, Accounts]) -> None:
    platform, region, accounts = secured
    accounts.identity.accounts.add_user("temp-doctor", "temp-password-1", "clinician", institution="A01")
    token = accounts.identity.issue_token(username="temp-doctor")
    accounts.identity.accounts.set_user_disabled("temp-doctor", True)
    accounts.identity.authenticator.forget()
    with client_for(platform) as client:
        _refused(client.get(f"/fhir/Observation/{region.observations['own']}", headers=bearer(token)))
