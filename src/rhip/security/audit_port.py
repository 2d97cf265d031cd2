"""What the secured repository needs of the audit trail (rhip.security.audit implements it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from rhip.fhir.repository import FhirRepository, SearchPage
from rhip.fhir.search.query import SearchQuery
from rhip.security.audit.fhir_page import AuditRestriction
from rhip.security.principal import Principal

ResourceRef = tuple[str, str, int | None]  # (type, id, version)


class AccessRecorder(Protocol):
    """Records accesses and security events (the identity service needs no more than this)."""

    def accessed(
        self,
        principal: Principal,
        *,
        action: str,
        subtype: str,
        resources: Sequence[ResourceRef],
        patients: Sequence[str],
        outcome: str = "0",
        query: str | None = None,
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Record a read, a search or a refused request."""


class AuditSink(AccessRecorder, Protocol):
    """Records accesses (buffered) and changes (inside the change's transaction)."""

    def changed(
        self,
        tx: FhirRepository,
        principal: Principal,
        *,
        action: str,
        subtype: str,
        resources: Sequence[ResourceRef],
        patients: Sequence[str],
        outcome: str = "0",
        detail: Mapping[str, str] | None = None,
    ) -> None:
        """Record a change in the transaction ``tx`` that makes it."""

    def search_page(self, query: SearchQuery, restrict: AuditRestriction | None = None) -> SearchPage:
        """A page of AuditEvents for a FHIR search, within ``restrict`` (None: the whole log)."""
