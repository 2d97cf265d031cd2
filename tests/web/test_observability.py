"""Logs without personal data, and one structured access line per request (rhip.web.app).

The application runs in process (Starlette's TestClient) on a temporary SQLite database; its log records
go through rhip's JSON formatter, and nothing a patient could be recognised by may appear in them.
"""

from __future__ import annotations

import io
import json
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest
import sqlalchemy

from rhip.bootstrap.container import Platform
from rhip.bootstrap.logging import JsonFormatter
from rhip.bootstrap.settings import Settings
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.web.app import classify, create_app

with warnings.catch_warnings():  # starlette asks for httpx2, which is not installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

FAMILY, GIVEN = "司徒", "翠花"
ID_NUMBER = "110101199003077777"
PHONE = "13912345678"
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"
SECRETS = (FAMILY, GIVEN, f"{FAMILY}{GIVEN}", ID_NUMBER, PHONE)
FHIR_JSON = "application/fhir+json"
ACCESS_FIELDS = {"method", "route", "status", "error_code", "duration_ms", "resource_type"}


def _patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": ID_SYSTEM, "value": ID_NUMBER}],
        "name": [{"family": FAMILY, "given": [GIVEN], "text": f"{FAMILY}{GIVEN}"}],
        "telecom": [{"system": "phone", "value": PHONE}],
        "gender": "female",
        "birthDate": "1990-03-07",
    }


class Captured:
    """What rhip's JSON formatter wrote while the test ran."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        """Everything written."""
        return self.stream.getvalue()

    def records(self) -> list[dict[str, Any]]:
        """The JSON objects written, one a line."""
        return [json.loads(line) for line in self.text.splitlines() if line.startswith("{")]

    def access(self) -> list[dict[str, Any]]:
        """The access lines."""
        return [r for r in self.records() if r["logger"] == "rhip.access"]


@pytest.fixture
def logs() -> Iterator[Captured]:
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    # The test's own HTTP client logs its URLs (rhip's configure_logging quiets it in the server).
    handler.addFilter(lambda record: not record.name.startswith(("httpx", "httpcore")))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite and JSON logs (tests/conftest.py's ``platform`` is built on these)."""
    return Settings(database_url=f"sqlite:///{tmp_path}/rhip.db", log_format="json")


@pytest.fixture
def client(platform: Platform) -> Iterator[TestClient]:
    with TestClient(create_app(platform=platform), raise_server_exceptions=False) as c:
        yield c


def _assert_nothing_personal(text: str) -> None:
    for secret in SECRETS:
        for form in {secret, quote(secret), quote(secret, safe=""), json.dumps(secret)[1:-1]}:
            assert form not in text, f"{form!r} is in the logs:\n{text}"


def test_requests_about_a_patient_leave_no_personal_data_in_the_logs(
    client: TestClient, logs: Captured
) -> None:
    headers = {"Content-Type": FHIR_JSON}
    created = client.post("/fhir/Patient", content=orjson.dumps(_patient()), headers=headers)
    assert created.status_code == 201
    rid = created.json()["id"]
    assert client.get(f"/fhir/Patient/{rid}").status_code == 200
    for params in (
        {"name": f"{FAMILY}{GIVEN}"},
        {"family": FAMILY, "given": GIVEN},
        {"identifier": f"{ID_SYSTEM}|{ID_NUMBER}"},
        {"phone": PHONE},
        {"telecom": PHONE},
    ):
        found = client.get("/fhir/Patient", params=params)
        assert found.status_code == 200 and found.json()["total"] == 1, params
    again = client.post(
        "/fhir/Patient",
        content=orjson.dumps(_patient()),
        headers={**headers, "If-None-Exist": f"identifier={ID_SYSTEM}|{ID_NUMBER}"},
    )
    assert again.status_code == 200
    # Refusals that quote the value in their OperationOutcome (the response, not the log).
    assert client.get("/fhir/Patient", params={"birthdate": f"{FAMILY}{GIVEN}"}).status_code == 400
    strict = client.get("/fhir/Patient", params={PHONE: ID_NUMBER}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert client.get(f"/fhir/Patient/{ID_NUMBER}").status_code == 404
    assert client.get(f"/fhir/{ID_NUMBER}").status_code == 404
    assert client.get(f"/{PHONE}").status_code == 404
    assert (
        client.post("/fhir/Patient", content=b'{"name": "' + ID_NUMBER.encode(), headers=headers).status_code
        == 400
    )
    deleted = client.delete("/fhir/Patient", params={"identifier": f"{ID_SYSTEM}|{ID_NUMBER}"})
    assert deleted.status_code in (200, 204)

    _assert_nothing_personal(logs.text)
    assert rid not in logs.text  # ids stay out too: routes are kinds
    assert len(logs.access()) == 15


def test_the_access_line_has_its_fields(client: TestClient, logs: Captured) -> None:
    headers = {"Content-Type": FHIR_JSON}
    rid = client.post("/fhir/Patient", content=orjson.dumps(_patient()), headers=headers).json()["id"]
    client.get(f"/fhir/Patient/{rid}")
    client.get("/fhir/Patient", params={"identifier": f"{ID_SYSTEM}|{ID_NUMBER}"})
    client.get(f"/fhir/Patient/{rid}/_history/1")
    client.get("/fhir/Patient/no-such-id")
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": _patient(), "request": {"method": "POST", "url": "Patient"}}],
    }
    client.post("/fhir", content=orjson.dumps(bundle), headers=headers)
    client.get("/healthz")

    lines = logs.access()
    assert all(set(line) >= ACCESS_FIELDS | {"ts", "level", "logger", "msg"} for line in lines), lines
    assert all(line["level"] == "INFO" and isinstance(line["duration_ms"], float) for line in lines)
    assert all(line["duration_ms"] >= 0 for line in lines)
    seen = [
        (line["method"], line["route"], line["status"], line["error_code"], line["resource_type"])
        for line in lines
    ]
    assert seen == [
        ("POST", "fhir:Patient:type", 201, None, "Patient"),
        ("GET", "fhir:Patient:instance", 200, None, "Patient"),
        ("GET", "fhir:Patient:type", 200, None, "Patient"),
        ("GET", "fhir:Patient:*/_history/*", 200, None, "Patient"),
        ("GET", "fhir:Patient:instance", 404, "RHIP-FHIR-0002", "Patient"),
        ("POST", "fhir:base", 200, None, None),
        ("GET", "/healthz", 200, None, None),
    ]


def test_the_access_line_is_skipped_below_its_level(client: TestClient, logs: Captured) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    assert client.get("/healthz").status_code == 200
    assert logs.access() == []


class _Failing:
    """Stands in for FhirService.handle: fails the way bugs and the database fail."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.real = platform.fhir.handle
        with platform.db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE probe (v TEXT UNIQUE)")

    def __call__(self, req: FhirRequest) -> FhirResponse:
        probe = dict(req.query).get("probe")
        if probe == "database":
            # A unique violation: SQLAlchemy would quote the statement's parameters in its message.
            with self.platform.db.write() as conn:
                insert = sqlalchemy.text("INSERT INTO probe (v) VALUES (:v)")
                conn.execute(insert, {"v": ID_NUMBER})
                conn.execute(insert, {"v": ID_NUMBER})
        if probe == "bug":
            try:
                raise KeyError(f"{FAMILY}{GIVEN}")
            except KeyError as exc:
                raise ValueError(f"cannot handle {req.body.decode()} for {PHONE}") from exc
        return self.real(req)


def test_unexpected_errors_are_logged_without_their_messages(
    platform: Platform, client: TestClient, logs: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform.fhir, "handle", _Failing(platform))
    body = orjson.dumps(_patient())
    for probe in ("database", "bug"):
        resp = client.post(
            "/fhir/Patient",
            params={"probe": probe, "name": FAMILY},
            content=body,
            headers={"Content-Type": FHIR_JSON},
        )
        assert resp.status_code == 500
        assert "RHIP-CORE-0000" in resp.text
        _assert_nothing_personal(resp.text)

    _assert_nothing_personal(logs.text)
    errors = [r for r in logs.records() if r["msg"] == "unhandled error"]
    assert [(e["level"], e["route"], e["method"]) for e in errors] == [
        ("ERROR", "fhir:Patient:type", "POST")
    ] * 2
    assert "sqlalchemy.exc.IntegrityError" in errors[0]["exc"]
    assert "KeyError" in errors[1]["exc"] and "ValueError" in errors[1]["exc"]
    assert "test_observability.py" in errors[1]["exc"]  # where it happened is kept
    access = logs.access()
    assert [(a["status"], a["error_code"]) for a in access] == [(500, "RHIP-CORE-0000")] * 2


@pytest.mark.parametrize(
    ("path", "kind", "resource_type"),
    [
        ("/", "/", None),
        ("/healthz", "/healthz", None),
        (f"/{ID_NUMBER}", "other", None),
        ("/fhir", "fhir:base", None),
        ("/fhir/metadata", "fhir:metadata", None),
        ("/fhir/_history", "fhir:_history", None),
        (f"/fhir/{ID_NUMBER}", "fhir:other", None),
        (f"/fhir/{FAMILY}", "fhir:other", None),
        ("/fhir/Wang", "fhir:other", None),
        (f"/fhir/${GIVEN}", "fhir:$other", None),
        ("/fhir/Patient", "fhir:Patient:type", "Patient"),
        (f"/fhir/Patient/{ID_NUMBER}", "fhir:Patient:instance", "Patient"),
        ("/fhir/Patient/_search", "fhir:Patient:_search", "Patient"),
        ("/fhir/Patient/_history", "fhir:Patient:_history", "Patient"),
        ("/fhir/Patient/$validate", "fhir:Patient:$validate", "Patient"),
        (f"/fhir/Patient/${PHONE}", "fhir:Patient:$other", "Patient"),
        (f"/fhir/Patient/_{PHONE}", "fhir:Patient:*", "Patient"),
        ("/fhir/Patient/1/_history/2", "fhir:Patient:*/_history/*", "Patient"),
        ("/fhir/Patient/1/$everything", "fhir:Patient:*/$everything", "Patient"),
        ("/fhir/Patient/1/Observation", "fhir:Patient:*/Observation", "Patient"),
        (f"/fhir/Patient/1/{GIVEN}", "fhir:Patient:*/*", "Patient"),
    ],
)
def test_route_kinds_never_carry_text_from_the_path(path: str, kind: str, resource_type: str | None) -> None:
    assert classify(path) == (kind, resource_type)


def test_a_failed_start_is_logged_without_its_message(
    tmp_path: Path, logs: Captured, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Starlette passes a startup failure's text on to uvicorn, which would log it as it is."""

    def failing(_settings: Settings) -> Platform:
        raise ValueError(f"cannot read {ID_NUMBER}")

    monkeypatch.setattr("rhip.web.app.build_platform", failing)
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/none.db"))
    with pytest.raises(RuntimeError) as raised, TestClient(app):
        pass
    assert ID_NUMBER not in str(raised.value)
    assert raised.value.__suppress_context__
    assert "could not start" in logs.text
    _assert_nothing_personal(logs.text)
