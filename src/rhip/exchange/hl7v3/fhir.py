"""The FHIR service as the v3 door uses it: transactions, searches and reads, in process.

Everything a v3 message carries is stored as FHIR through the platform's own FHIR service (so validation,
history, events and the master patient index apply exactly as for a FHIR client). A refusal comes back
as an OperationOutcome; it becomes a :class:`StoreRefused` holding the store's own code and text (a 401/403
keeps its RHIP-SEC-* code as the refusal's code).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

import orjson

from rhip.core.errors import Forbidden, Unauthenticated
from rhip.exchange.hl7v3.errors import StoreRefused
from rhip.fhir.rest.messages import FhirRequest, FhirResponse

JSON = {"content-type": "application/fhir+json", "accept": "application/fhir+json"}
_SECURITY_CODES = {401: Unauthenticated.code, 403: Forbidden.code}


class FhirHandler(Protocol):
    """The in-process FHIR API (``rhip.fhir.rest.service.FhirService``)."""

    def handle(self, req: FhirRequest) -> FhirResponse:
        """Answer one FHIR request."""


def criteria(**params: str) -> str:
    """A search or conditional-criteria query string, URL-encoded (``|`` and Chinese included)."""
    return urlencode(params)


def refusal(response: FhirResponse) -> StoreRefused:
    """The StoreRefused of an OperationOutcome answer (its first issue's code and text)."""
    text, code = f"the FHIR store answered {response.status}", ""
    try:
        body = orjson.loads(response.body or b"{}")
        issue = (body.get("issue") or [{}])[0]
        text = str(issue.get("diagnostics") or text)
        code = str(((issue.get("details") or {}).get("text")) or "")
    except (orjson.JSONDecodeError, AttributeError, IndexError):
        pass
    message = f"{code}: {text}" if code else text
    if response.status in (401, 403):
        # A security refusal keeps its own code (not RHIP-V3-0016): a reject coded RHIP-SEC-* is one of
        # who sent it, which an operator's replay must not turn into a write in another's name.
        if not code.upper().startswith("RHIP-SEC-"):
            code = _SECURITY_CODES[response.status]
        return StoreRefused(message, code=code[:32])
    return StoreRefused(message)


class FhirGateway:
    """Transactions, searches and reads against the FHIR service."""

    def __init__(self, fhir: FhirHandler) -> None:
        self.fhir = fhir

    def transaction(self, entries: list[dict[str, Any]]) -> list[str]:
        """Run one transaction Bundle; the ``Type/id`` of each entry's resource, in entry order."""
        bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
        response = self.fhir.handle(FhirRequest("POST", "", body=orjson.dumps(bundle), headers=JSON))
        if response.status >= 300:
            raise refusal(response)
        result = orjson.loads(response.body or b"{}")
        out = []
        for entry in result.get("entry", []):
            location = str((entry.get("response") or {}).get("location") or "")
            out.append("/".join(location.split("/")[:2]) if location else "")
        return out

    def search(
        self, resource_type: str, params: list[tuple[str, str]], count: int = 100
    ) -> list[dict[str, Any]]:
        """The resources a search matches (``mode: match`` only), at most ``count``."""
        query = [*params, ("_count", str(count))]
        response = self.fhir.handle(FhirRequest("GET", resource_type, query=query, headers=JSON))
        if response.status >= 300:
            raise refusal(response)
        bundle = orjson.loads(response.body or b"{}")
        return [
            e["resource"]
            for e in bundle.get("entry", [])
            if isinstance(e.get("resource"), dict) and (e.get("search") or {}).get("mode", "match") == "match"
        ]

    def read(self, resource_type: str, resource_id: str) -> dict[str, Any] | None:
        """The current version of a resource, None when it does not exist (or was deleted)."""
        response = self.fhir.handle(FhirRequest("GET", f"{resource_type}/{resource_id}", headers=JSON))
        if response.status in (404, 410):
            return None
        if response.status >= 300:
            raise refusal(response)
        found: dict[str, Any] = orjson.loads(response.body or b"{}")
        return found
