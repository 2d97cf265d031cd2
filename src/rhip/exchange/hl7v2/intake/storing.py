"""Running a composed transaction through the in-process FHIR service, and reading what it answered."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import orjson

from rhip.core.errors import RhipError
from rhip.exchange.hl7v2.intake.compose import failed_entry, location_parts
from rhip.exchange.hl7v2.intake.errors import InternalError, StorageFailed, StoreRefused
from rhip.exchange.hl7v2.intake.faults import log_fault
from rhip.fhir.rest.messages import FhirRequest
from rhip.fhir.rest.service import FhirService

log = logging.getLogger("rhip.exchange.v2")

HEADERS = {"content-type": "application/fhir+json", "prefer": "return=minimal"}
# rhip error codes of the FHIR store → HL7 table 0357
_HL7_CODES = {
    "RHIP-FHIR-0004": "102",  # a value the FHIR validator refused
    "RHIP-FHIR-0006": "205",  # a conditional create or update matched several resources
    "RHIP-FHIR-0007": "206",  # a concurrent change
}


@dataclass
class TransactionResult:
    """The status of a transaction and, when it committed, the response of each entry."""

    status: int
    entries: list[dict[str, Any]] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the transaction committed."""
        return self.status == 200


class Transactor:
    """Posts transaction Bundles to the FHIR service."""

    def __init__(self, fhir: FhirService) -> None:
        self.fhir = fhir

    def run(self, bundle: dict[str, Any]) -> TransactionResult:
        """Commit ``bundle``; any failure is a result, never an exception."""
        try:
            response = self.fhir.handle(FhirRequest("POST", "", body=orjson.dumps(bundle), headers=HEADERS))
            body = orjson.loads(response.body) if response.body else {}
        except Exception as exc:
            log_fault(log, "v2 transaction failed", exc)
            return TransactionResult(500, outcome={"issue": [{"diagnostics": "internal error"}]})
        if response.status != 200:
            return TransactionResult(response.status, outcome=body if isinstance(body, dict) else {})
        return TransactionResult(200, [e.get("response") or {} for e in body.get("entry") or []])


def store_error(result: TransactionResult, positions: list[int], locations: list[str]) -> RhipError:
    """The refusal of one message whose transaction failed, naming the segment its bad entry came from."""
    issues = result.outcome.get("issue") or [{}]
    first = issues[0]
    diagnostics = str(first.get("diagnostics") or "the FHIR store refused the data")
    coding = ((first.get("details") or {}).get("coding") or [{}])[0]
    store_code = str(coding.get("code") or "")
    if result.status == 503 or store_code.startswith("RHIP-DB"):
        return StorageFailed("the data could not be stored now; send the message again later")
    if result.status >= 500:
        return InternalError(
            "the message could not be stored because of an internal error; it has been logged"
        )
    segment, sequence = "", 0
    index = failed_entry(result.outcome)
    if index is not None and index in positions:
        location = locations[positions.index(index)]
        if location:
            segment, sequence = location_parts(location)
    error = StoreRefused(
        f"{store_code + ': ' if store_code else ''}{diagnostics}", segment=segment, sequence=sequence
    )
    error.hl7_code = _HL7_CODES.get(store_code, "207")
    return error


def _location_id(response: dict[str, Any]) -> str | None:
    parts = str(response.get("location") or "").split("/")
    return parts[1] if len(parts) >= 2 else None


def resolve_merges(
    fhir: FhirService,
    merges: list[tuple[str, str]],
    entries: list[dict[str, Any]],
    responses: list[dict[str, Any]],
    resolved: dict[str, str] | None = None,
) -> list[tuple[str, str]]:
    """The Patient ids of each (surviving, obsolete) pair of criteria, from the transaction or a search.

    ``resolved``: request url → Type/id of entries left out of the transaction (known unchanged).
    """
    by_url: dict[str, str] = {
        url[len("Patient?") :]: ref.split("/", 1)[1]
        for url, ref in (resolved or {}).items()
        if url.startswith("Patient?")
    }
    for entry, response in zip(entries, responses, strict=False):
        url = str((entry.get("request") or {}).get("url") or "")
        found = _location_id(response)
        if url.startswith("Patient?") and found:
            by_url[url[len("Patient?") :]] = found
    pairs = []
    for surviving, obsolete in merges:
        pairs.append(
            (
                by_url.get(surviving) or _search_one(fhir, surviving),
                by_url.get(obsolete) or _search_one(fhir, obsolete),
            )
        )
    return pairs


def _search_one(fhir: FhirService, criteria: str) -> str:
    response = fhir.handle(
        FhirRequest("GET", "Patient", query=_query(criteria), headers={"accept": "application/fhir+json"})
    )
    body = orjson.loads(response.body) if response.body else {}
    ids = [
        e["resource"]["id"]
        for e in body.get("entry") or []
        if (e.get("search") or {}).get("mode") != "include"
    ]
    if response.status != 200 or len(ids) != 1:
        raise StoreRefused(f"the patient to merge ({criteria.split('=', 1)[0]}) was not found exactly once")
    return str(ids[0])


def _query(criteria: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(criteria, keep_blank_values=True)
