"""An in-process FHIR client for the REST tests: drives ``platform.fhir.handle`` with ``FhirRequest``s."""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from rhip.bootstrap.container import Platform, build_platform, database
from rhip.bootstrap.settings import Settings
from rhip.db.migrate import upgrade
from rhip.fhir.rest.messages import FhirRequest, FhirResponse

BASE = "http://rhip.test/fhir"
FHIR_JSON = "application/fhir+json"
PATCH_JSON = "application/json-patch+json"
ID_SYSTEM = "urn:oid:2.16.156.10011.1.3"  # 居民身份证号


def body_of(resp: FhirResponse) -> Any:
    """The parsed JSON body of a response."""
    assert resp.body is not None, f"{resp.status} has no body"
    return orjson.loads(resp.body)


def rhip_codes(outcome: Mapping[str, Any]) -> list[str]:
    """The stable ``RHIP-…`` codes of an OperationOutcome's issues."""
    assert outcome["resourceType"] == "OperationOutcome", outcome
    return [i.get("details", {}).get("text", "") for i in outcome["issue"]]


def expressions(outcome: Mapping[str, Any]) -> list[str]:
    """Every ``issue.expression`` of an OperationOutcome."""
    return [e for i in outcome["issue"] for e in i.get("expression", [])]


def diagnostics(outcome: Mapping[str, Any]) -> str:
    """The diagnostics of all issues, joined."""
    return " | ".join(i.get("diagnostics", "") for i in outcome["issue"])


def assert_error(resp: FhirResponse, status: int, code: str) -> dict[str, Any]:
    """The response is an OperationOutcome with ``status`` and the stable ``code``; returns it."""
    assert resp.status == status, (resp.status, resp.body)
    outcome = body_of(resp)
    assert outcome["resourceType"] == "OperationOutcome"
    assert code in rhip_codes(outcome), outcome
    assert all(i["severity"] in ("error", "fatal") for i in outcome["issue"]), outcome
    return dict(outcome)


def patient(
    family: str = "王", given: str = "伟", id_number: str | None = None, **extra: Any
) -> dict[str, Any]:
    """A small valid Patient."""
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "name": [{"family": family, "given": [given], "text": f"{family}{given}"}],
        "gender": "male",
        "birthDate": "1980-05-17",
    }
    if id_number is not None:
        resource["identifier"] = [{"system": ID_SYSTEM, "value": id_number}]
    resource.update(extra)
    return resource


def observation(patient_ref: str, value: float = 120, code: str = "8480-6", **extra: Any) -> dict[str, Any]:
    """A systolic blood pressure Observation about ``patient_ref``."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": patient_ref},
        "valueQuantity": {
            "value": value,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }
    resource.update(extra)
    return resource


def binary_patch(operations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A JSON Patch carried as a Binary (how Bundles hold PATCH bodies)."""
    return {
        "resourceType": "Binary",
        "contentType": PATCH_JSON,
        "data": base64.b64encode(orjson.dumps(list(operations))).decode(),
    }


class FhirClient:
    """Sends requests to the platform's FhirService; no request may end in a crash or a 5xx."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        query: str | Sequence[tuple[str, str]] = (),
        headers: Mapping[str, str] | None = None,
        content_type: str | None = FHIR_JSON,
    ) -> FhirResponse:
        """One request; ``body`` is JSON-encoded unless it is bytes."""
        if isinstance(body, bytes):
            raw = body
        elif body is None:
            raw = b""
        else:
            raw = orjson.dumps(body)
        pairs = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else list(query)
        all_headers = {}
        if raw and content_type:
            all_headers["content-type"] = content_type
        all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
        resp = self.platform.fhir.handle(FhirRequest(method, path, pairs, all_headers, raw, BASE))
        assert resp.status < 500, (method, path, resp.status, resp.body)
        return resp

    def get(self, path: str, query: str | Sequence[tuple[str, str]] = (), **kw: Any) -> FhirResponse:
        """GET."""
        return self.request("GET", path, query=query, **kw)

    def post(self, path: str, body: Any, **kw: Any) -> FhirResponse:
        """POST."""
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any, **kw: Any) -> FhirResponse:
        """PUT."""
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, operations: Any, **kw: Any) -> FhirResponse:
        """PATCH with a JSON Patch document."""
        kw.setdefault("content_type", PATCH_JSON)
        return self.request("PATCH", path, operations, **kw)

    def delete(self, path: str, **kw: Any) -> FhirResponse:
        """DELETE."""
        return self.request("DELETE", path, **kw)

    def create(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """POST a resource that must be created; returns the stored resource."""
        resp = self.post(str(resource["resourceType"]), dict(resource))
        assert resp.status == 201, (resp.status, resp.body)
        return dict(body_of(resp))

    def read(self, rtype: str, rid: str) -> dict[str, Any]:
        """GET a resource that must exist."""
        resp = self.get(f"{rtype}/{rid}")
        assert resp.status == 200, (resp.status, resp.body)
        return dict(body_of(resp))

    def search(self, path: str, query: str | Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
        """A search that must succeed; returns the Bundle."""
        resp = self.get(path, query)
        assert resp.status == 200, (resp.status, resp.body)
        bundle = dict(body_of(resp))
        assert bundle["resourceType"] == "Bundle"
        return bundle

    def follow(self, url: str) -> dict[str, Any]:
        """GET an absolute link of a Bundle (paging); returns the Bundle."""
        assert url.startswith(BASE + "/") or url == BASE, url
        parts = urlsplit(url)
        path = parts.path[len(urlsplit(BASE).path) :].strip("/")
        return self.search(path, parse_qsl(parts.query, keep_blank_values=True))

    def pages(self, path: str, query: str | Sequence[tuple[str, str]] = ()) -> Iterator[dict[str, Any]]:
        """Every page of a search or history, following ``next`` links."""
        bundle = self.search(path, query)
        for _ in range(1000):
            yield bundle
            nxt = next_link(bundle)
            if nxt is None:
                return
            bundle = self.follow(nxt)
        raise AssertionError("paging does not end")


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """The ``next`` link of a Bundle."""
    return next((lk["url"] for lk in bundle.get("link", []) if lk["relation"] == "next"), None)


def resources(bundle: Mapping[str, Any], mode: str | None = "match") -> list[dict[str, Any]]:
    """The resources of a Bundle's entries (search mode ``mode``; None for all entries)."""
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if "resource" in e and (mode is None or e.get("search", {}).get("mode") == mode)
    ]


def ids(bundle: Mapping[str, Any], rtype: str | None = None, mode: str | None = "match") -> list[str]:
    """The ``Type/id`` of a Bundle's resources."""
    return [
        f"{r['resourceType']}/{r['id']}"
        for r in resources(bundle, mode)
        if rtype is None or r["resourceType"] == rtype
    ]


@pytest.fixture
def fhir(platform: Platform) -> FhirClient:
    """A client of the test platform's FHIR service."""
    return FhirClient(platform)


@pytest.fixture
def small_bundle_fhir(settings: Settings) -> Iterator[FhirClient]:
    """A client of a platform that takes Bundles of at most 3 entries (same database as ``platform``)."""
    # ``settings`` is make_settings(database_url) from tests/conftest.py; only the limit changes.
    settings = settings.model_copy(
        update={"fhir": settings.fhir.model_copy(update={"max_bundle_entries": 3})}
    )
    db = database(settings)
    upgrade(db.engine)
    db.dispose()
    plat = build_platform(settings)
    try:
        yield FhirClient(plat)
    finally:
        plat.close()
