"""Transport-neutral request and response of the FHIR RESTful API."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rhip.fhir.repository import StoredResource

FHIR_JSON = "application/fhir+json"


@dataclass
class FhirRequest:
    """One interaction: method, path below the FHIR base, query pairs, headers (lower-case names), body."""

    method: str
    path: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = ""

    def header(self, name: str) -> str | None:
        """A header value by lower-case name."""
        return self.headers.get(name)

    def segments(self) -> list[str]:
        """The path split into segments, without empty ones."""
        return [s for s in self.path.strip("/").split("/") if s]


@dataclass
class FhirResponse:
    """Status, headers and a JSON body (None for no body)."""

    status: int
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = FHIR_JSON
    # The version the interaction produced or read, for transaction-response entries.
    stored: StoredResource | None = None
