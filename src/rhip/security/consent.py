"""Residents' consent (FHIR Consent, privacy scope): who may see what of their shared record.

Supported shape (docs/security.md): an active Consent for a Patient whose ``provision`` (and nested
provisions) say ``deny`` or ``permit``, optionally limited to ``actor`` Organizations, ``securityLabel``
categories (PSY, HIV, STD, SEX, SDV, SUD …) and a ``period``. A top-level ``deny`` without actor or label
withdraws the record from regional sharing; a ``permit`` with actors lets those institutions see the record
without a care relationship. A consent recorded on any record of a person covers all of them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

from rhip.security.facts import CONFIDENTIAL_CODES, patient_ids
from rhip.security.labels import sensitivity_table
from rhip.security.lookup import StoreLookup


@dataclass(frozen=True)
class ConsentRule:
    """One provision of a resident's consent."""

    patient: str
    effect: str  # deny | permit
    organizations: frozenset[str]  # empty: every institution
    labels: frozenset[str]  # empty: the whole record
    start: str | None  # FHIR dateTime bounds of provision.period
    end: str | None
    consent_id: str

    def applies(self, organizations: frozenset[str], labels: frozenset[str], now: str) -> bool:
        """Whether the rule covers a caller of these Organizations reading data with these labels now."""
        # Compared at the precision the period was written in (a date covers its whole day).
        if self.start and now[: len(self.start)] < self.start:
            return False
        if self.end and now[: len(self.end)] > self.end:
            return False
        if self.organizations and not (self.organizations & organizations):
            return False
        return not self.labels or bool(self.labels & labels)


PRIVACY_SCOPE = "patient-privacy"  # http://terminology.hl7.org/CodeSystem/consentscope


def is_privacy_consent(consent: dict[str, Any]) -> bool:
    """Whether a Consent is about sharing the record (scope patient-privacy), not treatment or research."""
    scope = consent.get("scope") if isinstance(consent.get("scope"), dict) else {}
    assert isinstance(scope, dict)
    return any(isinstance(c, dict) and c.get("code") == PRIVACY_SCOPE for c in scope.get("coding") or ())


def rules_of(consent: dict[str, Any]) -> list[ConsentRule]:
    """The rules of one Consent resource (none unless it is an active privacy consent naming its Patient)."""
    if consent.get("status") != "active" or not is_privacy_consent(consent):
        return []
    patients = patient_ids([(consent.get("patient"), "Reference")])
    if not patients:
        return []
    patient = min(patients)
    cid = str(consent.get("id", ""))
    top = consent.get("provision") if isinstance(consent.get("provision"), dict) else None
    if top is None:
        return []
    out: list[ConsentRule] = []
    _collect(top, patient, cid, out, top=True)
    return out


def _collect(p: dict[str, Any], patient: str, cid: str, out: list[ConsentRule], *, top: bool) -> None:
    effect = p.get("type")
    orgs = frozenset(
        ref.split("Organization/", 1)[1]
        for a in p.get("actor") or ()
        if isinstance(a, dict)
        for ref in [str((a.get("reference") or {}).get("reference", ""))]
        if "Organization/" in ref
    )
    # Only categories the platform labels data with (and R/V): an unknown code would hide nothing, and a
    # flood of codes would only make every search heavier.
    known = _known_labels()
    labels = frozenset(
        str(c.get("code"))
        for c in p.get("securityLabel") or ()
        if isinstance(c, dict) and c.get("code") in known
    )
    period = p.get("period") if isinstance(p.get("period"), dict) else {}
    assert isinstance(period, dict)
    # A top-level permit without limits only restates the default (share under the platform's rules).
    meaningful = effect == "deny" or orgs or labels or not top
    if effect in ("deny", "permit") and meaningful:
        out.append(ConsentRule(patient, effect, orgs, labels, period.get("start"), period.get("end"), cid))
    for nested in p.get("provision") or ():
        if isinstance(nested, dict):
            _collect(nested, patient, cid, out, top=False)


@cache
def _known_labels() -> frozenset[str]:
    return frozenset({c.code for c in sensitivity_table().categories} | set(CONFIDENTIAL_CODES))


class ConsentBook:
    """Every active consent rule, by Patient id, read from the store and refreshed when consents change."""

    def __init__(
        self, lookup: StoreLookup, ttl_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.lookup = lookup
        self.ttl_s = ttl_s
        self.clock = clock
        self._rules: dict[str, list[ConsentRule]] | None = None
        self._loaded = 0.0
        self._lock = threading.Lock()

    def rules(self) -> dict[str, list[ConsentRule]]:
        """Rules by Patient id (reloaded after ``ttl_s`` or an invalidation)."""
        with self._lock:
            if self._rules is not None and self.clock() - self._loaded < self.ttl_s:
                return self._rules
        loaded: dict[str, list[ConsentRule]] = {}
        for stored in self.lookup.each("Consent", [("status", "active")]):
            for rule in rules_of(stored.resource()):
                loaded.setdefault(rule.patient, []).append(rule)
        with self._lock:
            self._rules, self._loaded = loaded, self.clock()
        return loaded

    def invalidate(self) -> None:
        """A Consent changed: read them again on the next question."""
        with self._lock:
            self._rules = None

    def for_patients(self, patients: frozenset[str]) -> list[ConsentRule]:
        """The rules recorded on any of these records."""
        book = self.rules()
        return [r for p in patients for r in book.get(p, ())]


def denying(
    rules: list[ConsentRule], organizations: frozenset[str], labels: frozenset[str], now: str, *, whole: bool
) -> list[ConsentRule]:
    """The deny rules that hold for a caller of these Organizations reading data with these labels:
    ``whole`` ones withdraw the whole record (no labels), the others hold back labelled data. A permit
    naming one of the caller's Organizations in the same consent is an exception to its denials
    ("share with nobody but my family doctor's clinic")."""
    exempt = {
        r.consent_id
        for r in rules
        if r.effect == "permit"
        and r.organizations
        and r.applies(organizations, labels, now)
        and (not r.labels or not labels or r.labels >= labels)
    }
    return [
        r
        for r in rules
        if r.effect == "deny"
        and r.consent_id not in exempt
        and (not r.labels) == whole
        and r.applies(organizations, labels if not whole else frozenset(), now)
    ]


_instant: list[tuple[int, str]] = [(0, "")]


def now_instant() -> str:
    """The current instant as a FHIR dateTime (UTC), to compare with consent periods (to the second:
    formatted once a second, since every request asks)."""
    second = int(time.time())
    cached = _instant[0]
    if cached[0] == second:
        return cached[1]
    text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    _instant[0] = (second, text)
    return text
