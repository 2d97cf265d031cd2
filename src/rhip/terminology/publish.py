"""Publishing the code tables in the FHIR store: a CodeSystem and a ValueSet resource for each table.

The tables' files stay the source (the terminology service reads them at start); ``rhip terminology load``
puts them in the store as well, so that any FHIR client can read and search them (``CodeSystem?url=…``,
``ValueSet?name:contains=…``) and their versions are kept in the resources' history. A table whose resources
already say the same is left alone: loading again adds no version.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from rhip.core.errors import RhipError
from rhip.fhir.rest.messages import FhirRequest, FhirResponse
from rhip.terminology.codesystems import CodeSystem

Action = Literal["created", "updated", "unchanged"]
BASE = "http://localhost/fhir"  # requests made in process; the base only shapes links in the answers


class FhirHandler(Protocol):
    """The platform's FHIR service (rhip.fhir.rest.service.FhirService), as the operator."""

    def handle(self, req: FhirRequest) -> FhirResponse:
        """Answer one FHIR request."""


@dataclass(frozen=True)
class Published:
    """What loading did with one resource."""

    resource_type: str
    url: str
    version: str
    action: Action
    id: str


def value_set_of(system: CodeSystem) -> dict[str, Any] | None:
    """The ValueSet resource of every code of ``system`` (None when the table names no value set)."""
    if system.valueset is None:
        return None
    return {
        "resourceType": "ValueSet",
        "url": system.valueset,
        "version": system.version,
        "name": system.to_fhir()["name"] + "ValueSet",
        "title": system.title or system.name,
        "status": "active",
        "description": f"Every code of {system.name} ({system.url})",
        "compose": {"include": [{"system": system.url, "version": system.version}]},
    }


def _call(fhir: FhirHandler, method: str, path: str, query: list[tuple[str, str]], body: Any = None) -> Any:
    raw = orjson.dumps(body) if body is not None else b""
    head = {"content-type": "application/fhir+json"} if raw else {}
    resp = fhir.handle(FhirRequest(method, path, query, head, raw, BASE))
    parsed = orjson.loads(resp.body) if resp.body else {}
    if resp.status >= 400:
        issue = (parsed.get("issue") or [{}])[0]
        raise RhipError(f"{method} {path}: {resp.status} {issue.get('diagnostics', '')}".strip())
    return parsed


def _same(stored: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return {k: v for k, v in stored.items() if k not in ("id", "meta", "text")} == wanted


def publish_one(fhir: FhirHandler, resource: dict[str, Any]) -> Published:
    """Create the resource, update the one with its ``url`` when it differs, or leave it."""
    rtype, url, version = resource["resourceType"], resource["url"], str(resource.get("version", ""))
    found = _call(fhir, "GET", rtype, [("url", url), ("_count", "2")])
    matches = [e["resource"] for e in found.get("entry", []) if e.get("search", {}).get("mode") != "outcome"]
    if len(matches) > 1:
        raise RhipError(f"{rtype}?url={url}: the store holds several; remove all but one first")
    if not matches:
        created = _call(fhir, "POST", rtype, [], resource)
        return Published(rtype, url, version, "created", str(created.get("id", "")))
    stored = matches[0]
    if _same(stored, resource):
        return Published(rtype, url, version, "unchanged", str(stored["id"]))
    _call(fhir, "PUT", f"{rtype}/{stored['id']}", [], {**resource, "id": stored["id"]})
    return Published(rtype, url, version, "updated", str(stored["id"]))


def publish(fhir: FhirHandler, systems: Iterable[CodeSystem]) -> list[Published]:
    """Put every table's CodeSystem and ValueSet in the store."""
    out = []
    for system in systems:
        out.append(publish_one(fhir, system.to_fhir()))
        vs = value_set_of(system)
        if vs is not None:
            out.append(publish_one(fhir, vs))
    return out
