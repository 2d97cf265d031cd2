"""Leaving out the entries that would change nothing: the same Patient in every message of a visit.

A hospital repeats the patient (PID), the visit (PV1) and itself (MSH-4) in every message. Each is a
conditional entry: a search, and for a conditional update a new version of identical content (and a
new round of master-patient-index matching for a Patient). This process remembers, for each conditional
entry it committed, the resource it resolved to, the version it left and a digest of what it sent. When a
later message carries the same entry with the same content, and the resource is still at that version
(one search per resource type and batch checks it), the entry is left out and references to it point at
the resource. Anything else, including a change made through another door or another server process,
moves the version on and the entry is sent as usual.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import orjson

from rhip.exchange.hl7v2.intake.compose import Ready
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.rest.service import FhirService

MAX_REMEMBERED = 50_000


@dataclass(frozen=True, slots=True)
class _Known:
    reference: str  # Type/id
    version: str
    digest: bytes


def entry_key(entry: dict[str, Any]) -> str | None:
    """What identifies a conditional entry across messages (None for other entries)."""
    request = entry.get("request") or {}
    method, url = request.get("method"), request.get("url")
    if not isinstance(url, str):
        return None
    if method == "PUT" and "?" in url:
        return f"PUT {url}"
    condition = request.get("ifNoneExist")
    if method == "POST" and isinstance(condition, str) and condition:
        return f"POST {url}?{condition}"
    return None


def _digest(entry: dict[str, Any]) -> bytes:
    if (entry.get("request") or {}).get("method") == "POST":
        return b""  # a conditional create that matched writes nothing, whatever it carries
    return hashlib.blake2b(
        orjson.dumps(entry.get("resource"), option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()


class KnownResources:
    """The conditional entries this process committed, and what they resolved to."""

    def __init__(self, fhir: FhirService, limit: int = MAX_REMEMBERED) -> None:
        self.fhir = fhir
        self.limit = limit
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self.left_out = 0

    def prune(self, ready: list[Ready]) -> None:
        """Leave out of each message the entries known to change nothing; record what they resolve to."""
        candidates: list[tuple[Ready, int, str, _Known]] = []
        for r in ready:
            for index, entry in enumerate(r.entries):
                key = entry_key(entry)
                known = self._known.get(key) if key else None
                if known is not None and key is not None and known.digest == _digest(entry):
                    candidates.append((r, index, key, known))
        if not candidates:
            return
        current = self._versions({known.reference for _, _, _, known in candidates})
        dropped: dict[int, set[int]] = {}
        for r, index, key, known in candidates:
            if current.get(known.reference) != known.version:
                self._known.pop(key, None)
                continue
            entry = r.entries[index]
            full_url = entry.get("fullUrl")
            if isinstance(full_url, str):
                r.aliases[full_url] = known.reference
            r.resolved[str((entry.get("request") or {}).get("url"))] = known.reference
            dropped.setdefault(id(r), set()).add(index)
        for r in ready:
            gone = dropped.get(id(r))
            if gone:
                r.entries = [e for i, e in enumerate(r.entries) if i not in gone]
                r.locations = [loc for i, loc in enumerate(r.locations) if i not in gone]
                self.left_out += len(gone)

    def remember(self, r: Ready, responses: list[dict[str, Any]]) -> None:
        """Record what a committed message's conditional entries resolved to."""
        for entry, response in zip(r.entries, responses, strict=False):
            key = entry_key(entry)
            parts = str(response.get("location") or "").split("/")
            if key is None or len(parts) < 4 or parts[2] != "_history":
                continue
            self._known[key] = _Known(f"{parts[0]}/{parts[1]}", parts[3], _digest(entry))
            self._known.move_to_end(key)
        while len(self._known) > self.limit:
            self._known.popitem(last=False)

    def forget(self, r: Ready) -> None:
        """Drop what is known of a message's entries (its transaction failed)."""
        for entry in r.entries:
            key = entry_key(entry)
            if key:
                self._known.pop(key, None)

    def _versions(self, references: set[str]) -> dict[str, str]:
        """The current version of each resource (absent when it is gone)."""
        by_type: dict[str, list[str]] = {}
        for reference in references:
            rtype, rid = reference.split("/", 1)
            by_type.setdefault(rtype, []).append(rid)
        found: dict[str, str] = {}
        for rtype, ids in by_type.items():
            for start in range(0, len(ids), 200):
                chunk = ids[start : start + 200]
                response = self.fhir.handle(
                    FhirRequest(
                        "GET",
                        rtype,
                        query=[("_id", ",".join(chunk)), ("_count", str(len(chunk)))],
                        headers={"accept": "application/fhir+json"},
                    )
                )
                if response.status != 200 or response.body is None:
                    continue  # unknown: every entry of this type is sent as usual
                for e in orjson.loads(response.body).get("entry") or []:
                    resource = e.get("resource") or {}
                    version = (resource.get("meta") or {}).get("versionId")
                    if resource.get("id") and version:
                        found[f"{rtype}/{resource['id']}"] = str(version)
        return found
