"""The authorization matrix: every role × every door × own / related / other resident, through the real
application (bearer tokens, the FHIR door), asserting allow or deny; each access leaves its audit entry.

Seen from institution A01 (docs/security.md, "Who sees what"): ``own`` is a record A holds, ``related`` a
record B holds of a resident with a recent visit at A, ``other`` a record B holds of a stranger to A.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from rhip.bootstrap.container import Platform

from .matrix_support import PATIENTS, ROLES, Accounts, Region, bearer, client_for

A, D = "allow", "deny"
# role -> (own, related, other) for reading a resident's data.
READ = {
    "admin": (A, A, A),
    "system": (A, A, D),
    "clinician": (A, A, D),
    "public-health": (A, A, D),
    "statistician": (D, D, D),
    "resident": (A, D, D),
}
# A count of one named resident's data singles them out: statisticians count populations only
# (tests/security/test_search_leakage.py), never a named resident.
COUNT = READ
# Changing the resident's Observation: only the institution that sent it (and administrators).
WRITE = {
    "admin": (A, A, A),
    "system": (A, D, D),
    "clinician": (A, D, D),
    "public-health": (D, D, D),
    "statistician": (D, D, D),
    "resident": (D, D, D),
}

Door = Callable[[TestClient, Region, str, dict[str, str]], Any]


def _read(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Observation/{r.observations[kind]}", headers=h)


def _search(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Observation?patient={r.patients[kind]}", headers=h)


def _count(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Observation?patient={r.patients[kind]}&_summary=count", headers=h)


def _revinclude(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Patient?_id={r.patients[kind]}&_revinclude=Observation:subject", headers=h)


def _everything(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Patient/{r.patients[kind]}/$everything", headers=h)


def _history(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Observation/{r.observations[kind]}/_history", headers=h)


def _document(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    return c.get(f"/fhir/Binary/{r.documents[kind]}", headers={**h, "Accept": "text/plain"})


def _write(c: TestClient, r: Region, kind: str, h: dict[str, str]) -> Any:
    path = f"/fhir/Observation/{r.observations[kind]}"
    current = orjson.loads(c.get(path, headers=bearer_of_admin(c)).content)
    current.pop("meta", None)
    current["meta"] = {"source": _source_of(kind)}
    current["status"] = "amended"
    return c.put(path, content=orjson.dumps(current), headers={**h, "Content-Type": "application/fhir+json"})


def _source_of(kind: str) -> str:
    return "urn:rhip:source:v2:A01" if kind == "own" else "urn:rhip:source:v2:B01"


_ADMIN: dict[str, str] = {}


def bearer_of_admin(_c: TestClient) -> dict[str, str]:
    return _ADMIN


DOORS: dict[str, tuple[Door, dict[str, tuple[str, str, str]]]] = {
    "read": (_read, READ),
    "search": (_search, READ),
    "count": (_count, COUNT),
    "revinclude": (_revinclude, READ),
    "everything": (_everything, READ),
    "history": (_history, READ),
    "document": (_document, READ),
    "write": (_write, WRITE),
}


def _audit_entries(platform: Platform, after: int) -> list[tuple[str, str, int]]:
    assert platform.security is not None
    platform.security.audit.flush()
    with platform.db.read() as conn:
        rows = conn.exec_driver_sql(
            f"SELECT subject, outcome, seq FROM audit_log WHERE seq > {int(after)} ORDER BY seq"
        ).all()
    return [(str(s), str(o), int(q)) for s, o, q in rows]


def _last_seq(platform: Platform) -> int:
    entries = _audit_entries(platform, -1)
    return entries[-1][2] if entries else 0


SUBJECTS = {
    "admin": "user:admin1",
    "system": "client:his-a01",
    "clinician": "user:doctor-a",
    "public-health": "user:cdc-510703",
    "statistician": "user:stats1",
    "resident": "user:resident-own",
}


@pytest.mark.parametrize("door", sorted(DOORS))
@pytest.mark.parametrize("role", ROLES)
def test_matrix(secured: tuple[Platform, Region, Accounts], role: str, door: str) -> None:
    platform, region, accounts = secured
    call, table = DOORS[door]
    _ADMIN.update(bearer(accounts.tokens["admin"]))
    with client_for(platform) as client:
        for kind, expected in zip(PATIENTS, table[role], strict=True):
            before = _last_seq(platform)
            response = call(client, region, kind, bearer(accounts.tokens[role]))
            where = f"{role} {door} {kind}: {response.status_code} {response.text[:300]}"
            if expected == A:
                assert response.status_code in (200, 201), where
            else:
                assert response.status_code == 403, where
                outcome = orjson.loads(response.content)
                assert outcome["resourceType"] == "OperationOutcome", where
                assert "RHIP-SEC-0002" in response.text, where
            # Audit completeness: the access (allowed or refused) is in the log, as this caller.
            entries = [e for e in _audit_entries(platform, before) if e[0] == SUBJECTS[role]]
            assert entries, f"no audit entry for {where}"
            wanted = "0" if expected == A else "4"
            assert any(outcome == wanted for _, outcome, _ in entries), f"{where}: audit {entries}"
