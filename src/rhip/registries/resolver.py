"""Institution code → the id of its registered Organization: what a door needs so that everything an
institution sends points at the one Organization the registry holds for it.

Callers declare the shape they need (a Protocol such as :class:`InstitutionResolver`) and bootstrap wires
:class:`RegisteredInstitutions` to it. Among several Organizations carrying one code (registered twice), an
active one is preferred and then the lowest id, as the document registry already chooses
(rhip.documents.known), so every door picks the same. Answers are cached for ``ttl_s`` and forgotten when
an Organization changes (:meth:`RegisteredInstitutions.on_event`, subscribed by bootstrap).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from rhip.core.events import Event
from rhip.fhir.events import ResourceChanged
from rhip.registries.fhir_port import FhirCall, matches
from rhip.registries.identifiers import INSTITUTION_CODE, is_code
from rhip.security.lookup import TtlCache

MAX_CACHED = 10_000


class InstitutionResolver(Protocol):
    """Institution code → registered Organization id (None when the code is not registered)."""

    def organization_id(self, code: str) -> str | None:
        """The id of the Organization registered under the institution code."""


class RegisteredInstitutions:
    """The registry's Organizations by institution code (urn:oid:2.16.156.10011.1.5), read through FHIR."""

    def __init__(self, fhir: FhirCall, ttl_s: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.fhir = fhir
        self._cache: TtlCache[str, str | None] = TtlCache(ttl_s, MAX_CACHED, clock)

    def organization_id(self, code: str) -> str | None:
        """The id of the Organization registered under ``code``; None when none is (or the code is malformed)."""
        if not is_code(code):
            return None
        return self._cache.get(code, lambda: self._lookup(code))

    def _lookup(self, code: str) -> str | None:
        query = [("identifier", f"{INSTITUTION_CODE}|{code}"), ("_count", "100")]
        found = matches(self.fhir("GET", "Organization", query))
        if not found:
            return None
        best = min(found, key=lambda r: (r.get("active", True) is False, str(r.get("id", ""))))
        return str(best["id"])

    def forget(self) -> None:
        """Drop every cached answer."""
        self._cache.clear()

    def on_event(self, event: Event) -> None:
        """An Organization was created, changed or deleted: cached answers may be stale."""
        if isinstance(event, ResourceChanged) and event.resource_type == "Organization":
            self.forget()
