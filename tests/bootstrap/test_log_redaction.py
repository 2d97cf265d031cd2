"""The log formatters mask ID numbers and phones and remove secrets from messages and fields."""

from __future__ import annotations

import json
import logging
import time

import pytest

from rhip.bootstrap.logging import JsonFormatter, TextFormatter

ID_NUMBER = "110101199003077777"
OLD_ID = "110101900307777"
PHONE = "13912345678"
JWT = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTEiLCJzY29wZSI6InVzZXIvKi5ycyJ9.c2lnbmF0dXJlLWJ5dGVz"
PASSWORD = "Tr0ub4dor&3"
SECRETS = (ID_NUMBER, OLD_ID, PHONE, JWT, "c2lnbmF0dXJlLWJ5dGVz", PASSWORD, "s3cr3t-value")


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("rhip.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def _both(record: logging.LogRecord) -> list[str]:
    return [JsonFormatter().format(record), TextFormatter().format(record)]


def test_messages_are_masked() -> None:
    record = _record("patient %s called from %s; old card %s", ID_NUMBER, PHONE, OLD_ID)
    json_line, text_line = _both(record)
    assert json.loads(json_line)["msg"] == (
        "patient 1101**********7777 called from 139****5678; old card 1101*******7777"
    )
    assert "patient 1101**********7777 called from 139****5678" in text_line
    for line in (json_line, text_line):
        assert not any(s in line for s in SECRETS)


def test_secrets_in_messages_are_removed() -> None:
    record = _record(
        "login with password=%s and header Authorization: Bearer %s to postgresql://rhip:%s@db/rhip",
        PASSWORD,
        JWT,
        "s3cr3t-value",
    )
    for line in _both(record):
        assert not any(s in line for s in SECRETS), line
        assert "[redacted]" in line


def test_extra_fields_are_masked_and_secret_fields_withheld() -> None:
    record = _record(
        "request",
        route="fhir:Patient:type",
        status=429,
        duration_ms=1.5,
        patient=ID_NUMBER,
        caller=int(PHONE),
        detail={"phones": [PHONE], "client_secret": "s3cr3t-value"},
        password=PASSWORD,
        access_token=JWT,
    )
    json_line, text_line = _both(record)
    out = json.loads(json_line)
    assert out["route"] == "fhir:Patient:type" and out["status"] == 429 and out["duration_ms"] == 1.5
    assert out["patient"] == "1101**********7777"
    assert out["caller"] == "139****5678"
    assert out["detail"] == {"phones": ["139****5678"], "client_secret": "[redacted]"}
    assert out["password"] == "[redacted]" and out["access_token"] == "[redacted]"
    assert "route=fhir:Patient:type status=429" in text_line
    for line in (json_line, text_line):
        assert not any(s in line for s in SECRETS), line


def test_exceptions_are_still_withheld() -> None:
    try:
        raise ValueError(f"no patient {ID_NUMBER}")
    except ValueError as exc:
        record = _record("failed: %s", exc)
        record.exc_info = (type(exc), exc, exc.__traceback__)
    for line in _both(record):
        assert ID_NUMBER not in line
        assert "ValueError" in line


def test_ordinary_lines_are_unchanged() -> None:
    record = _record("%d rows in %s", 3, "Patient", route="fhir:base", resource_type="Patient", count=12)
    out = json.loads(JsonFormatter().format(record))
    assert out["msg"] == "3 rows in Patient"
    assert out["count"] == 12 and out["resource_type"] == "Patient"


def test_access_lines_stay_cheap() -> None:
    formatter = JsonFormatter()
    record = _record(
        "request",
        method="GET",
        route="fhir:Patient:type",
        status=200,
        error_code=None,
        duration_ms=1.234,
        resource_type="Patient",
    )
    started = time.perf_counter()
    for _ in range(2000):
        formatter.format(record)
    per_line = (time.perf_counter() - started) / 2000
    assert per_line < 200e-6, f"{per_line * 1e6:.1f} µs per access line"


@pytest.mark.parametrize("fmt", [JsonFormatter, TextFormatter])
def test_configured_handler_masks(fmt: type[logging.Formatter], capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("rhip.test.redaction")
    handler = logging.StreamHandler()
    handler.setFormatter(fmt())
    logger.addHandler(handler)
    try:
        logger.warning("resident %s", ID_NUMBER, extra={"phone": PHONE})
    finally:
        logger.removeHandler(handler)
    err = capsys.readouterr().err
    assert "1101**********7777" in err and "139****5678" in err
    assert ID_NUMBER not in err and PHONE not in err
