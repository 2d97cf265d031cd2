"""A small region behind the security layer, its accounts and tokens: what the matrix and leakage tests use.

Two institutions in two districts: A01 (org-A01, district 510703) and B01 (org-B01, district 510704).
Three residents, seen from institution A:
- ``own``: a record A holds (its data came from A);
- ``related``: a record B holds, with a recent visit at A (a care relationship) and a mental-health diagnosis;
- ``other``: a record B holds, never seen at A.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from starlette.testclient import TestClient

from rhip.bootstrap.container import Platform
from rhip.bootstrap.security import identity_config
from rhip.bootstrap.settings import SecuritySettings, Settings
from rhip.security.context import acting_as
from rhip.security.identity.config import PasswordPolicy
from rhip.security.identity.service import IdentityService
from rhip.security.principal import platform_principal
from rhip.web.app import create_app

ICD10 = "urn:oid:2.16.156.10011.2.3.3.11"
INSTITUTION = "urn:oid:2.16.156.10011.1.5"
PATIENTS = ("own", "related", "other")
ROLES = ("admin", "system", "clinician", "public-health", "statistician", "resident")
FAST = PasswordPolicy(time_cost=1, memory_kib=8, parallelism=1, min_length=8)


def secured_settings(settings: Settings, keys_dir: str) -> Settings:
    """The test settings with the security layer on (audit flushed by hand, no rate limit in the way)."""
    security = SecuritySettings(enabled=True, keys_dir=keys_dir, rate_per_second=100_000, rate_burst=100_000)
    return replace_settings(settings, security=security)


def replace_settings(settings: Settings, **changes: Any) -> Settings:
    """A copy of pydantic settings with some fields changed."""
    return settings.model_copy(update=changes)


@dataclass
class Region:
    """Ids of what the region holds, by patient kind."""

    patients: dict[str, str] = field(default_factory=dict)
    observations: dict[str, str] = field(default_factory=dict)
    documents: dict[str, str] = field(default_factory=dict)  # Binary ids
    conditions: dict[str, str] = field(default_factory=dict)


def _org(code: str, division: str) -> dict[str, Any]:
    return {
        "resourceType": "Organization",
        "id": f"org-{code}",
        "identifier": [{"system": INSTITUTION, "value": code}],
        "name": f"医院{code}",
        "address": [{"extension": [{"url": "urn:rhip:ext:division", "valueCode": division}]}],
    }


def _source(code: str, channel: str = "v2") -> dict[str, Any]:
    return {"source": f"urn:rhip:source:{channel}:{code}"}


def build_region(platform: Platform) -> Region:
    """Store the region through the platform's own repository, as the platform."""
    region = Region()
    repo = platform.repository
    recent = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%d")
    with acting_as(platform_principal("test-setup")):
        repo.create(_org("A01", "510703001"), id="org-A01")
        repo.create(_org("B01", "510704002"), id="org-B01")
        holders = {"own": "A01", "related": "B01", "other": "B01"}
        for kind, code in holders.items():
            patient = repo.create(
                {
                    "resourceType": "Patient",
                    "meta": _source(code),
                    "name": [{"text": f"测试{kind}"}],
                    "gender": "female",
                    "birthDate": "1980-01-01",
                    "managingOrganization": {"reference": f"Organization/org-{code}"},
                }
            )
            pid = patient.id
            region.patients[kind] = pid
            obs = repo.create(
                {
                    "resourceType": "Observation",
                    "meta": _source(code),
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "subject": {"reference": f"Patient/{pid}"},
                    "effectiveDateTime": recent,
                    "valueQuantity": {"value": 120, "unit": "mm[Hg]"},
                }
            )
            region.observations[kind] = obs.id
            doc = repo.create(
                {
                    "resourceType": "DocumentReference",
                    "meta": _source(code, "cda"),
                    "status": "current",
                    "subject": {"reference": f"Patient/{pid}"},
                    "content": [{"attachment": {"contentType": "text/plain"}}],
                }
            )
            binary = repo.create(
                {
                    "resourceType": "Binary",
                    "meta": _source(code, "cda"),
                    "contentType": "text/plain",
                    "securityContext": {"reference": f"DocumentReference/{doc.id}"},
                    "data": "aGVsbG8=",
                }
            )
            region.documents[kind] = binary.id
        repo.create(
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                "subject": {"reference": f"Patient/{region.patients['related']}"},
                "serviceProvider": {"reference": "Organization/org-A01"},
                "period": {"start": recent, "end": recent},
            }
        )
        condition = repo.create(
            {
                "resourceType": "Condition",
                "meta": _source("B01"),
                "subject": {"reference": f"Patient/{region.patients['related']}"},
                "code": {"coding": [{"system": ICD10, "code": "F32.900"}]},
            }
        )
        region.conditions["related"] = condition.id
    return region


@dataclass
class Accounts:
    """A token per role (and the identity service that issued them)."""

    identity: IdentityService
    tokens: dict[str, str]


def make_accounts(platform: Platform, region: Region) -> Accounts:
    """One account per role, and a token for each."""
    assert platform.security is not None
    identity = platform.security.identity
    accounts = identity.accounts
    password = "matrix-password-1"
    accounts.add_user("admin1", password, "admin")
    accounts.add_user("doctor-a", password, "clinician", institution="A01", organization="org-A01")
    accounts.add_user("cdc-510703", password, "public-health", district="510703")
    accounts.add_user("stats1", password, "statistician")
    accounts.add_user("resident-own", password, "resident", patients=[region.patients["own"]])
    accounts.add_client(
        "his-a01", scopes="system/*.cruds", role="system", institution="A01", cert_sha256="ab" * 32
    )
    tokens = {
        "admin": identity.issue_token(username="admin1"),
        "system": identity.issue_token(client_id="his-a01"),
        "clinician": identity.issue_token(username="doctor-a"),
        "public-health": identity.issue_token(username="cdc-510703"),
        "statistician": identity.issue_token(username="stats1"),
        "resident": identity.issue_token(username="resident-own"),
    }
    return Accounts(identity, tokens)


def other_identity(platform: Platform, **config: Any) -> IdentityService:
    """An identity service on the same keys and database with another configuration (audience, clock)."""
    clock = config.pop("clock", time.time)
    base = identity_config(platform.settings)
    return IdentityService(platform.db, replace(base, **config), clock=clock)


@contextmanager
def client_for(platform: Platform) -> Iterator[TestClient]:
    """The real application over the platform (no MLLP listener)."""
    app = create_app(platform.settings, platform)
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        yield client


def bearer(token: str, **extra: str) -> dict[str, str]:
    """Request headers carrying a bearer token."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json", **extra}


def ids_of(body: bytes) -> set[str]:
    """``Type/id`` of every entry of a searchset Bundle."""
    bundle = orjson.loads(body)
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle.get("entry", [])}
