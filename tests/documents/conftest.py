"""Fixtures of the document registry tests: a platform, the registry on it, a rejects sink and documents.

The documents are real synthetic CDA documents: golden copies in tests/documents/golden/ (one per type,
from var/ex-small), and the whole of var/ex-small/cda when it is there.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.documents.service import DocumentService, RegistryConfig
from rhip.fhir.rest.messages import FhirRequest

GOLDEN = Path(__file__).parent / "golden"
EX_SMALL_CDA = Path(__file__).resolve().parents[2] / "var" / "ex-small" / "cda"
DOCUMENT_CODES = "urn:oid:2.16.156.10011.2.4"


@dataclass
class Rejected:
    """One document the sink was given."""

    channel: str
    sender: str
    raw: bytes
    reason_code: str
    reason: str
    content_type: str


@dataclass
class ListSink:
    """A rejects sink keeping what it is given in a list (the RejectStore's record signature)."""

    kept: list[Rejected] = field(default_factory=list)

    def record(
        self, *, channel: str, sender: str, raw: bytes, reason_code: str, reason: str, content_type: str = ""
    ) -> int:
        """Keep one refused document; its number."""
        self.kept.append(Rejected(channel, sender, raw, reason_code, reason, content_type))
        return len(self.kept)


@pytest.fixture
def docs_platform(settings: Settings) -> Iterator[Platform]:
    """A migrated database with the FHIR service, without the resident index (not under test here)."""
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings, empi=False, exchange=False)
    try:
        yield plat
    finally:
        plat.close()


@pytest.fixture
def sink() -> ListSink:
    """The rejects sink of the registry under test."""
    return ListSink()


@pytest.fixture
def registry(docs_platform: Platform, sink: ListSink) -> DocumentService:
    """The document registry on the test platform."""
    return DocumentService(docs_platform.fhir, RegistryConfig(), sink)


def golden(code: str) -> bytes:
    """The golden document of a type (C0002, HSDB04.01 …)."""
    return (GOLDEN / f"{code}.xml").read_bytes()


def ex_small_documents() -> list[tuple[bytes, str]]:
    """Every CDA document of var/ex-small (skips the test when the region is absent)."""
    if not EX_SMALL_CDA.exists():
        pytest.skip("var/ex-small/cda is absent (rhip synth --out var/ex-small --people 300 --years 1 …)")
    out = []
    for path in sorted(EX_SMALL_CDA.glob("*.zip")):
        with zipfile.ZipFile(path) as archive:
            out += [(archive.read(n), f"{path.name}/{n}") for n in sorted(archive.namelist())]
    return out


# -- documents made from the golden ones -----------------------------------------------------------------


def with_id(raw: bytes, extension: str) -> bytes:
    """The document under another ClinicalDocument/id extension (setId unchanged)."""
    text = raw.decode()
    return re.sub(
        r'(<id root="2\.16\.156\.10011\.1\.1" extension=")[^"]*(")', rf"\g<1>{extension}\g<2>", text, count=1
    ).encode()


def new_version(raw: bytes, extension: str, version: int, *, parent: str | None = None) -> bytes:
    """A later version of a document: new id, same setId, ``version``; with ``parent`` a relatedDocument
    RPLC naming that document id (extension under root 2.16.156.10011.1.1)."""
    text = with_id(raw, extension).decode()
    text = re.sub(r'<versionNumber value="\d+"/>', f'<versionNumber value="{version}"/>', text, count=1)
    if parent is not None:
        related = (
            '<relatedDocument typeCode="RPLC"><parentDocument>'
            f'<id root="2.16.156.10011.1.1" extension="{parent}"/>'
            "</parentDocument></relatedDocument>"
        )
        anchor = "<componentOf" if "<componentOf" in text else "<component>"
        text = text.replace(anchor, related + anchor, 1)
    return text.encode()


def with_confidentiality(raw: bytes, code: str) -> bytes:
    """The document with another confidentialityCode."""
    return re.sub(rb'(<confidentialityCode code=")[A-Z]', rb"\g<1>" + code.encode(), raw, count=1)


def document_id(raw: bytes) -> str:
    """The ClinicalDocument/id extension of a document."""
    found = re.search(rb'<id root="2\.16\.156\.10011\.1\.1" extension="([^"]*)"', raw)
    assert found is not None
    return found.group(1).decode()


# -- reading the store -------------------------------------------------------------------------------------


def fhir_get(platform: Platform, path: str, params: list[tuple[str, str]] | None = None) -> Any:
    """GET through the FHIR service; the JSON body (asserts 200)."""
    response = platform.fhir.handle(FhirRequest("GET", path, params or []))
    assert response.status == 200, response.body
    return orjson.loads(response.body or b"{}")


def search_ids(platform: Platform, rtype: str, params: list[tuple[str, str]]) -> list[str]:
    """The ids a search matches."""
    bundle = fhir_get(platform, rtype, [*params, ("_count", "1000")])
    return [
        e["resource"]["id"] for e in bundle.get("entry", ()) if e.get("search", {}).get("mode") == "match"
    ]


def count(platform: Platform, rtype: str) -> int:
    """How many resources of a type the store holds."""
    return int(fhir_get(platform, rtype, [("_summary", "count")])["total"])


def transaction(platform: Platform, bundle: dict[str, Any]) -> tuple[int, Any]:
    """POST a Bundle to the service base; (status, JSON body)."""
    response = platform.fhir.handle(
        FhirRequest("POST", "", [], {"content-type": "application/fhir+json"}, orjson.dumps(bundle))
    )
    return response.status, orjson.loads(response.body or b"{}")
