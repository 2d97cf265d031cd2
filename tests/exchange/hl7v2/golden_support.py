"""What every v2 mapping test shares: golden files, parsing a file as a sender sends it, and the FHIR service.

Each ``golden/<type>-*.hl7`` is mapped and compared exactly with ``<name>.expected.json`` next to it (the
bundle and what the pipeline needs, or the MappingError). ``RHIP_UPDATE_GOLDEN=1`` rewrites the expected
files; review the diff before committing it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.exchange.hl7v2.charset import decode
from rhip.exchange.hl7v2.mapping import Mapped, Mapper, MappingContext, MappingError, map_message
from rhip.exchange.hl7v2.message import Message, parse
from rhip.fhir.rest.messages import FhirRequest

GOLDEN = Path(__file__).parent / "golden"
CORPUS = Path(__file__).resolve().parents[4] / "shared" / "corpora" / "hl7v2-samples"
ZONE = ZoneInfo("Asia/Shanghai")
RECEIVED = "2025-03-01T00:00:00.000Z"
UPDATE = os.environ.get("RHIP_UPDATE_GOLDEN") == "1"


def load_bytes(raw: bytes) -> Message:
    """Message bytes as a sender sends them (any charset, BOM, MLLP frame or not), parsed."""
    text, _ = decode(raw.strip(b"\x0b\x1c\r\n"))
    return parse(text)


def load(path: Path) -> Message:
    """A message file, parsed."""
    return load_bytes(path.read_bytes())


def context(message: Message) -> MappingContext:
    """The context the pipeline gives a message: the sender is MSH-4.1."""
    return MappingContext(message.sending_facility, RECEIVED, ZONE)


def map_file(path: Path, mappers: Mapping[str, Mapper] | None = None) -> Mapped:
    """The mapping of a message file (with ``mappers``, or the whole registry)."""
    message = load(path)
    return map_message(message, context(message), mappers)


def outcome(path: Path, mappers: Mapping[str, Mapper] | None = None) -> dict[str, Any]:
    """What mapping a file gives, as the golden files hold it."""
    try:
        result = map_file(path, mappers)
    except MappingError as error:
        return {
            "error": {
                "code": error.code,
                "hl7_code": error.hl7_code,
                "segment": error.segment,
                "sequence": error.sequence,
                "field": error.field,
                "message": error.message,
            }
        }
    return {
        "bundle": result.bundle,
        "locations": result.locations,
        "patient_keys": result.patient_keys,
        "merges": [list(m) for m in result.merges],
        "focus": result.focus,
    }


def check_golden(path: Path, mappers: Mapping[str, Mapper] | None = None) -> None:
    """Compare a file's mapping with its expected JSON (rewritten with RHIP_UPDATE_GOLDEN=1)."""
    expected_path = path.with_name(path.stem + ".expected.json")
    got = outcome(path, mappers)
    if UPDATE:
        expected_path.write_text(orjson.dumps(got, option=orjson.OPT_INDENT_2).decode() + "\n")
        return
    assert expected_path.exists(), f"{expected_path.name} is missing: run with RHIP_UPDATE_GOLDEN=1"
    assert got == orjson.loads(expected_path.read_bytes())


def cases(prefix: str) -> list[Path]:
    """The golden inputs whose name starts with ``prefix``."""
    return sorted(GOLDEN.glob(f"{prefix}*.hl7"))


@pytest.fixture
def platform(settings: Settings) -> Iterator[Platform]:
    """A migrated database with the FHIR service (no master patient index: the mapping is under test)."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings, empi=False)
    try:
        yield plat
    finally:
        plat.close()


def post(platform: Platform, bundle: dict[str, Any]) -> dict[str, Any]:
    """Process a transaction; the transaction-response (fails the test on an error)."""
    response = platform.fhir.handle(
        FhirRequest("POST", "", body=orjson.dumps(bundle), headers={"content-type": "application/fhir+json"})
    )
    assert response.status == 200, response.body
    assert response.body is not None
    result: dict[str, Any] = orjson.loads(response.body)
    return result


def search(platform: Platform, rtype: str, *query: tuple[str, str]) -> list[dict[str, Any]]:
    """The resources a search finds (up to 200)."""
    response = platform.fhir.handle(FhirRequest("GET", rtype, [*query, ("_count", "200")]))
    assert response.status == 200, response.body
    assert response.body is not None
    return [
        e["resource"] for e in orjson.loads(response.body).get("entry", []) if e["search"]["mode"] == "match"
    ]


def statuses(response: dict[str, Any]) -> list[str]:
    """The status code of each entry of a transaction-response."""
    return [e["response"]["status"].split()[0] for e in response["entry"]]
