"""Fixtures of the v2 intake tests: a pipeline on the test platform, a merger that records its calls."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from rhip.bootstrap.container import Platform
from rhip.exchange.hl7v2.pipeline import PipelineConfig, V2Pipeline
from rhip.exchange.rejects import RejectStore
from rhip.fhir.rest.messages import FhirRequest


class RecordingMerger:
    """A PatientMerger that remembers what it was asked to merge."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def merge(self, surviving_patient_id: str, obsolete_patient_id: str, *, actor: str) -> None:
        """Remember one merge."""
        self.calls.append((surviving_patient_id, obsolete_patient_id, actor))


@pytest.fixture
def merger() -> RecordingMerger:
    return RecordingMerger()


@pytest.fixture
def rejects(platform: Platform) -> RejectStore:
    return RejectStore(platform.db)


@pytest.fixture
def pipeline(platform: Platform, rejects: RejectStore, merger: RecordingMerger) -> V2Pipeline:
    return V2Pipeline(platform.fhir, rejects, PipelineConfig(), merger=merger)


def search(platform: Platform, path: str, query: str = "") -> list[dict[str, Any]]:
    """The resources a FHIR search finds (through the in-process service)."""
    response = platform.fhir.handle(
        FhirRequest("GET", path, query=[*parse_qsl(query), ("_count", "1000")], headers={})
    )
    assert response.status == 200, response.body
    body = orjson.loads(response.body or b"{}")
    return [e["resource"] for e in body.get("entry", []) if e.get("search", {}).get("mode") != "include"]


def history_count(platform: Platform, path: str) -> int:
    """How many versions a resource has."""
    response = platform.fhir.handle(FhirRequest("GET", f"{path}/_history", headers={}))
    assert response.status == 200, response.body
    return len(orjson.loads(response.body or b"{}").get("entry", []))
