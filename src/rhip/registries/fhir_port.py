"""How the registries reach the store: the platform's FHIR service, as whoever is acting (the portal's
administrator, the CLI's operator), so that every read and write is validated, authorised and audited.

:class:`FhirCall` is the shape the portal's ``Portal.fhir`` already has; :func:`calling` makes one of the
FHIR service (``rhip.fhir.rest.service.FhirService``) for the CLI and the other in-process callers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson

from rhip.fhir.rest.messages import FhirRequest, FhirResponse

BASE = "http://localhost/fhir"  # in-process requests: the base only shapes links in the answers


class FhirRefused(Exception):
    """The FHIR service refused a request: its HTTP status, a message key and the outcome's text."""

    def __init__(self, status: int, key: str, detail: str = "") -> None:
        super().__init__(detail or key)
        self.status, self.key, self.detail = status, key, detail


class FhirCall(Protocol):
    """One FHIR interaction: the resource or Bundle answered; refusals raise :class:`FhirRefused`."""

    def __call__(
        self,
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Send the request; the parsed answer."""


class FhirHandler(Protocol):
    """The platform's FHIR service."""

    def handle(self, req: FhirRequest) -> FhirResponse:
        """Answer one FHIR request."""


def outcome_text(outcome: Mapping[str, Any]) -> str:
    """The diagnostics of an OperationOutcome's issues, joined."""
    issues = outcome.get("issue") or []
    return "; ".join(str(i.get("diagnostics") or i.get("code") or "") for i in issues if isinstance(i, dict))


def calling(handler: FhirHandler) -> FhirCall:
    """A :class:`FhirCall` over the FHIR service (call it as the principal who acts)."""

    def call(
        method: str,
        path: str,
        query: Iterable[tuple[str, str]] = (),
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        raw = orjson.dumps(body) if body is not None else b""
        head = {"accept": "application/fhir+json"}
        if raw:
            head["content-type"] = "application/fhir+json"
        resp = handler.handle(FhirRequest(method, path.strip("/"), list(query), head, raw, BASE))
        parsed: dict[str, Any] = orjson.loads(resp.body) if resp.body else {}
        if resp.status >= 400:
            raise FhirRefused(resp.status, "error.request", outcome_text(parsed))
        return parsed

    return call


def matches(bundle: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The resources a search Bundle found (not its included or outcome entries)."""
    return [
        e["resource"]
        for e in (bundle or {}).get("entry", [])
        if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
    ]


def next_page(bundle: Mapping[str, Any] | None) -> str | None:
    """The query string of a search Bundle's next page (None on the last page)."""
    for link in (bundle or {}).get("link", []):
        if link.get("relation") == "next":
            url = str(link.get("url", ""))
            return url.split("?", 1)[1] if "?" in url else None
    return None


def search_all(
    fhir: FhirCall, resource_type: str, query: list[tuple[str, str]], limit: int
) -> Iterator[dict[str, Any]]:
    """Every resource a search finds, page after page, at most ``limit``."""
    page: list[tuple[str, str]] | None = query
    seen = 0
    while page is not None and seen < limit:
        bundle = fhir("GET", resource_type, page)
        for resource in matches(bundle):
            if seen >= limit:
                return
            seen += 1
            yield resource
        rest = next_page(bundle)
        page = parse_qsl(rest) if rest else None
